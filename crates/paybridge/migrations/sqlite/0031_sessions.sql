-- Dashboard sessions kept on the server, so signing out ends a session for good (the
-- signed cookie alone would stay valid until it expires). `id` is the SHA-256 of the
-- cookie's random nonce: the table never holds what a browser presents.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
CREATE INDEX sessions_by_expiry ON sessions (expires_ms);
