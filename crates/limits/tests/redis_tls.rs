//! Redis over TLS (`rediss://`): the shared limiters reach a TLS-only Redis whose
//! certificate comes from a private CA when that CA is given (the operator's
//! `tls_ca_file`), and refuse it otherwise. The Redis is a throwaway instance
//! started for this test, with a certificate from a CA generated for it.

use tenantry_limits::{RedisConn, RedisOptions};
use tenantry_test_services::https::{Cert, TestCa};

#[tokio::test]
async fn a_tls_redis_with_a_private_ca_is_reached_only_when_that_ca_is_trusted() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = ca.write_pem(dir.path());
    let (cert, key) = ca.server_pem(Cert::Valid);
    let (cert_file, key_file) = (dir.path().join("redis.crt"), dir.path().join("redis.key"));
    std::fs::write(&cert_file, cert).expect("write cert");
    std::fs::write(&key_file, key).expect("write key");
    let port = tenantry_test_services::start_redis_tls(&cert_file, &key_file, &ca_file)
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!("rediss://localhost:{port}");

    let trusted = RedisOptions {
        ca_pem: Some(std::fs::read(&ca_file).expect("read CA")),
        ..RedisOptions::default()
    };
    let conn = RedisConn::connect(&url, trusted)
        .await
        .expect("the private CA is trusted");
    conn.ping().await.expect("PING over TLS");

    // The bundled roots alone do not know the private CA.
    let untrusted = RedisConn::connect(&url, RedisOptions::default()).await;
    assert!(
        untrusted.is_err(),
        "a certificate of an unknown CA must be refused"
    );
    // Plain text to a TLS-only port gets nowhere either.
    let plain = RedisConn::connect(
        &format!("redis://localhost:{port}"),
        RedisOptions::default(),
    )
    .await;
    assert!(plain.is_err());
}
