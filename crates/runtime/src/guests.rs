//! Where guest code runs: two small thread pools, foreground and background, in the
//! manner of a multilevel feedback queue.
//!
//! Every top-level invocation starts on the **foreground** threads (the process's
//! own priority), and most actions finish there within their first millisecond.
//! One that has spent its *quantum* (1 ms by default) of time in the guest's polls
//! is moved, at its next yield, to the **background** threads, which run under `SCHED_IDLE` on
//! Linux (or the lowest nice value where that is refused): the kernel preempts them
//! the moment any other thread wakes, and counts their core as idle when placing
//! wake-ups. So a tenant spinning up to its CPU budget uses only CPU nobody else
//! wants, while short invocations, request handling and storage never wait behind it
//! for a time slice. A background guest gets little CPU while the machine is busy;
//! its wall-time limit still ends it.
//!
//! Why not a lower nice value alone: under the kernel's EEVDF scheduler a running
//! thread of any weight keeps its core until its time slice ends (milliseconds), so every
//! wake-up of a request or storage thread that lands on the spinner's core waited for
//! it; that was most of a steady neighbour's tail latency (docs/benchmarks.md).
//!
//! Why a background thread also offers its core after every poll (`sched_yield`):
//! `SCHED_IDLE` wins only at wake-ups. When the kernel next picks a task for a core
//! it goes by EEVDF eligibility and deadline, not by policy, so a request thread
//! that was runnable but not eligible at that moment (say, just preempted by a
//! storage thread's wake-up) can lose the pick to the idle-policy guest, which then
//! keeps the core until the next tick (4 ms at `HZ=250`) while the request waits.
//! A scheduler trace of the noisy-neighbour benchmark showed exactly that, with the
//! other core idle. Yielding after each poll (a guest yields every 100,000 fuel,
//! tens of microseconds) bounds that wait by one poll; when nothing else is
//! runnable the call returns at once.
//!
//! Both pools yield to newcomers at every poll (`global_queue_interval(1)`), and a
//! guest yields every 100,000 fuel, so invocations sharing a thread interleave.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::{InvocationResult, Outcome, Stats};

/// The guest thread pools' shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestPool {
    /// Threads in each of the two pools.
    pub threads: usize,
    /// Time an invocation's guest may spend in polls on the foreground threads
    /// before it continues on the background threads.
    pub quantum: Duration,
}

impl GuestPool {
    /// One thread per core but one (at least one) in each pool, and a 1 ms
    /// quantum: no longer than one scheduler time slice, so a spinner's turn at
    /// normal priority does not make other threads wait for a slice to end. (10 ms
    /// measured worse for a steady neighbour's p95; 0.2–1 ms alike,
    /// docs/benchmarks.md.)
    pub fn for_this_machine() -> Self {
        Self {
            threads: std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1).max(1)),
            quantum: Duration::from_millis(1),
        }
    }
}

/// The guest future of one invocation; boxed so it can move between the pools
/// (between two polls a future may be polled from any thread).
pub(crate) type GuestFuture = Pin<Box<dyn Future<Output = InvocationResult> + Send>>;

/// The two pools of one runtime.
pub(crate) struct GuestThreads {
    foreground: Pool,
    background: Pool,
    quantum: Duration,
}

impl GuestThreads {
    pub(crate) fn new(pool: GuestPool) -> std::io::Result<Self> {
        Ok(Self {
            foreground: Pool::new(pool.threads, "tenantry-guest", || {})?,
            background: Pool::new(pool.threads, "tenantry-guest-bg", demote_this_thread)?,
            quantum: pool.quantum,
        })
    }

