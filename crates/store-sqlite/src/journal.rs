//! Invocation records on their way into an org's file.
//!
//! Writing an invocation's usage event and audit entry (or a key's last-used time)
//! straight into its org's SQLite file needs that file open. With thousands of orgs most are not, and opening one (a
//! connection thread, the WAL files, the schema; closing another to stay within
//! `MAX_OPEN_TENANTS`) costs far more than the records. So the recorder appends each
//! batch as one JSON line to `tenants/<org-id>.records` (after a header line holding
//! the journal's id), a file of that org alone, and the records move into the org's
//! SQLite file in one transaction:
//!
//! - before a read of what it carries (usage events, audit entries, API keys with
//!   their last use) and before any write transaction on the file, so such reads see
//!   every record and audit sequence numbers follow the order of events (reads of
//!   anything else, the invoke path's among them, do not wait for an import);
//! - when the journal passes [`IMPORT_AT_BYTES`], so it stays small.
//!
//! A line is written with one `write` call before the recorder counts its batch as
//! written: it survives a crash of the process (as a committed WAL transaction with
//! `synchronous=NORMAL` does); a torn last line (power loss) is skipped. Importing is
//! exactly once: the journal is renamed to `.importing` before it is read, its id is
//! recorded in the same transaction as its records (`imported_journals`), and a
//! journal whose id is already recorded is only deleted.

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tenantry_core::{ApiKeyId, OrgId};
use tenantry_store::{AuditEntry, StoreError, StoreResult, UsageEvent};

use crate::db_err;
use crate::rows::ts;
use crate::tenant::{INSERT_AUDIT, INSERT_USAGE, bind_chained, bind_usage, chain_head};

/// A journal this large is imported by the append that reaches it.
pub(crate) const IMPORT_AT_BYTES: u64 = 256 * 1024;

#[derive(Serialize, Deserialize)]
struct Header {
    journal: uuid::Uuid,
}

#[derive(Serialize, Deserialize)]
struct Batch {
    #[serde(default)]
    usage: Vec<UsageEvent>,
    #[serde(default)]
    audit: Vec<AuditEntry>,
    /// Keys used (their last-used time, kept to the minute).
    #[serde(default)]
    touched: Vec<Touch>,
}

/// A key's use, applied as `last_used_at` unless that is already later.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Touch {
    pub(crate) key_id: ApiKeyId,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) at: time::OffsetDateTime,
}

/// One org's journal.
pub(crate) struct Journal {
    records: PathBuf,
    importing: PathBuf,
    /// Serialises appends with the rename that starts an import.
    state: Mutex<State>,
    /// One import of this org at a time.
    import: tokio::sync::Mutex<()>,
}

struct State {
    /// Records may be waiting (in `.records` or a leftover `.importing`).
    pending: bool,
    /// Bytes in `.records`.
    bytes: u64,
    /// `.records` ends in a torn line: start the next on a new line.
    torn: bool,
}

fn last_byte(path: &Path) -> Option<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(SeekFrom::End(-1)).ok()?;
    let mut b = [0u8];
    f.read_exact(&mut b).ok()?;
    Some(b[0])
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("{what} {}: {e}", path.display()))
}

impl Journal {
    /// The journal of `org` in `dir` (the tenants folder); notices records left by an
    /// earlier process.
    pub(crate) fn new(dir: &Path, org: OrgId) -> Self {
        let records = dir.join(format!("{org}.records"));
        let importing = dir.join(format!("{org}.importing"));
        let bytes = std::fs::metadata(&records).map_or(0, |m| m.len());
        let pending = bytes > 0 || importing.exists();
        // A line torn by a crash must not swallow the next one.
        let torn = bytes > 0 && last_byte(&records) != Some(b'\n');
        Self {
            records,
            importing,
            state: Mutex::new(State {
                pending,
                bytes,
                torn,
            }),
            import: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        crate::lock(&self.state)
    }

    pub(crate) fn pending(&self) -> bool {
        self.state().pending
    }

    /// Appends one batch; returns whether the journal should now be imported.
    pub(crate) fn append(
        &self,
        usage: &[UsageEvent],
        audit: &[AuditEntry],
        touched: &[Touch],
    ) -> StoreResult<bool> {
        let batch = Batch {
            usage: usage.to_vec(),
            audit: audit.to_vec(),
            touched: touched.to_vec(),
        };
        let mut line = serde_json::to_vec(&batch)
            .map_err(|e| StoreError::Backend(format!("encode records: {e}")))?;
        line.push(b'\n');
        let mut st = self.state();
        if st.torn {
            line.insert(0, b'\n');
        }
        if st.bytes == 0 {
            let mut header = serde_json::to_vec(&Header {
                journal: uuid::Uuid::new_v4(),
            })
            .map_err(|e| StoreError::Backend(format!("encode journal header: {e}")))?;
            header.push(b'\n');
            header.extend_from_slice(&line);
            line = header;
        }
        // Small, sequential writes to a file of this org: not worth a thread hop.
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.records)
            .map_err(|e| io("open", &self.records, e))?;
        f.write_all(&line)
            .map_err(|e| io("append to", &self.records, e))?;
        st.bytes += line.len() as u64;
        st.pending = true;
        st.torn = false;
        Ok(st.bytes >= IMPORT_AT_BYTES)
    }

