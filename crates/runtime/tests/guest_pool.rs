//! The guest thread pools (`RuntimeConfig::guest_pool`): guest code and its host
//! calls run on dedicated threads, the caller's executor only waits; a guest that
//! has used its quantum continues on background threads under `SCHED_IDLE`.

mod support;

use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use tenantry_core::Outcome;
use tenantry_core::manifest::Grants;
use tenantry_runtime::*;

/// `SCHED_IDLE` in /proc's `policy` field.
const SCHED_IDLE: i64 = 5;

/// The calling thread's name, nice value and scheduling policy (fields 19 and 41
/// of /proc/thread-self/stat).
fn this_thread() -> (String, i64, i64) {
    let name = std::thread::current().name().unwrap_or("").to_string();
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // Fields after the parenthesised command name, which is field 2.
    let after: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let field = |n: usize| after[n - 3].parse().unwrap();
    (name, field(19), field(41))
}

/// A kv backend that notes which thread served each call.
struct Observed(MemKv, Mutex<Vec<(String, i64, i64)>>);

#[async_trait::async_trait]
impl KvBackend for Observed {
    async fn get(&self, i: &InstallRef, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.1.lock().unwrap().push(this_thread());
        self.0.get(i, key).await
    }
    async fn set(&self, i: &InstallRef, key: &str, value: &[u8]) -> Result<(), BackendError> {
        self.0.set(i, key, value).await
    }
    async fn delete(&self, i: &InstallRef, key: &str) -> Result<bool, BackendError> {
        self.0.delete(i, key).await
    }
    async fn list(
        &self,
        i: &InstallRef,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<String>, BackendError> {
        self.0.list(i, prefix, limit).await
    }
}

fn pooled(threads: usize, quantum: Duration) -> World {
    world(RuntimeConfig {
        guest_pool: Some(GuestPool { threads, quantum }),
        ..RuntimeConfig::default()
    })
}

/// `w` with its kv backend observed, the `attacks` plugin, and grants for kv.
fn observing(mut w: World) -> (World, Arc<Observed>, Arc<LoadedPlugin>, Grants) {
    let observed = Arc::new(Observed(MemKv::default(), Mutex::new(vec![])));
    w.backends.kv = observed.clone();
    let attacks = w.load("attacks");
    (w, observed, attacks, kv_grant())
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_guest_and_its_host_calls_run_on_the_foreground_guest_threads() {
    let (w, observed, attacks, grants) = observing(pooled(2, Duration::from_millis(10)));
    let r = w
        .run(
            &attacks,
            install(),
            "kv-get",
            &json!({"key": "k"}).to_string(),
            &grants,
            Limits::default(),
        )
        .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let (caller, caller_nice, caller_policy) = this_thread();
    let seen = observed.1.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (name, nice, policy) = &seen[0];
    assert_eq!(
        name, "tenantry-guest",
        "host call ran on {name:?}, not a foreground guest thread (caller {caller:?})"
    );
    assert_eq!(
        (*nice, *policy),
        (caller_nice, caller_policy),
        "a foreground guest thread runs at the process's priority"
    );
}

/// A guest that keeps running past its quantum (here a flood of host calls) moves
/// to the background threads, under `SCHED_IDLE`, and finishes there.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_past_its_quantum_finishes_on_the_idle_priority_background_threads() {
    let (w, observed, attacks, grants) = observing(pooled(1, Duration::from_millis(5)));
    let long = Limits {
        max_host_calls: u64::MAX,
        fuel: u64::MAX / 2,
        wall_time: Duration::from_secs(20),
        ..Limits::default()
    };
    let input = json!({"n": 50_000}).to_string();
    let r = w
        .run(&attacks, install(), "host-flood", &input, &grants, long)
        .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let seen = observed.1.lock().unwrap().clone();
    assert_eq!(seen.len(), 50_000);
    let (first, last) = (&seen[0], &seen[seen.len() - 1]);
    assert_eq!(first.0, "tenantry-guest", "started on {first:?}");
    assert_ne!(first.2, SCHED_IDLE);
    assert_eq!(
        (last.0.as_str(), last.2),
        ("tenantry-guest-bg", SCHED_IDLE),
        "finished on {last:?}"
    );
    // Once moved, it stays moved.
    let moved = seen
        .iter()
        .position(|t| t.0 == "tenantry-guest-bg")
        .unwrap();
    assert!(seen[moved..].iter().all(|t| t == last));
}

/// Without a pool the guest runs on the caller's executor (the library default).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "current_thread")]
async fn without_a_pool_the_guest_runs_on_the_callers_thread() {
    let (w, observed, attacks, grants) = observing(world(RuntimeConfig::default()));
    w.run(
        &attacks,
        install(),
        "kv-get",
        r#"{"key":"k"}"#,
        &grants,
        Limits::default(),
    )
    .await;
    assert_eq!(observed.1.lock().unwrap()[0], this_thread());
}

/// A CPU-bound guest on a one-thread pool while other invocations arrive: they
/// share the guest thread (the loop yields every 100,000 fuel), every one of them
/// completes while the loop is still running, and the loop still ends at its own
/// limit. (The loop is queued on the pool first: `join!` polls it first.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_guest_on_the_pool_does_not_starve_the_others() {
    let w = pooled(1, Duration::from_millis(10));
    let (attacks, echo) = (w.load("attacks"), w.load("echo"));
    let spin = Limits {
        fuel: u64::MAX / 2,
        wall_time: Duration::from_millis(1500),
        ..Limits::default()
    };
    let none = Grants::default();
    let hog_done = std::sync::atomic::AtomicBool::new(false);
    let hog = async {
        let r = w.run(&attacks, install(), "loop", "{}", &none, spin).await;
        hog_done.store(true, std::sync::atomic::Ordering::SeqCst);
        r
    };
    let others = async {
        let mut done_beside_the_hog = 0;
        for _ in 0..20 {
            let r = w.run_fresh(&echo, "echo", "{}").await;
            assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
            if !hog_done.load(std::sync::atomic::Ordering::SeqCst) {
                done_beside_the_hog += 1;
            }
        }
        done_beside_the_hog
    };
    let (hog, done_beside_the_hog) = tokio::join!(hog, others);
    assert_eq!(hog.outcome, Outcome::Timeout, "{hog:?}");
    assert_eq!(
        done_beside_the_hog, 20,
        "echoes waited for the spinning guest to end instead of sharing its thread"
    );
}

/// A caller that stops waiting (a dropped request) stops its guest too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_caller_stops_the_guest() {
    let (w, observed, attacks, grants) = observing(pooled(1, Duration::from_millis(10)));
    let flood = Limits {
        max_host_calls: u64::MAX,
        wall_time: Duration::from_secs(10),
        fuel: u64::MAX / 2,
        ..Limits::default()
    };
    let input = json!({"n": 100_000_000u64}).to_string();
    let run = w.run(&attacks, install(), "host-flood", &input, &grants, flood);
    let count = || observed.1.lock().unwrap().len();
    // The caller goes away once the guest is seen running (its first host call).
    let started = async {
        let start = Instant::now();
        while count() == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the guest never ran"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        _ = run => panic!("a 100,000,000-call flood finished"),
        _ = started => {}
    }
    // The abort lands at the guest's next yield; the task then drops its store,
    // and with it the backends it held. Left running, the flood would go on for
    // its whole 10 s wall time.
    let idle = 2; // `observed` here and `w.backends.kv`
    let start = Instant::now();
    while Arc::strong_count(&observed) > idle {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the guest kept running after its caller left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its store (and with it every way to make a host call) is gone.
}
