//! In-memory copies of the rows every request reads (a key's credential, an org's
//! tier, an install, a binding, a publisher key), so the invoke path does not make a
//! round trip to a SQLite connection thread for each of them.
//!
//! Exact, not eventually consistent: the embedded store is the only writer of its
//! files (one server holds the data directory's lock), so it knows every write. Each
//! write that may change a kept row runs under a [`Writing`] guard, which forgets
//! everything kept for that file when the write starts and again when it has ended
//! (committed or rolled back). A read may keep what it read only if no write was
//! running when it started and none has started since ([`Token`]): so a kept row is
//! never older than the last committed write, and a revoked key, a changed role or
//! grant, a disabled install or a removed binding applies at the next request.
//! Appends that cannot change a kept row (usage events, audit entries) do not
//! invalidate.
//!
//! Bounds: each map keeps at most [`MAX_KEPT`] entries and starts over when full.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

/// Entries one map keeps before it starts over.
pub(crate) const MAX_KEPT: usize = 50_000;

/// The kept rows of one file, with the generation that says when they are stale.
pub(crate) struct Hot<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    generation: u64,
    writers: u32,
    rows: T,
}

/// Permission to keep the result of a read that started when this was taken.
pub(crate) struct Token(u64);

impl<T: Default> Default for Hot<T> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                generation: 0,
                writers: 0,
                rows: T::default(),
            }),
        }
    }
}

impl<T: Default> Hot<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        crate::lock(&self.state)
    }

    /// Reads the kept rows.
    pub(crate) fn get<R>(&self, f: impl FnOnce(&T) -> Option<R>) -> Option<R> {
        f(&self.lock().rows)
    }

    /// Changes kept rows in place to what a write about to happen will store (never
    /// to anything older than the file holds).
    pub(crate) fn update(&self, f: impl FnOnce(&mut T)) {
        f(&mut self.lock().rows);
    }

    /// Taken before reading the file; `None` while a write is running.
    pub(crate) fn token(&self) -> Option<Token> {
        let s = self.lock();
        (s.writers == 0).then_some(Token(s.generation))
    }

    /// Keeps what a read found, if nothing was written since `token` was taken.
    pub(crate) fn keep(&self, token: Option<Token>, f: impl FnOnce(&mut T)) {
        let mut s = self.lock();
        if token.is_some_and(|t| t.0 == s.generation) {
            f(&mut s.rows);
        }
    }

    fn forget(s: &mut State<T>) {
        s.generation += 1;
        s.rows = T::default();
    }
}

impl<T: Default> Hot<T> {
    /// Marks a write as running until the guard is dropped (after its commit or
    /// rollback).
    pub(crate) fn writing(self: &Arc<Self>) -> Writing<T> {
        let mut s = self.lock();
        s.writers += 1;
        Self::forget(&mut s);
        drop(s);
        Writing(self.clone())
    }
}

/// A running write; see [`Hot::writing`].
pub(crate) struct Writing<T: Default>(Arc<Hot<T>>);

impl<T: Default> Drop for Writing<T> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.writers -= 1;
        Hot::forget(&mut s);
    }
}

/// Inserts into a kept map, starting over when it is full.
pub(crate) fn put<K: Eq + Hash, V>(map: &mut HashMap<K, V>, k: K, v: V) {
    if map.len() >= MAX_KEPT {
        map.clear();
    }
    map.insert(k, v);
}

#[cfg(test)]
mod tests {
    use super::*;

    type Rows = HashMap<u32, u32>;

    #[test]
    fn a_read_that_overlaps_a_write_keeps_nothing() {
        let hot: Arc<Hot<Rows>> = Arc::default();
        // The read starts, a write starts and ends, the read finishes: stale.
        let t = hot.token();
        drop(hot.writing());
        hot.keep(t, |m| put(m, 1, 1));
        assert_eq!(hot.get(|m| m.get(&1).copied()), None);
        // A read that starts while a write runs keeps nothing either.
        let w = hot.writing();
        assert!(hot.token().is_none());
        drop(w);
        // A read with no write around it is kept, until the next write starts.
        let t = hot.token();
        hot.keep(t, |m| put(m, 1, 1));
        assert_eq!(hot.get(|m| m.get(&1).copied()), Some(1));
        let _w = hot.writing();
        assert_eq!(hot.get(|m| m.get(&1).copied()), None);
    }

    #[test]
    fn a_full_map_starts_over() {
        let mut m = HashMap::new();
        for i in 0..=MAX_KEPT {
            put(&mut m, i, i);
        }
        assert_eq!(m.len(), 1);
    }
}
