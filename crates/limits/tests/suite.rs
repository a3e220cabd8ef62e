//! The shared behaviour suite: every scenario runs against the in-process backends
//! (on a manual clock) and against Redis (real time, short windows), and must reach
//! the same decisions on both.

mod common;

use std::time::Duration;

use common::Harness;
use tenantry_limits::{LimitError, Policy, QuotaDecision, QuotaKey, RateKey};

const MS: fn(u64) -> Duration = Duration::from_millis;

/// 5 per second: emission interval 200 ms.
fn five_per_second() -> Policy {
    Policy::new(5, Duration::from_secs(1))
}

mod scenarios {
    use super::*;

    pub async fn burst_then_refused_with_retry_after(h: &Harness) {
        let key = RateKey::org(&h.org());
        let p = five_per_second();
        for expected_remaining in (0..5).rev() {
            let d = h.rate.check(&key, &p, 1).await.unwrap();
            assert!(d.allowed, "{}: {d:?}", h.name);
            assert_eq!(d.remaining, expected_remaining, "{}: {d:?}", h.name);
            assert_eq!(d.retry_after, None);
        }
        let d = h.rate.check(&key, &p, 1).await.unwrap();
        assert!(!d.allowed, "{}: sixth request admitted: {d:?}", h.name);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.limit, 5);
        let retry = d.retry_after.unwrap();
        h.assert_about("retry_after", retry, MS(200));
        h.assert_about("reset_after", d.reset_after, MS(1000));
        assert_eq!(d.retry_after_header().as_deref(), Some("1"));
        assert_eq!(d.header_value("default"), "\"default\";r=0;t=1");
        assert_eq!(p.header_value("default"), "\"default\";q=5;w=1");

        // Refusals are not counted: still refused, same wait.
        let again = h.rate.check(&key, &p, 1).await.unwrap();
        assert!(!again.allowed);

        // After retry_after exactly one more request fits.
        h.advance(retry).await;
        let d = h.rate.check(&key, &p, 1).await.unwrap();
        assert!(
            d.allowed,
            "{}: not admitted after retry_after: {d:?}",
            h.name
        );
        assert_eq!(d.remaining, 0);
        let d = h.rate.check(&key, &p, 1).await.unwrap();
        assert!(!d.allowed, "{}: {d:?}", h.name);

