-- What we know of each Stripe customer beyond one event (for templates and conditions such
-- as customer.metadata.tier): kept from customer events and Stripe API reads.
CREATE TABLE customers (
    customer TEXT PRIMARY KEY,
    email    TEXT,
    name     TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',   -- JSON object of strings
    created  INTEGER NOT NULL              -- event.created of the data (older data never overwrites)
);
