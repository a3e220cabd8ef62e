//! Plan tiers and their per-org limits (BRIEF §7 defaults).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The limits of one tier. Byte sizes are bytes, times are milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tier {
    pub name: String,
    pub executions_per_day: u64,
    pub executions_per_month: u64,
    pub max_wall_time_ms: u64,
    pub concurrent_executions: u32,
    pub host_calls_per_execution: u64,
    pub tool_calls_per_day: u64,
    pub memory_bytes: u64,
    pub artifact_bytes: u64,
    pub output_bytes: u64,
    pub plugins_installed: u32,
    pub storage_bytes: u64,
    pub agents: u32,
}

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

    /// CPU budget per execution, in wasmtime fuel (≈ wasm instructions): 5·10⁵ per
    /// millisecond of the tier's wall time. A tight guest loop burns the starter
    /// tier's 1.5·10¹⁰ in about 1.2 s on the 2-core reference machine (`tenantry
    /// demo`), so CPU-bound guests end with `OUT_OF_FUEL` well before their wall time,
    /// and fuel is the billed compute unit.
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
    }
}
