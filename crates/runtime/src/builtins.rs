//! Capabilities without a backend: `config` (the install's validated config) and
//! `log` (bounded, to `tracing`, tagged with org and install).

use std::sync::Arc;
use tenantry_world::bindings::tenantry::plugin::{config, log};
use tenantry_world::{InstallRef, Meter};

pub struct ConfigHost {
    pub json: String,
}

impl config::Host for ConfigHost {
    async fn get(&mut self) -> wasmtime::Result<String> {
        Ok(self.json.clone())
    }
}

/// Log lines per invocation and bytes per line.
const MAX_LINES: u32 = 100;
const MAX_LINE_BYTES: usize = 4096;

pub struct LogHost {
    pub install: InstallRef,
    pub meter: Arc<Meter>,
    pub lines: u32,
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
