//! The capabilities, composed (Spin's `RuntimeFactors`, written out by hand: six
//! factors do not need a derive macro).
//!
//! Each capability is a [`Factor`] in its own crate; this module is the only place
//! that lists them. Adding one: a field in [`Factors`] and in [`States`], one line in
//! each of [`Factors::new`], [`Factors::add_to_linker`] and [`Factors::prepare`], and
//! a field in [`Backends`] if the server must supply something for it.

use tenantry_host_http::{HttpFactor, HttpHost};
use tenantry_host_kv::{KvFactor, KvHost};
use tenantry_host_secrets::{SecretsFactor, SecretsHost};
use tenantry_host_tools::{ToolsFactor, ToolsHost};
use tenantry_world::{Factor, InstanceCtx};
use wasmtime::component::Linker;

use crate::builtins::{ConfigFactor, ConfigHost, LogFactor, LogHost};
use crate::engine::HostState;
use crate::{Backends, RuntimeConfig};

/// Every capability with its engine-wide settings.
pub(crate) struct Factors {
    kv: KvFactor,
    secrets: SecretsFactor,
    http: HttpFactor,
    tools: ToolsFactor,
    config: ConfigFactor,
    log: LogFactor,
}

/// One invocation's state of every capability.
pub(crate) struct States {
    kv: KvHost,
    secrets: SecretsHost,
    pub(crate) http: HttpHost,
    tools: ToolsHost,
    config: ConfigHost,
    log: LogHost,
}

impl Factors {
    pub(crate) fn new(config: &RuntimeConfig) -> Result<Self, tenantry_host_http::EgressError> {
        Ok(Self {
            kv: KvFactor { limits: config.kv },
            secrets: SecretsFactor,
            http: HttpFactor::new(config.egress.clone())?,
            tools: ToolsFactor {
                max_depth: config.max_tool_depth,
            },
            config: ConfigFactor,
            log: LogFactor,
        })
    }

    /// Links every capability's interface into the engine's one linker.
    pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        KvFactor::add_to_linker(linker, |s| &mut s.capabilities.kv)?;
        SecretsFactor::add_to_linker(linker, |s| &mut s.capabilities.secrets)?;
        HttpFactor::add_to_linker(linker, |s| &mut s.capabilities.http)?;
        HttpFactor::add_wasi_http_to_linker(linker)?;
        ToolsFactor::add_to_linker(linker, |s| &mut s.capabilities.tools)?;
        ConfigFactor::add_to_linker(linker, |s| &mut s.capabilities.config)?;
        LogFactor::add_to_linker(linker, |s| &mut s.capabilities.log)?;
        Ok(())
    }

    pub(crate) fn prepare(&self, cx: &InstanceCtx<'_>, backends: &Backends) -> States {
        States {
            kv: self.kv.prepare(cx, &backends.kv),
            secrets: self.secrets.prepare(cx, &backends.secrets),
            http: self.http.prepare(cx, &()),
            tools: self.tools.prepare(cx, &backends.tools),
            config: self.config.prepare(cx, &()),
            log: self.log.prepare(cx, &()),
        }
    }
}
