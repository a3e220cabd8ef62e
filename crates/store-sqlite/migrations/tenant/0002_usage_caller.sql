-- The invocation whose tool call started a run (NULL: requested through the API),
-- so the execution and tool-call quotas can each be re-seeded from usage.
ALTER TABLE usage_events ADD COLUMN caller_id TEXT;