    /// Moves every record waiting when this is called into the org's file.
    /// Waits for a running import and keeps others out while the guard lives.
    pub(crate) async fn lock_import(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.import.lock().await
    }

    pub(crate) async fn import(&self, pool: &SqlitePool, org: OrgId) -> StoreResult<()> {
        let _one = self.import.lock().await;
        if !self.pending() {
            return Ok(());
        }
        // A leftover from an import that did not finish goes first (older records).
        if tokio::fs::try_exists(&self.importing)
            .await
            .unwrap_or(false)
        {
            self.import_file(pool, org).await?;
        }
        {
            let mut st = self.state();
            match std::fs::rename(&self.records, &self.importing) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    st.pending = false;
                    return Ok(());
                }
                Err(e) => return Err(io("rename", &self.records, e)),
            }
            st.bytes = 0;
            st.pending = false;
            st.torn = false;
        }
        self.import_file(pool, org).await
    }

    /// Imports `.importing` (exactly once) and deletes it.
    async fn import_file(&self, pool: &SqlitePool, org: OrgId) -> StoreResult<()> {
        let text = tokio::fs::read_to_string(&self.importing)
            .await
            .map_err(|e| io("read", &self.importing, e))?;
        let mut lines = text.lines();
        let header: Option<Header> = lines.next().and_then(|l| serde_json::from_str(l).ok());
        let mut batches = Vec::new();
        for line in lines {
            match serde_json::from_str::<Batch>(line) {
                Ok(b) => batches.push(b),
                // Only a power loss can tear a line, and only the last one.
                Err(e) => tracing::warn!(%org, error = %e, "skipping a torn journal line"),
            }
        }
        if let Some(header) = header {
            let org_s = org.to_string();
            let id = header.journal.to_string();
            let mut conn = pool.acquire().await.map_err(db_err)?;
            let result = async {
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                let done = sqlx::query(
                    "SELECT 1 AS one FROM imported_journals WHERE org_id = ? AND id = ?",
                )
                .bind(&org_s)
                .bind(&id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?;
                if done.is_none() {
                    // Entries are chained after the org's last one (see
                    // `tenantry_store::chain`), in the journal's order.
                    let mut head = chain_head(&mut conn, &org_s).await?;
                    for b in &batches {
                        for (usage, audit) in append_statements(&b.usage, &b.audit) {
                            let mut q = sqlx::query(sqlx::AssertSqlSafe(inserts_sql(
                                usage.len(),
                                audit.len(),
                            )));
                            for e in usage {
                                q = bind_usage(q, &org_s, e);
                            }
                            q = bind_chained(q, org, &mut head, audit)?;
                            q.execute(&mut *conn).await.map_err(db_err)?;
                        }
                        for t in &b.touched {
                            sqlx::query(
                                "UPDATE api_keys SET last_used_at = ? WHERE org_id = ? AND id = ? \
                                 AND (last_used_at IS NULL OR last_used_at < ?)",
                            )
                            .bind(ts(t.at))
                            .bind(&org_s)
                            .bind(t.key_id.to_string())
                            .bind(ts(t.at))
                            .execute(&mut *conn)
                            .await
                            .map_err(db_err)?;
                        }
                    }
                    sqlx::query(
                        "INSERT INTO imported_journals (org_id, id, imported_at) VALUES (?, ?, ?)",
                    )
                    .bind(&org_s)
                    .bind(&id)
                    .bind(ts(tenantry_core::now()))
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                }
                sqlx::query("COMMIT")
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)
            }
            .await;
            if let Err(e) = result {
                // Leave the connection outside any transaction; if even that fails,
                // do not reuse it. The journal stays for the next import.
                if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                    conn.close_on_drop();
                }
                self.state().pending = true;
                return Err(e);
            }
        }
        tokio::fs::remove_file(&self.importing)
            .await
            .map_err(|e| io("remove", &self.importing, e))
    }
}

/// Records inserted per statement string (one round trip each).
const APPEND_CHUNK: usize = 32;

/// The inserts of up to [`APPEND_CHUNK`] usage events and audit entries as one
/// string: one round trip to the connection's thread (sqlx runs every statement of a
/// string, binding the arguments in order). Built from `INSERT_USAGE` and `INSERT_AUDIT` only.
fn inserts_sql(usage: usize, audit: usize) -> String {
    let mut sql = String::new();
    for _ in 0..usage {
        sql.push_str(INSERT_USAGE);
        sql.push(';');
    }
    for _ in 0..audit {
        sql.push_str(INSERT_AUDIT);
        sql.push(';');
    }
    sql
}

/// Splits records into chunks for [`inserts_sql`].
fn append_statements<'a>(
    usage: &'a [UsageEvent],
    audit: &'a [AuditEntry],
) -> impl Iterator<Item = (&'a [UsageEvent], &'a [AuditEntry])> {
    let (mut u, mut a) = (usage.chunks(APPEND_CHUNK), audit.chunks(APPEND_CHUNK));
    std::iter::from_fn(move || {
        let (uc, ac) = (u.next().unwrap_or_default(), a.next().unwrap_or_default());
        (!uc.is_empty() || !ac.is_empty()).then_some((uc, ac))
    })
}
