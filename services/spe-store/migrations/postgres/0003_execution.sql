-- Execution on Slurm: submission bookkeeping for the submitter and the reconciler.
-- submit_attempts / next_submit_at: transient sbatch failures are retried with backoff.
-- log_dir: the run's .weskit/<timestamp> folder, chosen at submission.
ALTER TABLE runs ADD COLUMN submit_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN next_submit_at BIGINT;
ALTER TABLE runs ADD COLUMN log_dir TEXT;
CREATE INDEX runs_by_job ON runs (slurm_job_id);
