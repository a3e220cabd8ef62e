//! Calendar windows for billing quotas: ids and reset times in UTC, including month
//! and year rollover, leap days and non-UTC inputs.

use std::time::Duration;

use tenantry_limits::{BillingQuota, QuotaKey, Window, quota_ttl, window_id, window_reset};
use time::macros::datetime;

#[test]
fn day_and_month_ids() {
    let now = datetime!(2026-11-22 13:45:10 UTC);
    assert_eq!(window_id(Window::Day, now), "2026-11-22");
    assert_eq!(window_id(Window::Month, now), "2026-11");
    assert_eq!(
        window_id(Window::Day, datetime!(2026-01-05 00:00 UTC)),
        "2026-01-05"
    );
    assert_eq!(
        window_id(Window::Month, datetime!(0999-03-01 00:00 UTC)),
        "0999-03"
    );
}

#[test]
fn resets_are_the_next_utc_midnight() {
    let now = datetime!(2026-11-22 13:45:10 UTC);
    assert_eq!(
        window_reset(Window::Day, now),
        datetime!(2026-11-23 00:00 UTC)
    );
    assert_eq!(
        window_reset(Window::Month, now),
        datetime!(2026-12-01 00:00 UTC)
    );
    // Exactly at midnight the window has just started.
    let midnight = datetime!(2026-11-23 00:00 UTC);
    assert_eq!(window_id(Window::Day, midnight), "2026-11-23");
    assert_eq!(
        window_reset(Window::Day, midnight),
        datetime!(2026-11-24 00:00 UTC)
    );
}

#[test]
fn month_and_year_rollover() {
    let last = datetime!(2026-12-31 23:59:59.999 UTC);
    assert_eq!(window_id(Window::Day, last), "2026-12-31");
    assert_eq!(window_id(Window::Month, last), "2026-12");
    assert_eq!(
        window_reset(Window::Day, last),
        datetime!(2027-01-01 00:00 UTC)
    );
    assert_eq!(
        window_reset(Window::Month, last),
        datetime!(2027-01-01 00:00 UTC)
    );
    let first = datetime!(2027-01-01 00:00 UTC);
    assert_eq!(window_id(Window::Day, first), "2027-01-01");
    assert_eq!(window_id(Window::Month, first), "2027-01");
    // Month ends of every length.
    assert_eq!(
        window_reset(Window::Day, datetime!(2026-04-30 12:00 UTC)),
        datetime!(2026-05-01 00:00 UTC)
    );
    assert_eq!(
        window_reset(Window::Month, datetime!(2026-01-31 12:00 UTC)),
        datetime!(2026-02-01 00:00 UTC)
    );
    assert_eq!(
        window_reset(Window::Day, datetime!(2026-02-28 12:00 UTC)),
        datetime!(2026-03-01 00:00 UTC)
    );
    assert_eq!(
        window_reset(Window::Day, datetime!(2028-02-28 12:00 UTC)),
        datetime!(2028-02-29 00:00 UTC)
    );
    assert_eq!(
        window_reset(Window::Month, datetime!(2028-02-29 12:00 UTC)),
        datetime!(2028-03-01 00:00 UTC)
    );
}

#[test]
fn other_offsets_are_converted_to_utc() {
    // 23:30 in New York on Dec 31 is already Jan 1 in UTC.
    let ny = datetime!(2026-12-31 23:30 -5);
    assert_eq!(window_id(Window::Day, ny), "2027-01-01");
    assert_eq!(window_id(Window::Month, ny), "2027-01");
    assert_eq!(
        window_reset(Window::Day, ny),
        datetime!(2027-01-02 00:00 UTC)
    );
    // 01:00 in Berlin on Jan 1 is still Dec 31 in UTC.
    let berlin = datetime!(2027-01-01 00:30 +1);
    assert_eq!(window_id(Window::Month, berlin), "2026-12");
    assert_eq!(
        window_reset(Window::Month, berlin),
        datetime!(2027-01-01 00:00 UTC)
    );
}

#[test]
fn keys_and_ttls() {
    let now = datetime!(2026-11-22 18:00 UTC);
    let k = QuotaKey::new("acme", "executions", Window::Day, now);
    assert_eq!(k.window_id, "2026-11-22");
    assert_eq!(k.redis_key(), "tenantry:{acme}:q:executions:2026-11-22");
    assert_eq!(
        BillingQuota::ExecutionsPerMonth
            .key("acme", now)
            .redis_key(),
        "tenantry:{acme}:q:executions:2026-11"
    );
    assert_eq!(
        BillingQuota::ToolCallsPerDay.key("acme", now).redis_key(),
        "tenantry:{acme}:q:tool-calls:2026-11-22"
    );
    // Six hours to the reset plus a day of grace.
    assert_eq!(
        quota_ttl(Window::Day, now),
        Duration::from_secs(6 * 3600 + 86_400)
    );
}
