-- Postgres only: the HubSpot budget every replica shares (see src/hubspot/shared_budget.rs).
CREATE UNLOGGED TABLE hubspot_budget (
    bucket          TEXT COLLATE "C" PRIMARY KEY,
    tokens          DOUBLE PRECISION NOT NULL,
    refilled_ms     BIGINT NOT NULL,
    paused_until_ms BIGINT NOT NULL DEFAULT 0
);