    /// Runs a guest: on the foreground threads for its quantum, then (if it has not
    /// finished) on the background threads. Dropping the returned future aborts the
    /// guest at its next yield.
    pub(crate) async fn run(&self, guest: GuestFuture) -> InvocationResult {
        let first = self.foreground.spawn(Quantum {
            guest: Some(guest),
            used: Duration::ZERO,
            quantum: self.quantum,
        });
        let rest = match first.join().await {
            Ok(Slice::Done(result)) => return result,
            Ok(Slice::Over(rest)) => rest,
            Err(e) => return stopped(e),
        };
        tracing::debug!(quantum = ?self.quantum, "guest moved to the background threads");
        match self.background.spawn(OfferTheCore(rest)).join().await {
            Ok(result) => result,
            Err(e) => stopped(e),
        }
    }
}

/// One tokio runtime of guest threads. Spawns through a handle (after shutdown a
/// spawned task ends at once, cancelled); the runtime is kept to shut it down.
struct Pool {
    handle: tokio::runtime::Handle,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Pool {
    fn new(threads: usize, name: &str, on_start: fn()) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(name)
            // New invocations arrive through the global queue. By default a worker
            // looks there only every few polls while its own queue has work (tokio
            // tunes it, 2–127), and a spinning guest that yields every 100,000
            // fuel keeps its queue busy: a newcomer would wait several of its time
            // slices. Look at every poll instead.
            .global_queue_interval(1)
            .on_thread_start(on_start)
            .enable_all()
            .build()?;
        Ok(Self {
            handle: rt.handle().clone(),
            runtime: Some(rt),
        })
    }

    fn spawn<F>(&self, f: F) -> AbortOnDrop<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        AbortOnDrop(self.handle.spawn(f))
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Never blocks, so this may run inside an async context (or a guest thread).
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn stopped(e: tokio::task::JoinError) -> InvocationResult {
    tracing::error!(error = %e, "the guest task ended without a result");
    InvocationResult {
        outcome: Outcome::Internal,
        output: None,
        error: Some("the sandbox stopped unexpectedly; try again".into()),
        stats: Stats::default(),
        denied: vec![],
    }
}

/// How a guest's turn on the foreground threads ended.
enum Slice {
    Done(InvocationResult),
    /// The quantum is spent; the guest continues elsewhere.
    Over(GuestFuture),
}

/// Polls a guest until it finishes or has spent `quantum` inside its polls (time
/// spent waiting on host I/O does not count).
struct Quantum {
    guest: Option<GuestFuture>,
    used: Duration,
    quantum: Duration,
}

impl Future for Quantum {
    type Output = Slice;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Slice> {
        let Some(guest) = self.guest.as_mut() else {
            // Polled after completion: never happens through `GuestThreads::run`.
            return Poll::Pending;
        };
        let start = std::time::Instant::now();
        let polled = guest.as_mut().poll(cx);
        self.used += start.elapsed();
        match polled {
            Poll::Ready(result) => {
                self.guest = None;
                Poll::Ready(Slice::Done(result))
            }
            Poll::Pending if self.used >= self.quantum => match self.guest.take() {
                Some(rest) => Poll::Ready(Slice::Over(rest)),
                None => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A guest on the background threads: after each poll that leaves it unfinished,
/// the thread offers its core to any other runnable thread (see the module docs).
struct OfferTheCore(GuestFuture);

impl Future for OfferTheCore {
    type Output = InvocationResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<InvocationResult> {
        let polled = self.0.as_mut().poll(cx);
        if polled.is_pending() {
            // `sched_yield` on Linux: returns at once when nothing else is runnable.
            std::thread::yield_now();
        }
        polled
    }
}

/// Aborts the spawned task if the caller stops waiting (a dropped request): the
/// guest stops at its next yield, as it would running inline.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Puts the calling thread under `SCHED_IDLE`, or at nice 19 where that is refused.
/// On Linux both apply to the one calling thread. Best effort: a refused syscall
/// leaves the thread at the process's priority.
#[cfg(target_os = "linux")]
fn demote_this_thread() {
    // SAFETY: sched_setscheduler / setpriority on the calling thread's own id with a
    // zeroed sched_param (the only valid priority for SCHED_IDLE); no memory is
    // shared.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 {
            return;
        }
        let tid = libc::gettid() as libc::id_t;
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

#[cfg(not(target_os = "linux"))]
fn demote_this_thread() {}
