//! Batched writes of invocation usage events and audit entries.
//!
//! The invoke path hands each record to a channel and returns; one background task
//! groups records by org and hands the batch to the store (`append_batch`: the
//! embedded store writes each org's records to its own journal, the pooled store the
//! whole batch in one statement) at most
//! [`FLUSH_INTERVAL`] after the batch's first record, or at [`MAX_BATCH`] records,
//! whichever comes first (the deadline does not move as records keep arriving). So
//! no request waits for a disk flush. The channel is bounded ([`QUEUE`]): if the
//! writer falls behind, invocations wait to hand over their records rather than
//! pile up in memory. [`Recorder::shutdown`] drains the channel: a clean
//! shutdown loses nothing. A crash (`kill -9`, power loss) can lose the records of
//! the last interval (≤ 50 ms of invocations): their results were already returned,
//! so only metering and the audit trail of those invocations are lost. That is the
//! price of not putting a synchronous flush on every invocation; mutations (installs,
//! secrets, keys…) are never batched and are durable when they answer.

use std::collections::HashMap;
use std::time::Duration;
use tenantry_core::{OrgId, TenantScope};
use tenantry_store::{AuditEntry, OrgRecords, TenantStore, UsageEvent};
use tokio::sync::{mpsc, oneshot};

pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
pub const MAX_BATCH: usize = 512;
/// Records waiting for the writer before invocations wait for it.
pub const QUEUE: usize = 4 * MAX_BATCH;

/// One invocation's records (an execution's engine run has no usage event of its
/// own: its tool calls have theirs).
pub struct Record {
    pub scope: TenantScope,
    pub usage: Option<UsageEvent>,
    pub audit: AuditEntry,
}

enum Msg<T> {
    Record(Box<T>),
    Flush(oneshot::Sender<()>),
}

/// Handle to the background writer. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Msg<Record>>,
}

impl Recorder {
    /// Starts the writer on the current tokio runtime.
    pub fn start(
        tenants: std::sync::Arc<dyn TenantStore>,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
        changed: crate::audit::Changed,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(batches(rx, move |records| {
            let (tenants, metrics, changed) = (tenants.clone(), metrics.clone(), changed.clone());
            async move {
                let started = std::time::Instant::now();
                changed.mark(records.iter().map(|r: &Record| r.scope.org_id()));
                write(&*tenants, records).await;
                metrics.recorder_flushed(started.elapsed());
            }
        }));
        Self { tx }
    }

    /// Records waiting for the writer.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Hands a record to the writer; waits only if the writer is [`QUEUE`] behind.
    pub async fn record(&self, r: Record) {
        if self.tx.send(Msg::Record(Box::new(r))).await.is_err() {
            tracing::error!("usage recorder is stopped; an invocation record was dropped");
        }
    }

    /// Waits until everything recorded so far is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Flushes; call on shutdown.
    pub async fn shutdown(&self) {
        self.flush().await;
    }
}

/// The batching loop: collects items and hands them to `write` at most
/// [`FLUSH_INTERVAL`] after the first item of a batch, at [`MAX_BATCH`] items, on a
/// flush request, and when every sender is gone.
async fn batches<T, F, Fut>(mut rx: mpsc::Receiver<Msg<T>>, mut write: F)
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut pending: Vec<T> = Vec::new();
    let mut deadline = tokio::time::Instant::now();
    loop {
        let msg = if pending.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    write(std::mem::take(&mut pending)).await;
                    continue;
                }
            }
        };
        match msg {
            Some(Msg::Record(r)) => {
                if pending.is_empty() {
                    deadline = tokio::time::Instant::now() + FLUSH_INTERVAL;
                }
                pending.push(*r);
                if pending.len() >= MAX_BATCH {
                    write(std::mem::take(&mut pending)).await;
                }
            }
            Some(Msg::Flush(w)) => {
                let mut waiters = vec![w];
                // Take everything already queued, then write and answer.
                while let Ok(m) = rx.try_recv() {
                    match m {
                        Msg::Record(r) => pending.push(*r),
                        Msg::Flush(w) => waiters.push(w),
                    }
                }
                write(std::mem::take(&mut pending)).await;
                for w in waiters {
                    let _ = w.send(());
                }
            }
            None => {
                write(std::mem::take(&mut pending)).await;
                return;
            }
        }
    }
}

async fn write(tenants: &dyn TenantStore, records: Vec<Record>) {
    if records.is_empty() {
        return;
    }
    let mut by_org: HashMap<OrgId, OrgRecords> = HashMap::new();
    for r in records {
        let org = by_org
            .entry(r.scope.org_id())
            .or_insert_with(|| OrgRecords {
                scope: r.scope,
                usage: Vec::new(),
                audit: Vec::new(),
            });
        org.usage.extend(r.usage);
        org.audit.push(r.audit);
    }
    for (org, e) in tenants.append_batch(by_org.into_values().collect()).await {
        tracing::error!(%org, error = %e, "writing invocation records failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::time::Instant;

    /// Under a steady stream (a record every 10 ms, so the channel is never quiet
    /// for 50 ms), every record is written within FLUSH_INTERVAL of its batch's first
    /// record: a crash loses at most that much, not everything since the last
    /// MAX_BATCH.
    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_is_flushed_every_interval_not_only_at_max_batch() {
        let (tx, rx) = mpsc::channel::<Msg<Instant>>(QUEUE);
        type Batches = Vec<(Instant, Vec<Instant>)>;
        let written: Arc<Mutex<Batches>> = Arc::default();
        let w = written.clone();
        let writer = tokio::spawn(batches(rx, move |batch| {
            w.lock().unwrap().push((Instant::now(), batch));
            async {}
        }));
        for _ in 0..100 {
            tx.send(Msg::Record(Box::new(Instant::now())))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(tx);
        writer.await.unwrap();
        let written = written.lock().unwrap();
        let records: usize = written.iter().map(|(_, b)| b.len()).sum();
        assert_eq!(records, 100);
        assert!(written.len() >= 15, "only {} batches", written.len());
        for (at, batch) in written.iter() {
            let waited = *at - batch[0];
            assert!(
                waited <= FLUSH_INTERVAL,
                "a record waited {waited:?} to be written"
            );
        }
    }
}
