//! Column decoding helpers shared by the control and tenant stores.

use sqlx::postgres::PgRow;
use sqlx::{Decode, Postgres, Row, Type};
use std::str::FromStr;
use tenantry_store::{StoreError, StoreResult};
use uuid::Uuid;

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt column {what}"))
}

/// Any column whose Rust type sqlx decodes directly.
pub(crate) fn get<'r, T>(row: &'r PgRow, col: &str) -> StoreResult<T>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get::<T, _>(col).map_err(|_| corrupt(col))
}

pub(crate) fn uint(row: &PgRow, col: &str) -> StoreResult<u64> {
    u64::try_from(get::<i64>(row, col)?).map_err(|_| corrupt(col))
}

/// A `u32` from a `bigint` column (which holds every `u32`); anything else is corrupt.
pub(crate) fn small(row: &PgRow, col: &str) -> StoreResult<u32> {
    u32::try_from(get::<i64>(row, col)?).map_err(|_| corrupt(col))
}

/// A typed id (`OrgId`, `UserId`, …) from a `uuid` column.
pub(crate) fn id<T: FromStr>(row: &PgRow, col: &str) -> StoreResult<T> {
    let u: Uuid = get(row, col)?;
    T::from_str(&u.to_string()).map_err(|_| corrupt(col))
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(row: &PgRow, col: &str) -> StoreResult<T> {
    serde_json::from_value(get::<serde_json::Value>(row, col)?).map_err(|_| corrupt(col))
}

pub(crate) fn hash32(row: &PgRow, col: &str) -> StoreResult<[u8; 32]> {
    get::<Vec<u8>>(row, col)?
        .try_into()
        .map_err(|_| corrupt(col))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| StoreError::Backend(e.to_string()))
}

pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
