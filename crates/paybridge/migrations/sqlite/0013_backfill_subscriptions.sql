-- Backfill reads every subscription in one pass (`GET /v1/subscriptions?status=all`) and
-- keeps, per customer, the one the contact shows (by status rank, then newest); the pass
-- over customers then reads them from here instead of asking Stripe once per customer.
CREATE TABLE backfill_subscriptions (
    run          TEXT NOT NULL,
    customer     TEXT NOT NULL,
    rank         INTEGER NOT NULL,
    created      INTEGER NOT NULL,
    subscription TEXT NOT NULL,            -- the object as Stripe listed it (JSON)
    PRIMARY KEY (run, customer)
);
