//! Rows the pooled store keeps in memory: the ones every invocation reads (a key's
//! credential, the org record, an install, a binding, a publisher key), so an
//! invocation makes one round trip to PostgreSQL (its key lookup) instead of about
//! ten.
//!
//! Other servers write the same tables, so this server cannot know every write as
//! the embedded store does. Instead each write that can change a kept row adds one to
//! a counter in the same transaction (`generations`, bumped by triggers: migration
//! 0005), one per org and one for the registry. The key lookup that starts every
//! authenticated request reads both counters in the same statement ([`Seen`]). A row
//! is kept with the counter the request had seen before reading it, and is used
//! for a later request only if that request has seen no later counter: so anything
//! committed on any server before a request's lookup (a revoked key, a changed grant
//! or role, a disabled install, a removed binding, a new tier, a revoked publisher
//! key) applies to that request. Reads without a [`Seen`] (every path but
//! authentication and the invoke path) always read the database.
//!
//! Each entry is keyed by its org (or, for publisher keys, by the key id of the
//! registry, which no org owns), so no key of one org can reach another org's rows.
//! Bounds: each table keeps at most [`MAX_KEPT`] entries and starts over when full.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use tenantry_core::scope::CredentialRecord;
use tenantry_core::{AgentId, ApiKeyId, InstallId, OrgId};
use tenantry_store::{InstallRecord, OrgRecord, PublisherKeyRecord, Seen};
use time::OffsetDateTime;

/// Entries one table keeps before it starts over.
pub(crate) const MAX_KEPT: usize = 50_000;

/// A key's credential as read (before its hash is compared): the record, its
/// last-used time and the stored hash; `None` when the key or its principal is gone.
pub(crate) type Credential = Option<(CredentialRecord, Option<OffsetDateTime>, [u8; 32])>;

/// The kept rows of one server.
#[derive(Default)]
pub(crate) struct Kept {
    pub credentials: Table<(OrgId, ApiKeyId), Credential>,
    pub orgs: Table<OrgId, Option<OrgRecord>>,
    pub installs: Table<(OrgId, InstallId), Option<InstallRecord>>,
    pub bindings: Table<(OrgId, AgentId, InstallId), bool>,
    pub publisher_keys: Table<String, Option<PublisherKeyRecord>>,
}

/// Which counter of a [`Seen`] covers a table.
#[derive(Clone, Copy)]
pub(crate) enum Counter {
    Org,
    Registry,
}

impl Counter {
    /// The generation a request has seen, if it has seen one.
    pub fn of(self, seen: Seen) -> Option<u64> {
        seen.generations().map(|g| match self {
            Counter::Org => g.org,
            Counter::Registry => g.registry,
        })
    }
}

/// One kept table: each value with the generation that was seen before it was read.
pub(crate) struct Table<K, V>(Mutex<HashMap<K, (u64, V)>>);

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<K: Eq + Hash, V: Clone> Table<K, V> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K, (u64, V)>> {
        // A panic while holding the lock cannot leave a map half-changed.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept value, if it was read at or after generation `seen`.
    pub fn get<Q>(&self, key: &Q, seen: Option<u64>) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let seen = seen?;
        let map = self.lock();
        let (generation, value) = map.get(key)?;
        (*generation >= seen).then(|| value.clone())
    }

    /// Keeps a value read after generation `seen` was seen, unless a value read at a
    /// later generation is kept already.
    pub fn keep(&self, key: K, seen: Option<u64>, value: V) {
        let Some(seen) = seen else { return };
        let mut map = self.lock();
        if map.get(&key).is_some_and(|(g, _)| *g > seen) {
            return;
        }
        if map.len() >= MAX_KEPT && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(key, (seen, value));
    }

    /// Changes a kept value in place (for a write that changes nothing another
    /// server's reads depend on: a key's last-used time).
    pub fn update(&self, key: &K, f: impl FnOnce(&mut V)) {
        if let Some((_, v)) = self.lock().get_mut(key) {
            f(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_before_a_later_generation_is_not_used() {
        let t: Table<u32, u32> = Table::default();
        t.keep(1, Some(5), 10);
        assert_eq!(t.get(&1, Some(5)), Some(10));
        assert_eq!(t.get(&1, Some(4)), Some(10), "newer than what was seen");
        assert_eq!(t.get(&1, Some(6)), None, "a write was committed since");
        assert_eq!(t.get(&1, None), None, "nothing seen: read the database");
    }

    #[test]
    fn an_older_read_never_replaces_a_newer_one() {
        let t: Table<u32, u32> = Table::default();
        t.keep(1, Some(7), 70);
        t.keep(1, Some(6), 60);
        assert_eq!(t.get(&1, Some(7)), Some(70));
        t.keep(1, None, 0);
        assert_eq!(t.get(&1, Some(7)), Some(70));
    }

    #[test]
    fn a_full_table_starts_over() {
        let t: Table<usize, usize> = Table::default();
        for i in 0..=MAX_KEPT {
            t.keep(i, Some(1), i);
        }
        assert_eq!(t.lock().len(), 1);
    }
}
