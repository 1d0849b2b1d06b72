//! Browser sessions and logins in progress (wes-api's `session` module decides what they
//! hold). Stored here so that every instance sees them and a restart keeps them; each row is
//! found by the SHA-256 of what the browser holds and carries only sealed text.

use spe_core::time::Timestamp;
use sqlx::Row;

use crate::{Store, StoreError};

/// Whether a login in progress was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAdmission {
    Kept,
    /// The address has `max_per_address` logins in progress already.
    TooManyFromAddress,
    /// The table holds `max_total` logins in progress already.
    TooMany,
}

impl Store {
    /// Keeps a login in progress until `expires`, unless its address or everyone has too many
    /// in progress (expired ones are dropped first).
    #[allow(clippy::too_many_arguments)]
    pub async fn add_browser_login(
        &self,
        state_sha256: &str,
        sealed: &str,
        address: Option<&str>,
        now: Timestamp,
        expires: Timestamp,
        max_per_address: i64,
        max_total: i64,
    ) -> Result<LoginAdmission, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM browser_logins WHERE expires_at <= $1")
            .bind(now.micros())
            .execute(&mut *tx)
            .await?;
        if let Some(address) = address {
            let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM browser_logins WHERE address = $1")
                .bind(address)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
            if n >= max_per_address {
                return Ok(LoginAdmission::TooManyFromAddress);
            }
        }
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM browser_logins")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if n >= max_total {
            return Ok(LoginAdmission::TooMany);
        }
        sqlx::query(
            "INSERT INTO browser_logins (state_sha256, sealed, address, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(state_sha256)
        .bind(sealed)
        .bind(address)
        .bind(now.micros())
        .bind(expires.micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(LoginAdmission::Kept)
    }

    /// Takes (removes) the login in progress of `state_sha256`: its sealed text, unless it is
    /// unknown or expired. A state is used once.
    pub async fn take_browser_login(
        &self,
        state_sha256: &str,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM browser_logins WHERE state_sha256 = $1 RETURNING sealed, expires_at",
        )
        .bind(state_sha256)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) if row.try_get::<i64, _>("expires_at")? > now.micros() => {
                Ok(Some(row.try_get("sealed")?))
            }
            _ => Ok(None),
        }
    }

    /// Keeps a session until `expires`; `false` when `max_total` live sessions exist already
    /// (expired ones are dropped first).
    pub async fn add_browser_session(
        &self,
        id_sha256: &str,
        sealed: &str,
        now: Timestamp,
        expires: Timestamp,
        max_total: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM browser_sessions WHERE expires_at <= $1")
            .bind(now.micros())
            .execute(&mut *tx)
            .await?;
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM browser_sessions")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if n >= max_total {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO browser_sessions (id_sha256, sealed, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id_sha256)
        .bind(sealed)
        .bind(now.micros())
        .bind(expires.micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The sealed text of a live session.
    pub async fn browser_session(
        &self,
        id_sha256: &str,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT sealed FROM browser_sessions WHERE id_sha256 = $1 AND expires_at > $2",
        )
        .bind(id_sha256)
        .bind(now.micros())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get("sealed"))
            .transpose()
            .map_err(Into::into)
    }

    /// Ends a session: its sealed text, if it existed.
    pub async fn end_browser_session(&self, id_sha256: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("DELETE FROM browser_sessions WHERE id_sha256 = $1 RETURNING sealed")
            .bind(id_sha256)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get("sealed"))
            .transpose()
            .map_err(Into::into)
    }
}
