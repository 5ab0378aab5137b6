-- Counts that no other table keeps, added up per hour for `paybridge report`: HubSpot
-- calls answered and 429s among them (each process flushes its own counts here).
CREATE TABLE counters (
    hour  INTEGER NOT NULL,                -- unix ms of the hour's start (UTC)
    name  TEXT NOT NULL,                   -- hubspot_calls | hubspot_429
    value INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, name)
);