        // After a whole window the full burst is back.
        h.advance(MS(1000)).await;
        for _ in 0..5 {
            assert!(
                h.rate.check(&key, &p, 1).await.unwrap().allowed,
                "{}",
                h.name
            );
        }
        assert!(!h.rate.check(&key, &p, 1).await.unwrap().allowed);
        h.cleanup().await;
    }

    pub async fn steady_rate_after_burst(h: &Harness) {
        let key = RateKey::org(&h.org());
        let p = five_per_second();
        for _ in 0..5 {
            assert!(h.rate.check(&key, &p, 1).await.unwrap().allowed);
        }
        // One interval buys exactly one request, three times in a row.
        for round in 0..3 {
            h.advance(MS(205)).await;
            assert!(
                h.rate.check(&key, &p, 1).await.unwrap().allowed,
                "{} round {round}",
                h.name
            );
            assert!(
                !h.rate.check(&key, &p, 1).await.unwrap().allowed,
                "{} round {round}",
                h.name
            );
        }
        h.cleanup().await;
    }

    pub async fn keys_are_independent(h: &Harness) {
        let a = h.org();
        let b = h.org();
        let p = Policy::new(2, Duration::from_secs(60));
        let ka = RateKey::org(&a);
        for _ in 0..2 {
            assert!(h.rate.check(&ka, &p, 1).await.unwrap().allowed);
        }
        assert!(!h.rate.check(&ka, &p, 1).await.unwrap().allowed);
        // Another org, an install of the exhausted org, and another scope are untouched.
        for key in [
            RateKey::org(&b),
            RateKey::install(&a, "inst-1"),
            RateKey::org(&a).scoped("api"),
        ] {
            let d = h.rate.check(&key, &p, 1).await.unwrap();
            assert!(d.allowed, "{}: {key:?} {d:?}", h.name);
            assert_eq!(d.remaining, 1);
        }
        // Different policies per key: org B may have a bigger limit at the same time.
        let big = Policy::new(100, Duration::from_secs(60));
        let d = h
            .rate
            .check(&RateKey::org(&b).scoped("big"), &big, 1)
            .await
            .unwrap();
        assert_eq!(d.remaining, 99);
        h.cleanup().await;
    }

    pub async fn cost_above_one(h: &Harness) {
        let key = RateKey::install(&h.org(), "i1");
        let p = five_per_second();
        let d = h.rate.check(&key, &p, 3).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 2);
        h.assert_about("reset_after", d.reset_after, MS(600));
        let d = h.rate.check(&key, &p, 3).await.unwrap();
        assert!(!d.allowed, "{}: {d:?}", h.name);
        assert_eq!(d.remaining, 2, "{}: a refusal keeps the remainder", h.name);
        h.assert_about("retry_after", d.retry_after.unwrap(), MS(200));
        // A cheaper request still fits.
        let d = h.rate.check(&key, &p, 2).await.unwrap();
        assert!(d.allowed, "{}: {d:?}", h.name);
        assert_eq!(d.remaining, 0);
        // Cost 0 only reads.
        let d = h.rate.check(&key, &p, 0).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        // A cost above the limit could never pass.
        let e = h.rate.check(&key, &p, 6).await.unwrap_err();
        assert!(matches!(e, LimitError::InvalidArgument(_)), "{e:?}");
        h.cleanup().await;
    }

    pub async fn invalid_keys_are_rejected(h: &Harness) {
        let p = five_per_second();
        for key in [
            RateKey::org(""),
            RateKey::org("a}b"),
            RateKey::install("a", "x:y"),
        ] {
            let e = h.rate.check(&key, &p, 1).await.unwrap_err();
            assert!(matches!(e, LimitError::InvalidKey { .. }), "{e:?}");
        }
        let e = h
            .rate
            .check(&RateKey::org("a"), &Policy::new(0, MS(1)), 1)
            .await
            .unwrap_err();
        assert!(matches!(e, LimitError::InvalidPolicy(_)), "{e:?}");
        assert!(h.conc.acquire("", 1, MS(100)).await.is_err());
        assert!(
            h.quota
                .used(&QuotaKey::from_parts("a", "x y", "2026-11"))
                .await
                .is_err()
        );
    }

    pub async fn concurrency_limit_and_release(h: &Harness) {
        let org = h.org();
        let other = h.org();
        let ttl = Duration::from_secs(30);
        let a = h
            .conc
            .acquire(&org, 2, ttl)
            .await
            .unwrap()
            .expect("first lease");
        let b = h
            .conc
            .acquire(&org, 2, ttl)
            .await
            .unwrap()
            .expect("second lease");
        assert_ne!(a.id(), b.id());
        assert_eq!(a.org(), org);
        assert!(
            h.conc.acquire(&org, 2, ttl).await.unwrap().is_none(),
            "{}",
            h.name
        );
        assert_eq!(h.conc.in_use(&org).await.unwrap(), 2);
        // Another org is not affected.
        assert!(h.conc.acquire(&other, 1, ttl).await.unwrap().is_some());
        h.conc.release(a).await.unwrap();
        assert_eq!(h.conc.in_use(&org).await.unwrap(), 1);
        let c = h
            .conc
            .acquire(&org, 2, ttl)
            .await
            .unwrap()
            .expect("slot freed by release");
        assert!(h.conc.acquire(&org, 2, ttl).await.unwrap().is_none());
        // A higher limit for the same org admits more.
        assert!(h.conc.acquire(&org, 3, ttl).await.unwrap().is_some());
        // Releasing twice is harmless.
        h.conc.release(c.clone()).await.unwrap();
        h.conc.release(c).await.unwrap();
        h.conc.release(b).await.unwrap();
        assert_eq!(h.conc.in_use(&org).await.unwrap(), 1);
        h.cleanup().await;
    }

    pub async fn lease_expires_after_ttl(h: &Harness) {
        let org = h.org();
        let ttl = MS(300);
        let _crashed = h.conc.acquire(&org, 1, ttl).await.unwrap().expect("lease");
        assert!(h.conc.acquire(&org, 1, ttl).await.unwrap().is_none());
        h.advance(MS(150)).await;
        assert!(
            h.conc.acquire(&org, 1, ttl).await.unwrap().is_none(),
            "{}",
            h.name
        );
        h.advance(MS(200)).await;
        assert_eq!(h.conc.in_use(&org).await.unwrap(), 0, "{}", h.name);
        assert!(
            h.conc.acquire(&org, 1, ttl).await.unwrap().is_some(),
            "{}: expired lease still held",
            h.name
        );
        h.cleanup().await;
    }

    pub async fn quota_reserve_refund_exceeded(h: &Harness) {
        let org = h.org();
        let key = QuotaKey::from_parts(&org, "executions", "2026-11-22");
        let ttl = Duration::from_secs(60);
        assert_eq!(h.quota.used(&key).await.unwrap(), 0);
        assert_eq!(
            h.quota.reserve(&key, 5, 2, ttl).await.unwrap(),
            QuotaDecision::Admitted { used: 2 }
        );
        assert_eq!(
            h.quota.reserve(&key, 5, 3, ttl).await.unwrap(),
            QuotaDecision::Admitted { used: 5 }
        );
        assert_eq!(
            h.quota.reserve(&key, 5, 1, ttl).await.unwrap(),
            QuotaDecision::Exceeded { used: 5, limit: 5 }
        );
        assert_eq!(h.quota.used(&key).await.unwrap(), 5);
        h.quota.refund(&key, 2).await.unwrap();
        assert_eq!(h.quota.used(&key).await.unwrap(), 3);
        // An oversize request is refused whole, not partly counted.
        assert_eq!(
            h.quota.reserve(&key, 5, 3, ttl).await.unwrap(),
            QuotaDecision::Exceeded { used: 3, limit: 5 }
        );
        assert!(
            h.quota
                .reserve(&key, 5, 2, ttl)
                .await
                .unwrap()
                .is_admitted()
        );
        // Refunds stop at zero.
        h.quota.refund(&key, 100).await.unwrap();
        assert_eq!(h.quota.used(&key).await.unwrap(), 0);
        // Other windows and quotas are separate counters.
        let tomorrow = QuotaKey::from_parts(&org, "executions", "2026-11-23");
        let tools = QuotaKey::from_parts(&org, "tool-calls", "2026-11-22");
        assert_eq!(
            h.quota.reserve(&tomorrow, 5, 5, ttl).await.unwrap(),
            QuotaDecision::Admitted { used: 5 }
        );
        assert_eq!(h.quota.used(&tools).await.unwrap(), 0);
        assert_eq!(h.quota.used(&key).await.unwrap(), 0);
        h.cleanup().await;
    }

    pub async fn quota_seed_only_if_absent(h: &Harness) {
        let org = h.org();
        let key = QuotaKey::from_parts(&org, "executions", "2026-11");
        let ttl = Duration::from_secs(60);
        // Refunding a missing counter does not create it (a later seed still applies).
        h.quota.refund(&key, 3).await.unwrap();
        h.quota.seed(&key, 7, ttl).await.unwrap();
        assert_eq!(h.quota.used(&key).await.unwrap(), 7);
        h.quota.seed(&key, 1, ttl).await.unwrap();
        assert_eq!(
            h.quota.used(&key).await.unwrap(),
            7,
            "{}: seed overwrote",
            h.name
        );
        assert_eq!(
            h.quota.reserve(&key, 10, 3, ttl).await.unwrap(),
            QuotaDecision::Admitted { used: 10 }
        );
        assert_eq!(
            h.quota.reserve(&key, 10, 1, ttl).await.unwrap(),
            QuotaDecision::Exceeded {
                used: 10,
                limit: 10
            }
        );
        // Seeding a counter that already has reservations leaves it alone.
        let fresh = QuotaKey::from_parts(&org, "tool-calls", "2026-11-22");
        h.quota.reserve(&fresh, 100, 4, ttl).await.unwrap();
        h.quota.seed(&fresh, 50, ttl).await.unwrap();
        assert_eq!(h.quota.used(&fresh).await.unwrap(), 4);
        h.cleanup().await;
    }

    pub async fn quota_counter_expires_with_ttl(h: &Harness) {
        let org = h.org();
        let key = QuotaKey::from_parts(&org, "executions", "2026-11-22");
        assert!(
            h.quota
                .reserve(&key, 5, 5, MS(300))
                .await
                .unwrap()
                .is_admitted()
        );
        assert!(
            !h.quota
                .reserve(&key, 5, 1, MS(300))
                .await
                .unwrap()
                .is_admitted()
        );
        h.advance(MS(400)).await;
        assert_eq!(h.quota.used(&key).await.unwrap(), 0, "{}", h.name);
        h.cleanup().await;
    }
}

/// Runs every listed scenario against both backends.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $name() {
                    let h = super::Harness::local();
                    super::scenarios::$name(&h).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let h = super::Harness::redis().await;
                    super::scenarios::$name(&h).await;
                }
            )*
        }
    };
}

suite!(
    burst_then_refused_with_retry_after,
    steady_rate_after_burst,
    keys_are_independent,
    cost_above_one,
    invalid_keys_are_rejected,
    concurrency_limit_and_release,
    lease_expires_after_ttl,
    quota_reserve_refund_exceeded,
    quota_seed_only_if_absent,
    quota_counter_expires_with_ttl,
);
