-- One row per planned step of an event (key = {event_id}:{rule}:{action_index}).
-- `started` is written before a non-idempotent create, `done` with the created id after it.
CREATE TABLE steps (
    key          TEXT PRIMARY KEY,
    event_id     TEXT NOT NULL,
    rule         TEXT NOT NULL,
    action_index INTEGER NOT NULL,
    kind         TEXT NOT NULL,              -- update_contact | create_task | …
    status       TEXT NOT NULL,              -- started | done | skipped | failed | planned
    detail       TEXT,                       -- JSON: what it does / did / would do
    result       TEXT,                       -- JSON: created object id, written properties
    error        TEXT,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
CREATE INDEX steps_event ON steps (event_id, started_at);

-- The stale guard: per contact and property, the event.created of the last write.
CREATE TABLE watermarks (
    contact_id TEXT NOT NULL,
    property   TEXT NOT NULL,
    created    INTEGER NOT NULL,
    event_id   TEXT NOT NULL,
    PRIMARY KEY (contact_id, property)
);

-- Stripe customer → HubSpot contact, remembered after resolution.
CREATE TABLE contacts (
    customer   TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL,
    email      TEXT,
    updated_at INTEGER NOT NULL
);

-- Money per charge, each counted once: lifetime value = sum(paid) - sum(refunded).
CREATE TABLE ledger (
    customer TEXT NOT NULL,
    charge   TEXT NOT NULL,
    currency TEXT NOT NULL,
    paid     INTEGER NOT NULL DEFAULT 0,
    refunded INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (customer, charge)
);

-- What happened to an event, sentence by sentence ("contact found", "property updated").
CREATE TABLE timeline (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    at       INTEGER NOT NULL,
    attempt  INTEGER NOT NULL,
    message  TEXT NOT NULL
);
CREATE INDEX timeline_event ON timeline (event_id, id);
