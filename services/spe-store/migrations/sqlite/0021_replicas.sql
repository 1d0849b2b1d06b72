-- Several wes-api instances on one database (docs/execution.md, "Replicas"). A QUEUED run is
-- claimed by one instance's submitter before it calls sbatch (`submit_claim` until
-- `submit_claim_until`), so two instances never submit one run; a claim that ran out (its
-- instance died) is taken by the next pass anywhere. `leader_leases`: the one instance that
-- runs a singleton loop (the reconciler) per tick.
ALTER TABLE runs ADD COLUMN submit_claim TEXT;
ALTER TABLE runs ADD COLUMN submit_claim_until BIGINT;

CREATE TABLE leader_leases (
    name   TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    until  BIGINT NOT NULL
);
