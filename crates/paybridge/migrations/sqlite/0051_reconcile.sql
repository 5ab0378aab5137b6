-- `paybridge reconcile`: each run (when, how far: the cursor is the last Stripe customer
-- whose comparison is stored, so an interrupted run resumes after it), the customers it
-- went through, and what it found. Counts by property are read from the findings.
CREATE TABLE reconcile_runs (
    run          TEXT PRIMARY KEY,
    started_at   INTEGER NOT NULL,          -- unix ms
    finished_at  INTEGER,                   -- unix ms; NULL while running or interrupted
    trigger      TEXT NOT NULL,             -- 'command' or 'schedule'
    fix          INTEGER NOT NULL,          -- 1: repairs were queued
    scope        TEXT,                      -- one customer (`--customer`), else NULL: all
    cursor       TEXT,
    customers    INTEGER NOT NULL DEFAULT 0,
    complete     INTEGER NOT NULL DEFAULT 0
);

-- One row per finding: `drift` (a property), `no_contact` (a Stripe customer no contact
-- claims), `unknown_customer` (a contact claiming a customer Stripe does not have, or has
-- deleted), `claimed_twice` (one row per contact claiming a customer another contact claims).
CREATE TABLE reconcile_findings (
    run                 TEXT NOT NULL,
    kind                TEXT NOT NULL,
    customer            TEXT NOT NULL,
    contact_id          TEXT NOT NULL DEFAULT '',
    property            TEXT NOT NULL DEFAULT '',
    stripe_value        TEXT,
    hubspot_value       TEXT,
    last_event          TEXT,              -- the event whose write the watermark records
    last_event_created  INTEGER,
    detail              TEXT,
    repair_event        TEXT,              -- the `reconcile` event queued to repair it
    PRIMARY KEY (run, kind, customer, contact_id, property)
) WITHOUT ROWID;

-- The Stripe customers a run has seen alive (the contacts claiming others are reported).
CREATE TABLE reconcile_seen (
    run       TEXT NOT NULL,
    customer  TEXT NOT NULL,
    PRIMARY KEY (run, customer)
) WITHOUT ROWID;
