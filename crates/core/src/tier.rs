//! Plan tiers and their per-org limits (BRIEF §7 defaults).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The limits of one tier. Byte sizes are bytes, times are milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub name: String,
    pub executions_per_day: u64,
    pub executions_per_month: u64,
    pub max_wall_time_ms: u64,
    pub concurrent_executions: u32,
    pub host_calls_per_execution: u64,
    pub tool_calls_per_day: u64,
    pub memory_bytes: u64,
    /// The seeds' "code size": the largest script `POST /v1/executions` runs. Plugin
    /// artifacts are bounded by the registry-wide ceiling (`max_artifact_bytes`)
    /// instead (BRIEF §7), so this is not enforced on installs.
    pub artifact_bytes: u64,
    pub output_bytes: u64,
    pub plugins_installed: u32,
    pub storage_bytes: u64,
    pub agents: u32,
    /// Invocations an org may start per minute (GCRA, burst = the whole minute).
    /// Installs may have a lower limit of their own.
    #[serde(default = "default_rate")]
    pub invocations_per_minute: u64,
}

fn default_rate() -> u64 {
    60
}

/// Per-org changes to a tier's limits (operator-set). Absent fields keep the tier's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierOverrides {
    pub executions_per_day: Option<u64>,
    pub executions_per_month: Option<u64>,
    pub max_wall_time_ms: Option<u64>,
    pub concurrent_executions: Option<u32>,
    pub host_calls_per_execution: Option<u64>,
    pub tool_calls_per_day: Option<u64>,
    /// 1 MiB up to the sandbox's largest memory on this server.
    pub memory_bytes: Option<u64>,
    pub artifact_bytes: Option<u64>,
    pub output_bytes: Option<u64>,
    pub plugins_installed: Option<u32>,
    pub storage_bytes: Option<u64>,
    pub agents: Option<u32>,
    pub invocations_per_minute: Option<u64>,
}

