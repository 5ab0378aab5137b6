-- Postgres twin of migrations/sqlite/0052_leases.sql (mapping: see 0001_intake.sql).

-- Singleton work (the scheduled reconcile) runs on one replica at a time: the one holding
-- the named lease until `until` (unix ms). A replica that dies lets it expire.
CREATE TABLE leases (
    name    TEXT COLLATE "C" PRIMARY KEY,
    holder  TEXT COLLATE "C" NOT NULL,
    until   BIGINT NOT NULL
);
