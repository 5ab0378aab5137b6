-- Postgres twin of migrations/sqlite/0031_sessions.sql (mapping: see 0001_intake.sql).

-- Dashboard sessions kept on the server, so signing out ends a session for good (the
-- signed cookie alone would stay valid until it expires). `id` is the SHA-256 of the
-- cookie's random nonce: the table never holds what a browser presents.
CREATE TABLE sessions (
    id TEXT COLLATE "C" PRIMARY KEY,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);
CREATE INDEX sessions_by_expiry ON sessions (expires_ms);
