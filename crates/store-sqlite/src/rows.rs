//! How this backend stores values ([`Cols`], its `tenantry_store::Columns` impl) and
//! how it binds them; which column is which field lives in `tenantry_store::rows`.

use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use tenantry_store::{Columns, FromColumns, StoreError, StoreResult, corrupt};
use time::OffsetDateTime;

/// A row read through [`Columns`]: uuids and JSON are stored as text, times as
/// [`ts`] text, booleans as integers.
pub(crate) struct Cols<'r>(pub(crate) &'r SqliteRow);

impl Cols<'_> {
    fn get<'r, T>(&'r self, col: &str) -> StoreResult<T>
    where
        T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    {
        self.0.try_get::<T, _>(col).map_err(|_| corrupt(col))
    }
}

impl Columns for Cols<'_> {
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        self.get(col)
    }

    fn opt_i64(&self, col: &str) -> StoreResult<Option<i64>> {
        self.get(col)
    }

    fn opt_f64(&self, col: &str) -> StoreResult<Option<f64>> {
        self.get(col)
    }

    fn bool(&self, col: &str) -> StoreResult<bool> {
        Ok(self.i64(col)? != 0)
    }

    fn opt_bytes(&self, col: &str) -> StoreResult<Option<Vec<u8>>> {
        self.get(col)
    }

    fn opt_time(&self, col: &str) -> StoreResult<Option<OffsetDateTime>> {
        self.get(col)
    }

    fn opt_uuid_text(&self, col: &str) -> StoreResult<Option<String>> {
        self.get(col)
    }

    fn json<T: DeserializeOwned>(&self, col: &str) -> StoreResult<T> {
        serde_json::from_str(&self.text(col)?).map_err(|_| corrupt(col))
    }
}

/// A statement with its binds.
pub(crate) type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// A record from its row (see [`tenantry_store::rows`]).
pub(crate) fn read<T: FromColumns>(row: &SqliteRow) -> StoreResult<T> {
    T::from_row(&Cols(row))
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
