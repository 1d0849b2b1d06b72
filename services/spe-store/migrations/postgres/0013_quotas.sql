-- Quotas: what a run asks for (its `cores` and `memory_mb` engine parameters, 0 when it names
-- none), kept as columns so that a submission sums its owner's live runs in one indexed query.
ALTER TABLE runs ADD COLUMN cores BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN memory_mb BIGINT NOT NULL DEFAULT 0;
CREATE INDEX runs_by_owner_created ON runs (owner, created_at);
CREATE INDEX runs_by_owner_state ON runs (owner, state);
