//! Prometheus metrics of one server.
//!
//! Families are registered once; the request path only bumps atomics (a label set is
//! looked up in a read-locked map). Gauges that describe state (recorder queue,
//! live sandboxes, limiter degradation) are read at scrape time, not maintained.
//! Labels are bounded by construction: routes are templates (`/v1/installs/{id}`),
//! never raw paths; outcomes and limiter decisions are fixed vocabularies; no label
//! carries an org id (per-org figures are in each org's usage API).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;
use tenantry_core::{ErrorCode, Outcome};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Decision {
    decision: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds() -> Histogram {
    // 50 µs … ~13 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
}

fn fuel() -> Histogram {
    // 10⁴ … ~10¹⁰ units.
    Histogram::new(exponential_buckets(10_000.0, 4.0, 11))
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<Request, Counter>,
    request_seconds: Histograms<Route>,
    invocations: Family<OutcomeLabel, Counter>,
    invocation_seconds: Histogram,
    invocation_fuel: Histogram,
    limiter: Family<Decision, Counter>,
    limiter_degraded: Gauge,
    recorder_queue: Gauge,
    recorder_flush_seconds: Histogram,
    sandboxes_live: Gauge,
    tenant_stores_open: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tenantry");
        let requests = Family::<Request, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let request_seconds: Histograms<Route> = Family::new_with_constructor(seconds);
        registry.register(
            "http_request_duration_seconds",
            "Time from receiving a request to its response, by route template and method",
            request_seconds.clone(),
        );
        let invocations = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "invocations",
            "Plugin invocations (including tool calls), by outcome code",
            invocations.clone(),
        );
        let invocation_seconds = seconds();
        registry.register(
            "invocation_duration_seconds",
            "Time one invocation spent in its sandbox",
            invocation_seconds.clone(),
        );
        let invocation_fuel = fuel();
        registry.register(
            "invocation_fuel",
            "CPU (wasmtime fuel units) one invocation used",
            invocation_fuel.clone(),
        );
        let limiter = Family::<Decision, Counter>::default();
        registry.register(
            "limiter_decisions",
            "Admission decisions on the invoke path: admitted, rate_limited, quota_exceeded, unavailable; degraded_admitted when the shared limiter was unreachable and this node decided alone",
            limiter.clone(),
        );
        let limiter_degraded = Gauge::default();
        registry.register(
            "limiter_degraded",
            "1 while the shared (Redis) limiter is unreachable and decisions are local",
            limiter_degraded.clone(),
        );
        let recorder_queue = Gauge::default();
        registry.register(
            "recorder_queue_depth",
            "Invocation records waiting to be written",
            recorder_queue.clone(),
        );
        let recorder_flush_seconds = seconds();
        registry.register(
            "recorder_flush_duration_seconds",
            "Time to write one batch of invocation records",
            recorder_flush_seconds.clone(),
        );
        let sandboxes_live = Gauge::default();
        registry.register(
            "sandboxes_live",
            "Sandbox instances alive now (the pool's occupancy)",
            sandboxes_live.clone(),
        );
        let tenant_stores_open = Gauge::default();
        registry.register(
            "tenant_stores_open",
            "Tenant stores (embedded: org files) open now; 0 in pooled mode (one shared pool)",
            tenant_stores_open.clone(),
        );
        Self {
            tenant_stores_open,
            registry,
            requests,
            request_seconds,
            invocations,
            invocation_seconds,
            invocation_fuel,
            limiter,
            limiter_degraded,
            recorder_queue,
            recorder_flush_seconds,
            sandboxes_live,
        }
    }

    /// One answered HTTP request. `route` is the matched template (or `unmatched`).
    pub fn http_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&Request {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&Route {
                route: route.to_string(),
                method: method.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// One invocation's outcome; `ran` = (µs, fuel) when its sandbox ran (inputs
    /// refused before it are counted by outcome only).
    pub(crate) fn invocation(&self, outcome: Outcome, ran: Option<(u64, u64)>) {
        self.invocations
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
        if let Some((duration_us, fuel)) = ran {
            self.invocation_seconds.observe(duration_us as f64 / 1e6);
            self.invocation_fuel.observe(fuel as f64);
        }
    }

    /// One admission decision on the invoke path (`Ok` = admitted).
    pub(crate) fn admission(&self, result: Result<(), ErrorCode>, degraded: bool) {
        let decision = match result {
            Ok(()) if degraded => "degraded_admitted",
            Ok(()) => "admitted",
            Err(ErrorCode::RateLimited) => "rate_limited",
            Err(ErrorCode::QuotaExceeded) => "quota_exceeded",
            Err(_) => "unavailable",
        };
        self.limiter.get_or_create(&Decision { decision }).inc();
    }

    pub(crate) fn recorder_flushed(&self, took: Duration) {
        self.recorder_flush_seconds.observe(took.as_secs_f64());
    }

    /// The OpenMetrics text exposition, with the state gauges read now.
    pub fn encode(&self, now: Snapshot) -> String {
        self.limiter_degraded.set(i64::from(now.limiter_degraded));
        self.recorder_queue.set(now.recorder_queue as i64);
        self.sandboxes_live.set(now.sandboxes_live as i64);
        self.tenant_stores_open
            .set(now.tenant_stores_open.unwrap_or(0) as i64);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// State read at scrape time.
pub struct Snapshot {
    pub limiter_degraded: bool,
    pub recorder_queue: usize,
    pub sandboxes_live: usize,
    pub tenant_stores_open: Option<usize>,
}
