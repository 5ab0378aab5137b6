-- Postgres twin of migrations/sqlite/0011_thin_events.sql (mapping: see 0001_intake.sql).

-- Thin events (`v2.core.event`) are stored like snapshot ones; the worker fetches their
-- object with the API key. `payload_kind` says which style the stored payload is.
ALTER TABLE events ADD COLUMN payload_kind TEXT COLLATE "C" NOT NULL DEFAULT 'snapshot';  -- snapshot | thin
