-- Postgres twin of migrations/sqlite/0005_counters.sql (mapping: see 0001_intake.sql).

-- Counts that no other table keeps, added up per hour for `paybridge report`: HubSpot
-- calls answered and 429s among them (each process flushes its own counts here).
CREATE TABLE counters (
    hour  BIGINT NOT NULL,                 -- unix ms of the hour's start (UTC)
    name  TEXT COLLATE "C" NOT NULL,       -- hubspot_calls | hubspot_429
    value BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, name)
);
