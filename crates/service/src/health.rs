//! Readiness: each dependency of the server asked, and timed, now.
//!
//! Liveness needs nothing (the process answered). Readiness asks the control store
//! for a row count, Redis (when the limiters use it) for a `PING`, and watches the
//! runtime's epoch ticker advance (without it no wall-time limit holds), the sandbox
//! pool's occupancy and the recorder's queue. A failed store or a stalled ticker
//! makes the server not ready; an unreachable Redis (limits decided locally), a full
//! pool or a backed-up recorder make it ready but degraded, named in the check.

use std::time::{Duration, Instant};

use crate::Service;

/// How long one check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Serving, with less than it should have (the detail says what).
    Degraded,
    /// Not serving this dependency.
    Down,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Down => "down",
        }
    }
}

/// One dependency, as found now.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    /// How long asking took.
    pub took: Duration,
    pub detail: String,
}

/// Every check, and the verdict: ready unless a check is down.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub checks: Vec<Check>,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Down)
    }

    /// `ok`, `degraded` (ready, a check degraded) or `down` (not ready).
    pub fn status(&self) -> Status {
        self.checks
            .iter()
            .map(|c| c.status)
            .max_by_key(|s| *s as u8)
            .unwrap_or(Status::Ok)
    }
}

async fn timed<T>(fut: impl std::future::Future<Output = T>) -> (Option<T>, Duration) {
    let started = Instant::now();
    let r = tokio::time::timeout(CHECK_TIMEOUT, fut).await.ok();
    (r, started.elapsed())
}

pub async fn readiness(svc: &Service) -> Readiness {
    let (control, took) = timed(svc.control.count_operator_keys()).await;
    let store = match control {
        Some(Ok(_)) => (Status::Ok, "answered".to_string()),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the control store failed");
            (
                Status::Down,
                "the control store failed a read (see the server log)".into(),
            )
        }
        None => (Status::Down, format!("no answer within {CHECK_TIMEOUT:?}")),
    };
    let mut checks = vec![Check {
        name: "store",
        status: store.0,
        took,
        detail: store.1,
    }];

    let (ping, took) = timed(svc.limiters.ping()).await;
    let limiter = match ping {
        Some(None) => (Status::Ok, "in-process (one node)".to_string()),
        Some(Some(Ok(()))) => (Status::Ok, "redis answered".into()),
        Some(Some(Err(e))) => {
            tracing::warn!(error = %e, "readiness: redis failed");
            (
                Status::Degraded,
                "redis unreachable: rate limits and leases decided by this node alone".into(),
            )
        }
        None => (
            Status::Degraded,
            format!(
                "redis gave no answer within {CHECK_TIMEOUT:?}: limits decided by this node alone"
            ),
        ),
    };
    checks.push(Check {
        name: "limiter",
        status: limiter.0,
        took,
        detail: limiter.1,
    });

    let started = Instant::now();
    let before = svc.runtime.epoch_ticks();
    let tick = svc.runtime.config().epoch_tick;
    let mut advanced = false;
    // A few ticks' worth of waiting, at most 100 ms.
    for _ in 0..10 {
        tokio::time::sleep(tick.max(Duration::from_millis(1)) * 2).await;
        if svc.runtime.epoch_ticks() != before {
            advanced = true;
            break;
        }
    }
    let (live, max) = (
        svc.runtime.live_instances(),
        svc.runtime.config().max_instances as usize,
    );
    let runtime = if !advanced {
        (
            Status::Down,
            "the epoch ticker has stopped: wall-time limits cannot be enforced".to_string(),
        )
    } else if live >= max {
        (
            Status::Degraded,
            format!("sandbox pool full ({live} of {max})"),
        )
    } else {
        (Status::Ok, format!("{live} of {max} sandboxes in use"))
    };
    checks.push(Check {
        name: "runtime",
        status: runtime.0,
        took: started.elapsed(),
        detail: runtime.1,
    });

    let queued = svc.recorder.queued();
    checks.push(Check {
        name: "recorder",
        status: if queued >= crate::recorder::QUEUE {
            Status::Degraded
        } else {
            Status::Ok
        },
        took: Duration::ZERO,
        detail: format!("{queued} records waiting to be written"),
    });
    Readiness { checks }
}
