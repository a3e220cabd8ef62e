//! Batched writes of invocation usage events and audit entries.
//!
//! The invoke path hands each record to a channel and returns; one background task
//! groups records by org and writes each org's batch in one transaction, every
//! [`FLUSH_INTERVAL`] or [`MAX_BATCH`] records, whichever comes first. So no request
//! waits for a disk flush. [`Recorder::shutdown`] drains the channel: a clean
//! shutdown loses nothing. A crash (`kill -9`, power loss) can lose the records of
//! the last interval (≤ 50 ms of invocations): their results were already returned,
//! so only metering and the audit trail of those invocations are lost. That is the
//! price of not putting a synchronous flush on every invocation; mutations (installs,
//! secrets, keys…) are never batched and are durable when they answer.

use std::collections::HashMap;
use std::time::Duration;
use tenantry_core::{OrgId, TenantScope};
use tenantry_store::{AuditEntry, TenantStore, UsageEvent};
use tokio::sync::{mpsc, oneshot};

pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
pub const MAX_BATCH: usize = 512;

/// One invocation's records.
pub struct Record {
    pub scope: TenantScope,
    pub usage: UsageEvent,
    pub audit: AuditEntry,
}

enum Msg {
    Record(Box<Record>),
    Flush(oneshot::Sender<()>),
}

/// Handle to the background writer. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Recorder {
    /// Starts the writer on the current tokio runtime.
    pub fn start(tenants: std::sync::Arc<dyn TenantStore>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(tenants, rx));
        Self { tx }
    }

    pub fn record(&self, r: Record) {
        if self.tx.send(Msg::Record(Box::new(r))).is_err() {
            tracing::error!("usage recorder is stopped; an invocation record was dropped");
        }
    }

    /// Waits until everything recorded so far is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Flushes; call on shutdown.
    pub async fn shutdown(&self) {
        self.flush().await;
    }
}

async fn run(tenants: std::sync::Arc<dyn TenantStore>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut pending: Vec<Record> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let msg = if pending.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout(FLUSH_INTERVAL, rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    write(&*tenants, std::mem::take(&mut pending)).await;
                    continue;
                }
            }
        };
        match msg {
            Some(Msg::Record(r)) => {
                pending.push(*r);
                if pending.len() >= MAX_BATCH {
                    write(&*tenants, std::mem::take(&mut pending)).await;
                }
            }
            Some(Msg::Flush(w)) => {
                waiters.push(w);
                // Take everything already queued, then write and answer.
                while let Ok(m) = rx.try_recv() {
                    match m {
                        Msg::Record(r) => pending.push(*r),
                        Msg::Flush(w) => waiters.push(w),
                    }
                }
                write(&*tenants, std::mem::take(&mut pending)).await;
                for w in waiters.drain(..) {
                    let _ = w.send(());
                }
            }
            None => {
                write(&*tenants, std::mem::take(&mut pending)).await;
                return;
            }
        }
    }
}

async fn write(tenants: &dyn TenantStore, records: Vec<Record>) {
    let mut by_org: HashMap<OrgId, Vec<Record>> = HashMap::new();
    for r in records {
        by_org.entry(r.scope.org_id()).or_default().push(r);
    }
    for (org, batch) in by_org {
        let result = async {
            let mut tx = tenants.begin(&batch[0].scope, true).await?;
            let usage: Vec<UsageEvent> = batch.iter().map(|r| r.usage.clone()).collect();
            tx.insert_usage(&usage).await?;
            for r in &batch {
                tx.append_audit(&r.audit).await?;
            }
            tx.commit().await
        }
        .await;
        if let Err(e) = result {
            tracing::error!(%org, records = batch.len(), error = %e, "writing invocation records failed");
        }
    }
}
