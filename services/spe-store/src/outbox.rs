//! The notifications outbox: what happened to a run that people should hear of, written in the
//! transaction of the change itself, and the deliveries of each to the configured targets.
//!
//! A `notifications` row is the fact ("run X ended COMPLETE", "a file of run X is held"). The
//! delivery loop (crate `spe-notify`) expands each once into one `notification_deliveries` row
//! per target (a compare-and-set on `expanded`, so two instances never expand one twice), then
//! claims deliveries with a lease: a claim is a compare-and-set from pending with no live
//! lease, so several instances on PostgreSQL never send one delivery at the same time, and a
//! sender that died mid-send leaves it to be claimed again when the lease runs out. A delivery
//! marked delivered is never claimed again, so a restart resends nothing delivered; one whose
//! sender died after sending but before marking it is sent again (at least once; the stable
//! delivery id lets a receiver drop the repeat).

use spe_core::time::Timestamp;
use spe_core::{RunId, RunState, Subject};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, people};

/// What a notification reports. Nothing in it is sensitive: the run, the event, the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationEvent {
    /// The run reached a terminal state (`run_state` says which).
    RunEnded,
    /// An output was held for review.
    Held,
    /// A held output was approved in review (it will be released).
    Approved,
    /// A held output was rejected in review.
    Rejected,
    /// A reviewer sent the request back to the researcher.
    Returned,
    /// The researcher answered a returned request.
    Answered,
    /// A released output was withdrawn.
    Revoked,
    /// A review request is undecided past the configured time.
    Overdue,
}

impl NotificationEvent {
    pub const ALL: [NotificationEvent; 8] = [
        NotificationEvent::RunEnded,
        NotificationEvent::Held,
        NotificationEvent::Approved,
        NotificationEvent::Rejected,
        NotificationEvent::Returned,
        NotificationEvent::Answered,
        NotificationEvent::Revoked,
        NotificationEvent::Overdue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationEvent::RunEnded => "run_ended",
            NotificationEvent::Held => "held_for_review",
            NotificationEvent::Approved => "approved",
            NotificationEvent::Rejected => "rejected",
            NotificationEvent::Returned => "returned",
            NotificationEvent::Answered => "answered",
            NotificationEvent::Revoked => "revoked",
            NotificationEvent::Overdue => "overdue",
        }
    }

    pub fn parse(text: &str) -> Option<NotificationEvent> {
        Self::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

/// One stored notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: i64,
    pub run_id: RunId,
    pub event: NotificationEvent,
    pub owner: Subject,
    /// `name@version` of the run's workflow.
    pub workflow_url: String,
    /// The run's state when the event happened.
    pub run_state: RunState,
    pub created_at: Timestamp,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Given up after the configured attempts.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<DeliveryState, StoreError> {
        match text {
            "pending" => Ok(DeliveryState::Pending),
            "delivered" => Ok(DeliveryState::Delivered),
            "failed" => Ok(DeliveryState::Failed),
            other => Err(StoreError::Corrupt(format!("delivery state {other:?}"))),
        }
    }
}

/// One notification to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Stable across attempts: the delivery id a receiver sees.
    pub id: i64,
    /// The target's key as the delivery loop named it (e.g. `webhook:ops`).
    pub target: String,
    pub state: DeliveryState,
    /// Attempts so far, this one included for a claimed delivery.
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
    pub notification: Notification,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, Copy)]
pub enum DeliveryOutcome<'a> {
    Delivered,
    /// Try again from `next_attempt_at`.
    Retry {
        error: &'a str,
        next_attempt_at: Timestamp,
    },
    /// Give up (attempts exhausted).
    Failed {
        error: &'a str,
    },
}

const DELIVERY_COLUMNS: &str = "d.id AS d_id, d.target, d.state AS d_state, d.attempts, \
     d.next_attempt_at, d.last_error, d.delivered_at, n.id AS n_id, n.run_id, n.event, n.owner, \
     n.workflow_url, n.run_state, n.created_at";

/// Records `event` for `run` in the caller's transaction (the change it reports commits with
/// it, or neither does). The owner, workflow and state are copied from the run's row as the
/// transaction sees it.
pub(crate) async fn enqueue(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    run: &str,
    event: NotificationEvent,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO notifications (run_id, event, owner, workflow_url, run_state, created_at) \
         SELECT id, $1, owner, workflow_url, state, $2 FROM runs WHERE id = $3",
    )
    .bind(event.as_str())
    .bind(at.micros())
    .bind(run)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The target prefix of a delivery to a run's owner's address.
pub const OWNER_EMAIL: &str = "owner-email:";

