-- A run whose directory the crawler cannot walk: the error is kept against the run (its owner
-- and operators see it), retried with backoff (egress_retry_at) a bounded number of times
-- (egress_attempts), then the run is settled (egress_done = 1) with egress_error saying that
-- egress failed and why. Runs waiting for a retry are left out of rescans until it is due.
ALTER TABLE runs ADD COLUMN egress_error TEXT;
ALTER TABLE runs ADD COLUMN egress_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN egress_retry_at BIGINT;