impl TierOverrides {
    /// The tier with these overrides applied.
    pub fn apply(&self, mut t: Tier) -> Tier {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { t.$f = v; } )* };
        }
        set!(
            executions_per_day,
            executions_per_month,
            max_wall_time_ms,
            concurrent_executions,
            host_calls_per_execution,
            tool_calls_per_day,
            memory_bytes,
            artifact_bytes,
            output_bytes,
            plugins_installed,
            storage_bytes,
            agents,
            invocations_per_minute
        );
        t
    }

    /// Refuses values that cannot run anything sensibly; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let at_least = |name: &str, v: Option<u64>, min: u64| match v {
            Some(v) if v < min => Err(format!("{name} must be at least {min} (got {v})")),
            _ => Ok(()),
        };
        at_least("max_wall_time_ms", self.max_wall_time_ms, 1)?;
        at_least("memory_bytes", self.memory_bytes, 1024 * 1024)?;
        at_least("output_bytes", self.output_bytes, 1)?;
        at_least("invocations_per_minute", self.invocations_per_minute, 1)?;
        if self
            .invocations_per_minute
            .is_some_and(|v| v > MAX_INVOCATIONS_PER_MINUTE)
        {
            return Err(format!(
                "invocations_per_minute must be at most {MAX_INVOCATIONS_PER_MINUTE} (one per microsecond, what the rate limiters can represent)"
            ));
        }
        if self.memory_bytes.is_some_and(|v| v > MAX_MEMORY_BYTES) {
            return Err(format!(
                "memory_bytes must be at most {MAX_MEMORY_BYTES} (4 GiB, a 32-bit WebAssembly memory)"
            ));
        }
        if self.max_wall_time_ms.is_some_and(|v| v > 15 * 60 * 1000) {
            return Err("max_wall_time_ms must be at most 900000 (15 minutes)".into());
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The highest per-minute rate the limiters can enforce: one request per microsecond
/// (the Redis backend's resolution; see `tenantry_limits::Policy::validate`).
pub const MAX_INVOCATIONS_PER_MINUTE: u64 = 60_000_000;

/// The largest linear memory a 32-bit WebAssembly guest can address.
pub const MAX_MEMORY_BYTES: u64 = 4 * GIB;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

impl Tier {
    /// The built-in tiers: `free`, `starter`, `enterprise`.
    pub fn builtin(name: &str) -> Option<Tier> {
        match name {
            "free" => Some(Self::free()),
            "starter" => Some(Self::starter()),
            "enterprise" => Some(Self::enterprise()),
            _ => None,
        }
    }

    pub fn free() -> Tier {
        make(
            "free",
            [
                100,
                3_000,
                5,
                1,
                10,
                500,
                32 * MIB,
                50 * KIB,
                100 * KIB,
                5,
                10 * MIB,
                2,
            ],
        )
    }

    pub fn starter() -> Tier {
        make(
            "starter",
            [
                1_000,
                100_000,
                30,
                5,
                50,
                10_000,
                64 * MIB,
                100 * KIB,
                500 * KIB,
                50,
                GIB,
                10,
            ],
        )
    }

    pub fn enterprise() -> Tier {
        make(
            "enterprise",
            [
                100_000,
                3_000_000,
                300,
                100,
                500,
                1_000_000,
                256 * MIB,
                500 * KIB,
                5_000 * KIB,
                500,
                100 * GIB,
                1_000,
            ],
        )
    }

    pub fn max_wall_time(&self) -> Duration {
        Duration::from_millis(self.max_wall_time_ms)
    }

    /// Compute budget per execution, in wasmtime fuel (≈ executed wasm operations):
    /// 5·10⁵ per millisecond of the tier's wall time. Fuel is the billed unit because
    /// it is deterministic; it is **not** a CPU-time bound: the CPU time per unit
    /// varies with code shape (about 10×), so a CPU-bound guest may hit its wall time
    /// (`TIMEOUT`) first. The wall-time deadline is what bounds CPU
    /// (`docs/limits.md`, "CPU and fuel").
    pub fn fuel_per_execution(&self) -> u64 {
        self.max_wall_time_ms.saturating_mul(500_000)
    }
}

/// Builds a tier from the BRIEF §7 column order: executions/day, executions/month,
/// wall time (s), concurrency, host calls/execution, tool calls/day, memory, artifact
/// size, output size, plugins installed, storage, agents.
fn make(name: &str, v: [u64; 12]) -> Tier {
    let small = |x: u64| u32::try_from(x).unwrap_or(u32::MAX);
    Tier {
        name: name.to_string(),
        executions_per_day: v[0],
        executions_per_month: v[1],
        max_wall_time_ms: v[2] * 1000,
        concurrent_executions: small(v[3]),
        host_calls_per_execution: v[4],
        tool_calls_per_day: v[5],
        memory_bytes: v[6],
        artifact_bytes: v[7],
        output_bytes: v[8],
        plugins_installed: small(v[9]),
        storage_bytes: v[10],
        agents: small(v[11]),
        invocations_per_minute: match name {
            "enterprise" => 6_000,
            "starter" => 600,
            _ => default_rate(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_the_rate_limiters_cannot_represent_is_refused() {
        let o = TierOverrides {
            invocations_per_minute: Some(1_000_000_000),
            ..Default::default()
        };
        let e = o.validate().unwrap_err();
        assert!(e.contains("invocations_per_minute"), "{e}");
        let ok = TierOverrides {
            invocations_per_minute: Some(MAX_INVOCATIONS_PER_MINUTE),
            ..Default::default()
        };
        assert_eq!(ok.validate(), Ok(()));
    }

    #[test]
    fn a_memory_override_beyond_32_bit_wasm_is_refused() {
        let o = TierOverrides {
            memory_bytes: Some(MAX_MEMORY_BYTES + 1),
            ..Default::default()
        };
        assert!(o.validate().unwrap_err().contains("memory_bytes"));
    }
}
