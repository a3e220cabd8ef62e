//! How this backend stores values ([`Cols`], its `tenantry_store::Columns` impl) and
//! how it binds them; which column is which field lives in `tenantry_store::rows`.

use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::{Decode, Postgres, Row, Type};
use tenantry_store::{Columns, FromColumns, StoreError, StoreResult, corrupt};
use time::OffsetDateTime;
use uuid::Uuid;

/// Any column whose Rust type sqlx decodes directly.
pub(crate) fn get<'r, T>(row: &'r PgRow, col: &str) -> StoreResult<T>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get::<T, _>(col).map_err(|_| corrupt(col))
}

/// A row read through [`Columns`]: native `uuid`, `timestamptz`, `jsonb`, `boolean`
/// and integer columns of any width.
pub(crate) struct Cols<'r>(pub(crate) &'r PgRow);

impl Columns for Cols<'_> {
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        get(self.0, col)
    }

    /// `bigint`, or a narrower `integer` / `smallint` (e.g. `reviews.rating`).
    fn opt_i64(&self, col: &str) -> StoreResult<Option<i64>> {
        if let Ok(v) = self.0.try_get::<Option<i64>, _>(col) {
            return Ok(v);
        }
        if let Ok(v) = self.0.try_get::<Option<i32>, _>(col) {
            return Ok(v.map(i64::from));
        }
        Ok(get::<Option<i16>>(self.0, col)?.map(i64::from))
    }

    fn opt_f64(&self, col: &str) -> StoreResult<Option<f64>> {
        get(self.0, col)
    }

    fn bool(&self, col: &str) -> StoreResult<bool> {
        get(self.0, col)
    }

    fn opt_bytes(&self, col: &str) -> StoreResult<Option<Vec<u8>>> {
        get(self.0, col)
    }

    fn opt_time(&self, col: &str) -> StoreResult<Option<OffsetDateTime>> {
        get(self.0, col)
    }

    fn opt_uuid_text(&self, col: &str) -> StoreResult<Option<String>> {
        Ok(get::<Option<Uuid>>(self.0, col)?.map(|u| u.to_string()))
    }

    fn json<T: DeserializeOwned>(&self, col: &str) -> StoreResult<T> {
        serde_json::from_value(get::<serde_json::Value>(self.0, col)?).map_err(|_| corrupt(col))
    }
}

/// A statement with its binds.
pub(crate) type Query<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// A record from its row (see [`tenantry_store::rows`]).
pub(crate) fn read<T: FromColumns>(row: &PgRow) -> StoreResult<T> {
    T::from_row(&Cols(row))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| StoreError::Backend(e.to_string()))
}

pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
