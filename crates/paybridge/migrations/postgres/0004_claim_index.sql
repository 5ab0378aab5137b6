-- Postgres twin of migrations/sqlite/0004_claim_index.sql.

-- The claim reads waiting jobs in (created, id) order; finished jobs pile up over time, so
-- only the waiting ones are indexed for it.
CREATE INDEX jobs_waiting ON jobs (created, id) WHERE status IN ('pending', 'retrying', 'running');
