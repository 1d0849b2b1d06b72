-- Notifications outbox (docs/notifications.md). A row in `notifications` is written in the same
-- transaction as the change it reports (a run ending, a review step); it names the run, the
-- event and the owner, never file contents, dataset locations or parameters. The delivery loop
-- expands each row once into one `notification_deliveries` row per configured target, then
-- claims deliveries with a lease (several instances never send one delivery at once), retries
-- with backoff and marks them delivered: a restart loses none and resends none delivered.
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       TEXT NOT NULL,
    event        TEXT NOT NULL,
    owner        TEXT NOT NULL,
    workflow_url TEXT NOT NULL,
    run_state    TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expanded     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX notifications_unexpanded ON notifications (expanded, id);
CREATE INDEX notifications_by_run ON notifications (run_id, id);

CREATE TABLE notification_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id BIGINT NOT NULL REFERENCES notifications (id),
    target          TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    delivered_at    BIGINT,
    UNIQUE (notification_id, target)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (state, next_attempt_at);
