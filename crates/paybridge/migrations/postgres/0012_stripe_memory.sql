-- Postgres twin of migrations/sqlite/0012_stripe_memory.sql (mapping: see 0001_intake.sql).

-- What paybridge remembers of Stripe beyond single events.

-- The refunded total of a charge is the one of its newest event (Stripe's running
-- `amount_refunded`), not the largest ever seen: `refunded_at` is that event's `created`.
ALTER TABLE ledger ADD COLUMN refunded_at BIGINT NOT NULL DEFAULT 0;

-- Refunds that failed or were cancelled after the charge's total counted them: their
-- amount goes back into the lifetime value (at most what the charge had refunded).
CREATE TABLE refund_failures (
    refund    TEXT COLLATE "C" PRIMARY KEY,  -- re_…
    customer  TEXT COLLATE "C" NOT NULL,
    charge    TEXT COLLATE "C" NOT NULL,
    currency  TEXT COLLATE "C" NOT NULL,
    amount    BIGINT NOT NULL,
    failed_at BIGINT NOT NULL              -- created of the event that said so
);
CREATE INDEX refund_failures_charge ON refund_failures (customer, charge);

-- Per subscription: the trial's $0 first invoice, and the first invoice that took money
-- (what `invoice.first_payment` means).
CREATE TABLE subscription_payments (
    subscription       TEXT COLLATE "C" PRIMARY KEY,
    trial_invoice      TEXT COLLATE "C",
    first_paid_invoice TEXT COLLATE "C"
);

-- Product names read from Stripe's API (`GET /v1/products/{id}`), kept for a day.
CREATE TABLE products (
    id         TEXT COLLATE "C" PRIMARY KEY,  -- prod_…
    name       TEXT COLLATE "C",
    active     BIGINT,
    fetched_at BIGINT NOT NULL             -- unix ms
);
