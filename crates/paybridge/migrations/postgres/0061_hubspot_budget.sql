-- One HubSpot budget for every replica (issue 16): a token bucket per limiter bucket
-- ('standard', 'search'), taken under a row lock (see src/hubspot/shared_budget.rs).
-- UNLOGGED: the state lost in a crash is harmless (a row found missing starts empty, which
-- never grants more than the lost state would have), and its commits write no WAL.
-- Times are milliseconds on the database's clock, never a replica's.
CREATE UNLOGGED TABLE IF NOT EXISTS hubspot_budget (
    bucket TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    refilled_ms BIGINT NOT NULL,
    paused_until_ms BIGINT NOT NULL DEFAULT 0
);
