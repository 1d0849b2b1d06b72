//! Decoding the columns that name people: each holds a [`Subject`] key (`<issuer> <sub>`), an
//! [`Actor`] key, or a [`Group`] key; a value that is none of these is corrupt data, never a
//! guess.

use spe_core::{Actor, Group, Subject};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::StoreError;

pub(crate) fn subject(row: &AnyRow, column: &str) -> Result<Subject, StoreError> {
    let key: String = row.try_get(column)?;
    Subject::from_key(&key).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub(crate) fn opt_subject(row: &AnyRow, column: &str) -> Result<Option<Subject>, StoreError> {
    let key: Option<String> = row.try_get(column)?;
    key.map(|k| Subject::from_key(&k).map_err(|e| StoreError::Corrupt(format!("{column}: {e}"))))
        .transpose()
}

pub(crate) fn actor(row: &AnyRow, column: &str) -> Result<Actor, StoreError> {
    let key: String = row.try_get(column)?;
    Actor::from_key(&key).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub(crate) fn group(key: &str) -> Result<Group, StoreError> {
    Group::from_key(key).map_err(|e| StoreError::Corrupt(format!("group: {e}")))
}
