//! Column decoding helpers shared by the control and tenant stores.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use std::str::FromStr;
use tenantry_store::{StoreError, StoreResult};
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt column {what}"))
}

pub(crate) fn text(row: &SqliteRow, col: &str) -> StoreResult<String> {
    row.try_get::<String, _>(col).map_err(|_| corrupt(col))
}

pub(crate) fn opt_text(row: &SqliteRow, col: &str) -> StoreResult<Option<String>> {
    row.try_get::<Option<String>, _>(col)
        .map_err(|_| corrupt(col))
}

pub(crate) fn int(row: &SqliteRow, col: &str) -> StoreResult<i64> {
    row.try_get::<i64, _>(col).map_err(|_| corrupt(col))
}

pub(crate) fn uint(row: &SqliteRow, col: &str) -> StoreResult<u64> {
    u64::try_from(int(row, col)?).map_err(|_| corrupt(col))
}

pub(crate) fn blob(row: &SqliteRow, col: &str) -> StoreResult<Vec<u8>> {
    row.try_get::<Vec<u8>, _>(col).map_err(|_| corrupt(col))
}

pub(crate) fn time(row: &SqliteRow, col: &str) -> StoreResult<OffsetDateTime> {
    row.try_get::<OffsetDateTime, _>(col)
        .map_err(|_| corrupt(col))
}

pub(crate) fn opt_time(row: &SqliteRow, col: &str) -> StoreResult<Option<OffsetDateTime>> {
    row.try_get::<Option<OffsetDateTime>, _>(col)
        .map_err(|_| corrupt(col))
}

pub(crate) fn uuid(row: &SqliteRow, col: &str) -> StoreResult<Uuid> {
    Uuid::try_parse(&text(row, col)?).map_err(|_| corrupt(col))
}

pub(crate) fn id<T: FromStr>(row: &SqliteRow, col: &str) -> StoreResult<T> {
    T::from_str(&text(row, col)?).map_err(|_| corrupt(col))
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(row: &SqliteRow, col: &str) -> StoreResult<T> {
    serde_json::from_str(&text(row, col)?).map_err(|_| corrupt(col))
}

pub(crate) fn hash32(row: &SqliteRow, col: &str) -> StoreResult<[u8; 32]> {
    blob(row, col)?.try_into().map_err(|_| corrupt(col))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(e.to_string()))
}

/// How a timestamp is stored: in UTC, to the microsecond (finer digits dropped, as
/// the pooled store does), with a fixed width, e.g. `2026-09-21T13:33:20.000000Z`.
/// SQLite compares these as text, so only one fixed form makes text order time order:
/// `time`'s RFC 3339 output omits a zero fraction and keeps the offset, which sorts
/// `…:20Z` after `…:20.5Z` and `+02:00` times apart from UTC ones. Every timestamp
/// bound into a statement (values and filter bounds alike) goes through this.
pub(crate) fn ts(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

pub(crate) fn opt_ts(t: Option<OffsetDateTime>) -> Option<String> {
    t.map(ts)
}

/// A timestamp as [`ts`] stores it (what a read returns).
pub(crate) fn stored(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(t.microsecond() * 1000).unwrap_or(t)
}

pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
