-- What paybridge remembers of Stripe beyond single events.

-- The refunded total of a charge is the one of its newest event (Stripe's running
-- `amount_refunded`), not the largest ever seen: `refunded_at` is that event's `created`.
ALTER TABLE ledger ADD COLUMN refunded_at INTEGER NOT NULL DEFAULT 0;

-- Refunds that failed or were cancelled after the charge's total counted them: their
-- amount goes back into the lifetime value (at most what the charge had refunded).
CREATE TABLE refund_failures (
    refund    TEXT PRIMARY KEY,            -- re_…
    customer  TEXT NOT NULL,
    charge    TEXT NOT NULL,
    currency  TEXT NOT NULL,
    amount    INTEGER NOT NULL,
    failed_at INTEGER NOT NULL             -- created of the event that said so
);
CREATE INDEX refund_failures_charge ON refund_failures (customer, charge);

-- Per subscription: the trial's $0 first invoice, and the first invoice that took money
-- (what `invoice.first_payment` means).
CREATE TABLE subscription_payments (
    subscription       TEXT PRIMARY KEY,
    trial_invoice      TEXT,
    first_paid_invoice TEXT
);

-- Product names read from Stripe's API (`GET /v1/products/{id}`), kept for a day.
CREATE TABLE products (
    id         TEXT PRIMARY KEY,           -- prod_…
    name       TEXT,
    active     INTEGER,
    fetched_at INTEGER NOT NULL            -- unix ms
);
