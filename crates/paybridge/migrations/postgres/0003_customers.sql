-- Postgres twin of migrations/sqlite/0003_customers.sql (mapping: see 0001_intake.sql).

-- What we know of each Stripe customer beyond one event (for templates and conditions such
-- as customer.metadata.tier): kept from customer events and Stripe API reads.
CREATE TABLE customers (
    customer TEXT COLLATE "C" PRIMARY KEY,
    email    TEXT COLLATE "C",
    name     TEXT COLLATE "C",
    metadata TEXT COLLATE "C" NOT NULL DEFAULT '{}',  -- JSON object of strings
    created  BIGINT NOT NULL              -- event.created of the data (older data never overwrites)
);
