//! `tenantry-host-tools`: the `tenantry:plugin/tools` capability — calling another
//! installed plugin's action in the same org.
//!
//! A call must be covered by the install's tool grants. The nested invocation
//! shares the caller's [`Meter`] (host-call budget and deadline), so a chain of tool
//! calls cannot exceed one execution's limits, and its depth is bounded.

use std::sync::Arc;
use tenantry_core::manifest::ToolTarget;
use tenantry_world::bindings::tenantry::plugin::tools;
use tenantry_world::{Factor, GuestError, InstallRef, InstanceCtx, Meter, with_deadline};
use wasmtime::component::{HasSelf, Linker};

/// Where a nested call runs: same budget, one level deeper.
#[derive(Clone)]
pub struct Nested {
    pub meter: Arc<Meter>,
    pub depth: u32,
}

/// Why a tool call failed, with the nested invocation's outcome code.
#[derive(Debug, Clone)]
pub struct ToolError {
    pub outcome: tenantry_core::Outcome,
    pub message: String,
}

/// Runs another install's action (the server implements it by resolving the
/// plugin within the caller's org and invoking it through the runtime).
#[async_trait::async_trait]
pub trait ToolBackend: Send + Sync + 'static {
    async fn call(
        &self,
        caller: &InstallRef,
        plugin: &str,
        action: &str,
        input: String,
        nested: Nested,
    ) -> Result<String, ToolError>;
}

/// The capability: how deep tool calls may nest.
pub struct ToolsFactor {
    pub max_depth: u32,
}

impl Factor for ToolsFactor {
    type State = ToolsHost;
    type Backend = Arc<dyn ToolBackend>;

    fn add_to_linker<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut ToolsHost,
    ) -> wasmtime::Result<()> {
        // 0.1.0 and 0.2.0 (the same interface; 0.2.0 forwards to 0.1.0's trait).
        tools::add_to_linker::<T, HasSelf<ToolsHost>>(linker, get)?;
        tenantry_world::bindings_v2::tenantry::plugin::tools::add_to_linker::<T, HasSelf<ToolsHost>>(
            linker, get,
        )
    }

    fn prepare(&self, cx: &InstanceCtx<'_>, backend: &Self::Backend) -> ToolsHost {
        ToolsHost {
            install: cx.install,
            granted: cx.grants.tools.clone(),
            backend: backend.clone(),
            meter: cx.meter.clone(),
            depth: cx.depth,
            max_depth: self.max_depth,
        }
    }
}

/// The capability's per-invocation state.
pub struct ToolsHost {
    install: InstallRef,
    /// Tool grants (`@scope/name` or `@scope/name#action`).
    granted: Vec<String>,
    backend: Arc<dyn ToolBackend>,
    meter: Arc<Meter>,
    /// This invocation's depth (0 = called by a principal).
    depth: u32,
    max_depth: u32,
}

impl tools::Host for ToolsHost {
    async fn call(
        &mut self,
        plugin: String,
        action: String,
        input: String,
    ) -> wasmtime::Result<Result<String, GuestError>> {
        self.meter.charge()?;
        let covered = self
            .granted
            .iter()
            .any(|g| ToolTarget::parse(g).is_ok_and(|t| t.covers(&plugin, &action)));
        if !covered {
            let (plugin, action) = (
                plugin.chars().take(100).collect::<String>(),
                action.chars().take(64).collect::<String>(),
            );
            self.meter.deny(format!("tool:{plugin}#{action}"));
            // An install grants it as `@scope/name#action` in its tool grants; a
            // script's agent by being bound to that plugin's install.
            return Ok(Err(GuestError::PermissionDenied(format!(
                "tool:{plugin}.{action} is not granted to this caller"
            ))));
        }
        if self.depth + 1 > self.max_depth {
            return Ok(Err(GuestError::LimitExceeded(format!(
                "tool calls nest at most {} deep",
                self.max_depth
            ))));
        }
        let nested = Nested {
            meter: self.meter.clone(),
            depth: self.depth + 1,
        };
        let r = with_deadline(
            &self.meter,
            self.backend
                .call(&self.install, &plugin, &action, input, nested),
        )
        .await?;
        Ok(r.map_err(|e| match e.outcome {
            tenantry_core::Outcome::PermissionDenied => GuestError::PermissionDenied(e.message),
            tenantry_core::Outcome::NotFound => GuestError::NotFound(e.message),
            tenantry_core::Outcome::InvalidInput => GuestError::InvalidInput(e.message),
            o => GuestError::Failed(format!("{o}: {}", e.message)),
        }))
    }
}

tenantry_world::forward_v2!(tools for ToolsHost);