impl Store {
    /// The address recorded for run `run`'s owner, if any.
    pub async fn owner_contact(&self, run: RunId) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT email FROM run_contacts WHERE run_id = $1")
                .bind(run.to_string())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Expands up to `limit` new notifications into one pending delivery per target, due at
    /// `at`; with `owner_email`, also one to the run owner's address where the run has one
    /// (target `owner-email:<address>`). Each notification is expanded once, by whichever
    /// instance sets its flag first. Returns how many notifications this call expanded.
    pub async fn expand_notifications(
        &self,
        targets: &[String],
        owner_email: bool,
        limit: i64,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM notifications WHERE expanded = 0 ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut expanded = 0;
        for id in ids {
            let _turn = self.write_turn().await;
            let mut tx = self.pool.begin().await?;
            let won =
                sqlx::query("UPDATE notifications SET expanded = 1 WHERE id = $1 AND expanded = 0")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            if won.rows_affected() != 1 {
                tx.rollback().await?;
                continue;
            }
            let owner: Option<String> = if owner_email {
                sqlx::query_scalar(
                    "SELECT c.email FROM run_contacts c JOIN notifications n ON n.run_id = c.run_id \
                     WHERE n.id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
            } else {
                None
            };
            let owner_target = owner.map(|email| format!("{OWNER_EMAIL}{email}"));
            for target in targets.iter().chain(owner_target.as_ref()) {
                sqlx::query(
                    "INSERT INTO notification_deliveries (notification_id, target, state, \
                     next_attempt_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (notification_id, target) DO NOTHING",
                )
                .bind(id)
                .bind(target)
                .bind(DeliveryState::Pending.as_str())
                .bind(at.micros())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            expanded += 1;
        }
        Ok(expanded)
    }

    /// Claims up to `limit` due deliveries for `owner` until `lease_until`; each claim counts
    /// as an attempt. A delivery another instance holds under a live lease is not returned.
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM notification_deliveries WHERE state = $1 AND next_attempt_at <= $2 \
             AND (lease_until IS NULL OR lease_until < $2) ORDER BY id LIMIT $3",
        )
        .bind(DeliveryState::Pending.as_str())
        .bind(now.micros())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::new();
        for id in ids {
            let turn = self.write_turn().await;
            let updated = sqlx::query(
                "UPDATE notification_deliveries SET lease_owner = $1, lease_until = $2, \
                 attempts = attempts + 1 WHERE id = $3 AND state = $4 \
                 AND (lease_until IS NULL OR lease_until < $5)",
            )
            .bind(owner)
            .bind(lease_until.micros())
            .bind(id)
            .bind(DeliveryState::Pending.as_str())
            .bind(now.micros())
            .execute(&self.pool)
            .await?;
            // finish_delivery below takes its own turn.
            drop(turn);
            if updated.rows_affected() != 1 {
                continue;
            }
            match self.delivery(id).await {
                Ok(Some(d)) => claimed.push(d),
                Ok(None) => {}
                // A row that does not decode is never sent; it fails, naming why, and the
                // others go on.
                Err(StoreError::Corrupt(reason)) => {
                    self.finish_delivery(
                        id,
                        owner,
                        DeliveryOutcome::Failed { error: &reason },
                        now,
                    )
                    .await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(claimed)
    }

    /// Ends `owner`'s attempt; `false` if the delivery was no longer theirs (nothing changed).
    pub async fn finish_delivery(
        &self,
        id: i64,
        owner: &str,
        outcome: DeliveryOutcome<'_>,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let (state, error, next, delivered_at) = match outcome {
            DeliveryOutcome::Delivered => (DeliveryState::Delivered, None, None, Some(at.micros())),
            DeliveryOutcome::Retry {
                error,
                next_attempt_at,
            } => (
                DeliveryState::Pending,
                Some(error.to_owned()),
                Some(next_attempt_at.micros()),
                None,
            ),
            DeliveryOutcome::Failed { error } => {
                (DeliveryState::Failed, Some(error.to_owned()), None, None)
            }
        };
        let _turn = self.write_turn().await;
        let updated = sqlx::query(
            "UPDATE notification_deliveries SET state = $1, last_error = $2, \
             next_attempt_at = COALESCE($3, next_attempt_at), delivered_at = $4, \
             lease_owner = NULL, lease_until = NULL \
             WHERE id = $5 AND lease_owner = $6 AND state = $7",
        )
        .bind(state.as_str())
        .bind(error)
        .bind(next)
        .bind(delivered_at)
        .bind(id)
        .bind(owner)
        .bind(DeliveryState::Pending.as_str())
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// One delivery with its notification.
    pub async fn delivery(&self, id: i64) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries d \
             JOIN notifications n ON n.id = d.notification_id WHERE d.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| delivery_from_row(&r)).transpose()
    }

    /// A run's notifications, oldest first.
    pub async fn notifications(&self, run: RunId) -> Result<Vec<Notification>, StoreError> {
        let rows = sqlx::query(
            "SELECT id AS n_id, run_id, event, owner, workflow_url, run_state, created_at \
             FROM notifications WHERE run_id = $1 ORDER BY id",
        )
        .bind(run.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(notification_from_row).collect()
    }

    /// A run's deliveries, by notification then target.
    pub async fn deliveries(&self, run: RunId) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries d \
             JOIN notifications n ON n.id = d.notification_id WHERE n.run_id = $1 \
             ORDER BY n.id, d.target"
        ))
        .bind(run.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }
}

fn notification_from_row(row: &AnyRow) -> Result<Notification, StoreError> {
    let run_id: String = row.try_get("run_id")?;
    let event: String = row.try_get("event")?;
    let state: String = row.try_get("run_state")?;
    Ok(Notification {
        id: row.try_get("n_id")?,
        run_id: run_id
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("run id {run_id:?}")))?,
        event: NotificationEvent::parse(&event)
            .ok_or_else(|| StoreError::Corrupt(format!("notification event {event:?}")))?,
        owner: people::subject(row, "owner")?,
        workflow_url: row.try_get("workflow_url")?,
        run_state: state
            .parse::<RunState>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
    })
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery, StoreError> {
    let state: String = row.try_get("d_state")?;
    let delivered_at: Option<i64> = row.try_get("delivered_at")?;
    Ok(Delivery {
        id: row.try_get("d_id")?,
        target: row.try_get("target")?,
        state: DeliveryState::parse(&state)?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: Timestamp::from_micros(row.try_get("next_attempt_at")?),
        last_error: row.try_get("last_error")?,
        delivered_at: delivered_at.map(Timestamp::from_micros),
        notification: notification_from_row(row)?,
    })
}
