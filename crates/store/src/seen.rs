//! [`Seen`]: how far a request has seen the rows a backend may keep in memory.

/// How far one request has seen the rows a backend keeps in memory (an org's keys,
/// principals, installs and bindings; the org record; publisher keys), read in the
/// same statement as the key lookup that starts every authenticated request.
///
/// A backend that shares its storage with other servers (pooled) answers from kept
/// rows only if they were read at or after this point, so a write committed on any
/// node before the request's lookup (a revoked key, a changed grant, a disabled
/// install) is never hidden by a kept row. [`Seen::NOTHING`] (any path that did
/// not look a key up) always reads storage. A backend that is the only writer of its
/// storage (embedded) keeps its rows exact by itself and ignores this.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen(Option<Generations>);

/// The counters behind a [`Seen`]: each grows with every write to the kept rows it
/// covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generations {
    /// The org's own rows and its org record.
    pub org: u64,
    /// Rows of no org that invocations read (publisher keys).
    pub registry: u64,
}

impl Seen {
    /// Nothing seen: read storage.
    pub const NOTHING: Seen = Seen(None);

    /// Seen up to these generations.
    pub fn at(generations: Generations) -> Self {
        Self(Some(generations))
    }

    /// The generations seen, if any.
    pub fn generations(self) -> Option<Generations> {
        self.0
    }
}
