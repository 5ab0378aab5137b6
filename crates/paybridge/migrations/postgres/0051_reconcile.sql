-- Postgres twin of migrations/sqlite/0051_reconcile.sql (mapping: see 0001_intake.sql;
-- SQLite's WITHOUT ROWID has no twin: a Postgres table is always a heap plus its indexes).

-- `paybridge reconcile`: each run (when, how far: the cursor is the last Stripe customer
-- whose comparison is stored, so an interrupted run resumes after it), the customers it
-- went through, and what it found. Counts by property are read from the findings.
CREATE TABLE reconcile_runs (
    run          TEXT COLLATE "C" PRIMARY KEY,
    started_at   BIGINT NOT NULL,           -- unix ms
    finished_at  BIGINT,                    -- unix ms; NULL while running or interrupted
    trigger      TEXT COLLATE "C" NOT NULL, -- 'command' or 'schedule'
    fix          BIGINT NOT NULL,           -- 1: repairs were queued
    scope        TEXT COLLATE "C",          -- one customer (`--customer`), else NULL: all
    cursor       TEXT COLLATE "C",
    customers    BIGINT NOT NULL DEFAULT 0,
    complete     BIGINT NOT NULL DEFAULT 0,
    -- Postgres only: the order runs were recorded in (SQLite's rowid; the store breaks ties
    -- between runs started in the same millisecond with it).
    seq          BIGINT GENERATED ALWAYS AS IDENTITY
);

-- One row per finding: `drift` (a property), `no_contact` (a Stripe customer no contact
-- claims), `unknown_customer` (a contact claiming a customer Stripe does not have, or has
-- deleted), `claimed_twice` (one row per contact claiming a customer another contact claims).
CREATE TABLE reconcile_findings (
    run                 TEXT COLLATE "C" NOT NULL,
    kind                TEXT COLLATE "C" NOT NULL,
    customer            TEXT COLLATE "C" NOT NULL,
    contact_id          TEXT COLLATE "C" NOT NULL DEFAULT '',
    property            TEXT COLLATE "C" NOT NULL DEFAULT '',
    stripe_value        TEXT COLLATE "C",
    hubspot_value       TEXT COLLATE "C",
    last_event          TEXT COLLATE "C",   -- the event whose write the watermark records
    last_event_created  BIGINT,
    detail              TEXT COLLATE "C",
    repair_event        TEXT COLLATE "C",   -- the `reconcile` event queued to repair it
    PRIMARY KEY (run, kind, customer, contact_id, property)
);

-- The Stripe customers a run has seen alive (the contacts claiming others are reported).
CREATE TABLE reconcile_seen (
    run       TEXT COLLATE "C" NOT NULL,
    customer  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run, customer)
);
