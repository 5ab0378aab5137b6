-- Settings the process keeps for itself (e.g. the generated sandbox webhook secret).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Every Stripe event we acknowledged, exactly once (id is Stripe's evt_ id).
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    created     INTEGER NOT NULL,          -- event.created, unix seconds
    livemode    INTEGER NOT NULL,
    api_version TEXT,
    customer    TEXT,                      -- Stripe customer id, when the object has one
    source      TEXT NOT NULL,             -- webhook | replay | backfill
    status      TEXT NOT NULL,             -- pending | retrying | done | dead | ignored | needs_attention
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    received_at INTEGER NOT NULL,          -- unix ms
    finished_at INTEGER,                   -- unix ms, when it reached a final status
    contact_id  TEXT,                      -- the HubSpot contact it was applied to
    alerted     INTEGER NOT NULL DEFAULT 0,
    payload     BLOB                       -- raw body as received; NULL once past retention
);
CREATE INDEX events_received ON events (received_at, id);
CREATE INDEX events_status ON events (status, received_at);
CREATE INDEX events_customer ON events (customer, created);

-- The queue. A job is claimed with a lease (locked_by, locked_until); `lane` serialises
-- a customer's jobs, `created` orders them.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL REFERENCES events (id),
    kind         TEXT NOT NULL DEFAULT 'event',  -- event | sequence_step
    lane         TEXT NOT NULL,
    created      INTEGER NOT NULL,
    status       TEXT NOT NULL,                  -- pending | retrying | running | done | dead | cancelled
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       INTEGER NOT NULL,               -- unix ms
    locked_by    TEXT,
    locked_until INTEGER,
    last_error   TEXT,
    sequence     TEXT,
    step_index   INTEGER
);
CREATE INDEX jobs_ready ON jobs (status, run_at);
CREATE INDEX jobs_lane ON jobs (lane, status, created);
CREATE INDEX jobs_event ON jobs (event_id);
