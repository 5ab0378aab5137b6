-- Postgres twin of migrations/sqlite/0013_backfill_subscriptions.sql (mapping: see
-- 0001_intake.sql).

-- Backfill reads every subscription in one pass (`GET /v1/subscriptions?status=all`) and
-- keeps, per customer, the one the contact shows (by status rank, then newest); the pass
-- over customers then reads them from here instead of asking Stripe once per customer.
CREATE TABLE backfill_subscriptions (
    run          TEXT COLLATE "C" NOT NULL,
    customer     TEXT COLLATE "C" NOT NULL,
    rank         BIGINT NOT NULL,
    created      BIGINT NOT NULL,
    subscription TEXT COLLATE "C" NOT NULL,  -- the object as Stripe listed it (JSON)
    PRIMARY KEY (run, customer)
);
