//! In-memory backends and helpers for runtime tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use tenantry_core::manifest::Grants;
use tenantry_core::{InstallId, OrgId, Outcome};
use tenantry_runtime::*;

pub fn plugin_bytes(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/../../examples/plugins/{name}/plugin.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e} (run scripts/build-plugins)"))
}

#[derive(Default)]
pub struct MemKv(pub Mutex<HashMap<(OrgId, InstallId, String), Vec<u8>>>);

#[async_trait::async_trait]
impl KvBackend for MemKv {
    async fn get(&self, i: &InstallRef, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(&(i.org_id, i.install_id, key.to_string()))
            .cloned())
    }
    async fn set(&self, i: &InstallRef, key: &str, value: &[u8]) -> Result<(), BackendError> {
        self.0
            .lock()
            .unwrap()
            .insert((i.org_id, i.install_id, key.to_string()), value.to_vec());
        Ok(())
    }
    async fn delete(&self, i: &InstallRef, key: &str) -> Result<bool, BackendError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .remove(&(i.org_id, i.install_id, key.to_string()))
            .is_some())
    }
    async fn list(
        &self,
        i: &InstallRef,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<String>, BackendError> {
        let m = self.0.lock().unwrap();
        let mut keys: Vec<String> = m
            .keys()
            .filter(|(o, n, k)| *o == i.org_id && *n == i.install_id && k.starts_with(prefix))
            .map(|(_, _, k)| k.clone())
            .collect();
        keys.sort();
        keys.truncate(limit as usize);
        Ok(keys)
    }
}

#[derive(Default)]
pub struct MemSecrets(pub Mutex<HashMap<(InstallId, String), String>>);

#[async_trait::async_trait]
impl SecretsBackend for MemSecrets {
    async fn get(&self, i: &InstallRef, name: &str) -> Result<Option<String>, BackendError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(&(i.install_id, name.to_string()))
            .cloned())
    }
}

/// An installed plugin as the test tool backend sees it.
pub type Installed = (InstallRef, Arc<LoadedPlugin>, Grants);

/// Tool calls resolve plugin names to (install, component, grants) in one org.
#[derive(Default)]
pub struct MemTools {
    /// Stats of every nested invocation, in order.
    pub nested_stats: Mutex<Vec<Stats>>,
    pub runtime: OnceLock<Runtime>,
    pub installs: Mutex<HashMap<String, Installed>>,
    pub backends: OnceLock<Backends>,
}

#[async_trait::async_trait]
impl ToolBackend for MemTools {
    async fn call(
        &self,
        caller: &InstallRef,
        plugin: &str,
        action: &str,
        input: String,
        nested: Nested,
    ) -> Result<String, ToolError> {
        let found = self.installs.lock().unwrap().get(plugin).cloned();
        let Some((target, loaded, grants)) = found.filter(|(t, _, _)| t.org_id == caller.org_id)
        else {
            return Err(ToolError {
                outcome: Outcome::NotFound,
                message: format!("{plugin} is not installed"),
            });
        };
        let rt = self.runtime.get().unwrap();
        let r = rt
            .invoke(
                &loaded,
                Invocation {
                    install: target,
                    action,
                    input: &input,
                    config: &serde_json::json!({}),
                    grants: &grants,
                    limits: Limits::default(),
                    backends: self.backends.get().unwrap().clone(),
                    nested: Some(nested),
                },
            )
            .await;
        self.nested_stats.lock().unwrap().push(r.stats.clone());
        match r.outcome {
            Outcome::Ok => Ok(r.output.unwrap_or_default()),
            o => Err(ToolError {
                outcome: o,
                message: r.error.unwrap_or_default(),
            }),
        }
    }
}

pub struct World {
    pub rt: Runtime,
    pub kv: Arc<MemKv>,
    pub secrets: Arc<MemSecrets>,
    pub tools: Arc<MemTools>,
    pub backends: Backends,
}

pub fn world(config: RuntimeConfig) -> World {
    let rt = Runtime::new(config).unwrap();
    let kv = Arc::new(MemKv::default());
    let secrets = Arc::new(MemSecrets::default());
    let tools = Arc::new(MemTools::default());
    let backends = Backends {
        kv: kv.clone(),
        secrets: secrets.clone(),
        tools: tools.clone(),
    };
    let _ = tools.runtime.set(rt.clone());
    let _ = tools.backends.set(backends.clone());
    World {
        rt,
        kv,
        secrets,
        tools,
        backends,
    }
}

pub fn install() -> InstallRef {
    InstallRef {
        org_id: OrgId::new(),
        install_id: InstallId::new(),
    }
}

/// Grants of the kv capability only.
pub fn kv_grant() -> Grants {
    Grants {
        kv: true,
        ..Grants::default()
    }
}

/// The output of a successful invocation, as JSON (asserts the outcome is `Ok`).
pub fn out(r: &InvocationResult) -> serde_json::Value {
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    serde_json::from_str(r.output.as_deref().unwrap()).unwrap()
}

impl World {
    pub fn load(&self, name: &str) -> Arc<LoadedPlugin> {
        let bytes = plugin_bytes(name);
        self.rt.load(name, &bytes).unwrap()
    }

    /// Runs `action` for a new install of a new org, with no grants and the
    /// default limits.
    pub async fn run_fresh(
        &self,
        plugin: &Arc<LoadedPlugin>,
        action: &str,
        input: &str,
    ) -> InvocationResult {
        let none = Grants::default();
        self.run(plugin, install(), action, input, &none, Limits::default())
            .await
    }

    pub async fn run(
        &self,
        plugin: &Arc<LoadedPlugin>,
        install: InstallRef,
        action: &str,
        input: &str,
        grants: &Grants,
        limits: Limits,
    ) -> InvocationResult {
        self.rt
            .invoke(
                plugin,
                Invocation {
                    install,
                    action,
                    input,
                    config: &serde_json::json!({"greeting": "hi"}),
                    grants,
                    limits,
                    backends: self.backends.clone(),
                    nested: None,
                },
            )
            .await
    }
}
