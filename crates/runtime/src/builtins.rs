//! Capabilities without a backend: `config` (the install's validated config) and
//! `log` (bounded, to `tracing`, tagged with org and install).

use std::sync::Arc;
use tenantry_world::bindings::tenantry::plugin::{config, log};
use tenantry_world::{Factor, InstallRef, InstanceCtx, Meter};
use wasmtime::component::{HasSelf, Linker};

/// `config`: hands the guest its install's validated config.
pub struct ConfigFactor;

impl Factor for ConfigFactor {
    type State = ConfigHost;
    type Backend = ();

    fn add_to_linker<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut ConfigHost,
    ) -> wasmtime::Result<()> {
        // 0.1.0 and 0.2.0 (the same interface; 0.2.0 forwards to 0.1.0's trait).
        config::add_to_linker::<T, HasSelf<ConfigHost>>(linker, get)?;
        tenantry_world::bindings_v2::tenantry::plugin::config::add_to_linker::<T, HasSelf<ConfigHost>>(
            linker, get,
        )
    }

    fn prepare(&self, cx: &InstanceCtx<'_>, _: &()) -> ConfigHost {
        ConfigHost {
            json: cx.config.to_string(),
            meter: cx.meter.clone(),
        }
    }
}

pub struct ConfigHost {
    json: String,
    meter: Arc<Meter>,
}

impl config::Host for ConfigHost {
    /// A host call like any other: each one copies the config into the guest, so a
    /// loop of them is bounded by the tier's host calls per execution, not only by
    /// the guest's fuel.
    async fn get(&mut self) -> wasmtime::Result<String> {
        self.meter.charge()?;
        Ok(self.json.clone())
    }
}

/// Log lines per invocation and bytes per line.
const MAX_LINES: u32 = 100;
const MAX_LINE_BYTES: usize = 4096;

/// `log`: bounded lines to `tracing`, tagged with org and install.
pub struct LogFactor;

impl Factor for LogFactor {
    type State = LogHost;
    type Backend = ();

    fn add_to_linker<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut LogHost,
    ) -> wasmtime::Result<()> {
        // 0.1.0 and 0.2.0 (the same interface; 0.2.0 forwards to 0.1.0's trait).
        log::add_to_linker::<T, HasSelf<LogHost>>(linker, get)?;
        tenantry_world::bindings_v2::tenantry::plugin::log::add_to_linker::<T, HasSelf<LogHost>>(
            linker, get,
        )
    }

    fn prepare(&self, cx: &InstanceCtx<'_>, _: &()) -> LogHost {
        LogHost {
            install: cx.install,
            meter: cx.meter.clone(),
            lines: 0,
        }
    }
}

pub struct LogHost {
    install: InstallRef,
    meter: Arc<Meter>,
    lines: u32,
}

impl log::Host for LogHost {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.meter.charge()?;
        self.lines += 1;
        if self.lines > MAX_LINES {
            return Ok(());
        }
        let mut msg = message;
        if msg.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg.truncate(cut);
        }
        let (org, install) = (self.install.org_id, self.install.install_id);
        match level {
            log::Level::Debug => tracing::debug!(target: "plugin", %org, %install, "{msg}"),
            log::Level::Info => tracing::info!(target: "plugin", %org, %install, "{msg}"),
            log::Level::Warn => tracing::warn!(target: "plugin", %org, %install, "{msg}"),
            log::Level::Error => tracing::error!(target: "plugin", %org, %install, "{msg}"),
        }
        Ok(())
    }
}

tenantry_world::forward_v2!(config for ConfigHost);

tenantry_world::forward_v2!(log for LogHost);
