-- Thin events (`v2.core.event`) are stored like snapshot ones; the worker fetches their
-- object with the API key. `payload_kind` says which style the stored payload is.
ALTER TABLE events ADD COLUMN payload_kind TEXT NOT NULL DEFAULT 'snapshot';  -- snapshot | thin
