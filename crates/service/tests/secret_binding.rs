//! A secret's ciphertext is bound to its org, install and name: copied into another
//! row (another install of the same org, or another org) it does not decrypt.

use serde_json::json;
use std::sync::Arc;
use tenantry_core::scope::Session;
use tenantry_core::{Error, ErrorCode, Role, TenantScope};
use tenantry_crypto::{MasterKey, SecretValue};
use tenantry_service::installs::InstallRequest;
use tenantry_service::members::KeyOwner;
use tenantry_service::registry::{DetachedSignature, NewPublisherKey};
use tenantry_service::{ArtifactStore, RequestCtx, Service, Settings};
use tenantry_store::SecretRecord;
use tenantry_store_sqlite::{FileBlobs, SqliteControl, SqliteTenants};

async fn service(dir: &std::path::Path) -> Service {
    Service::new(
        Arc::new(SqliteControl::open(dir).await.unwrap()),
        Arc::new(SqliteTenants::open(dir).await.unwrap()),
        Arc::new(MasterKey::generate()),
        ArtifactStore::new(Arc::new(FileBlobs::new(dir))),
        Settings::default(),
        tenantry_runtime::Runtime::new(tenantry_runtime::RuntimeConfig {
            max_instances: 4,
            ..Default::default()
        })
        .unwrap(),
    )
}

async fn owner_scope(svc: &Service, op_key: &str, name: &str) -> TenantScope {
    let Session::Operator(op) = tenantry_service::auth::authenticate(svc, op_key)
        .await
        .unwrap()
    else {
        panic!()
    };
    let ctx = RequestCtx::new();
    let org = tenantry_service::orgs::create(svc, &op, &ctx, name, None)
        .await
        .unwrap();
    let scope = op.enter_org(org.id);
    let user = tenantry_service::members::add_user(svc, &scope, &ctx, "owner", Role::Owner)
        .await
        .unwrap();
    let key = tenantry_service::members::create_key(
        svc,
        &scope,
        &ctx,
        KeyOwner::User(user.id),
        "k",
        None,
    )
    .await
    .unwrap();
    match tenantry_service::auth::authenticate(svc, &String::from_utf8_lossy(key.key.expose()))
        .await
        .unwrap()
    {
        Session::Tenant(t) => t,
        Session::Operator(_) => panic!("expected a tenant session"),
    }
}

#[tokio::test]
async fn secret_ciphertext_copied_to_another_install_or_org_does_not_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let op_key = tenantry_service::orgs::bootstrap_operator(&svc)
        .await
        .unwrap()
        .unwrap();
    let op_key = String::from_utf8_lossy(op_key.expose()).to_string();
    let Session::Operator(op) = tenantry_service::auth::authenticate(&svc, &op_key)
        .await
        .unwrap()
    else {
        panic!()
    };

    // Publish two plugins that both declare the secret `api_token`.
    let signer = tenantry_crypto::SigningKeyPair::generate();
    tenantry_service::registry::register_publisher(
        &svc,
        &op,
        &RequestCtx::new(),
        "acme",
        &NewPublisherKey {
            public_key: signer.public_key().to_string(),
            not_before: None,
            not_after: None,
        },
    )
    .await
    .unwrap();
    for name in ["one", "two"] {
        let manifest = json!({
            "name": format!("@acme/{name}"), "version": "1.0.0", "description": "d", "publisher": "acme",
            "actions": [{"name": "run"}],
            "config_schema": {"type": "object", "properties": {"api_token": {"type": "string", "secret": true}}},
            "permissions": {"secrets": ["api_token"]}
        })
        .to_string();
        // A runnable component (publish validates it), made distinct per plugin by a
        // custom section.
        let mut artifact = wat::parse_file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/plugins-wat/echo.wat"
        ))
        .unwrap();
        artifact.extend([0, 1 + name.len() as u8, name.len() as u8]);
        artifact.extend(name.as_bytes());
        let created = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap();
        let m: tenantry_core::manifest::Manifest = serde_json::from_str(&manifest).unwrap();
        let st = tenantry_service::registry::statement_for(
            &m,
            manifest.as_bytes(),
            &artifact,
            &signer.public_key().key_id(),
            created,
        );
        let sig = DetachedSignature {
            key_id: st.key_id.clone(),
            created,
            signature: signer.sign(&st).to_string(),
        };
        tenantry_service::registry::publish(
            &svc,
            &Session::Operator(op.clone()),
            &RequestCtx::new(),
            manifest.as_bytes(),
            &artifact,
            &sig,
        )
        .await
        .unwrap();
    }

    let a = owner_scope(&svc, &op_key, "org-a").await;
    let b = owner_scope(&svc, &op_key, "org-b").await;
    let ctx = RequestCtx::new();
    let install = |scope: TenantScope, plugin: &'static str| {
        let svc = svc.clone();
        async move {
            let req = InstallRequest {
                plugin: plugin.into(),
                version: None,
                config: json!({}),
                grants: Default::default(),
                enabled: true,
            };
            tenantry_service::installs::install(&svc, &scope, &RequestCtx::new(), &req)
                .await
                .unwrap()
                .install
                .id
        }
    };
    let a1 = install(a.clone(), "@acme/one").await;
    let a2 = install(a.clone(), "@acme/two").await;
    let b1 = install(b.clone(), "@acme/one").await;
    tenantry_service::secrets::set(
        &svc,
        &a,
        &ctx,
        a1,
        "api_token",
        SecretValue::from("a1-value".to_string()),
    )
    .await
    .unwrap();
    let opened = tenantry_service::secrets::open_for_install(&svc, &a, a1, "api_token")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(opened.expose(), b"a1-value");

    // Read A1's row and copy its ciphertext into A2's row and into B1's row.
    let mut tx = svc.tenants.begin(&a, false).await.unwrap();
    let row = tx.get_secret(a1, "api_token").await.unwrap().unwrap();
    drop(tx);
    for (scope, target) in [(&a, a2), (&b, b1)] {
        let mut tx = svc.tenants.begin(scope, true).await.unwrap();
        tx.upsert_secret(&SecretRecord {
            install_id: target,
            ..row.clone()
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let err: Error =
            tenantry_service::secrets::open_for_install(&svc, scope, target, "api_token")
                .await
                .unwrap_err();
        assert_eq!(
            err.code,
            ErrorCode::Internal,
            "a copied ciphertext must not decrypt"
        );
    }
}
