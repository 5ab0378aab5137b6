-- Singleton work (the scheduled reconcile) runs on one replica at a time: the one holding
-- the named lease until `until` (unix ms). A replica that dies lets it expire.
CREATE TABLE leases (
    name    TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    until   INTEGER NOT NULL
) WITHOUT ROWID;
