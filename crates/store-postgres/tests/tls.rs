//! The pooled store's PostgreSQL connections speak TLS (rustls, ring) and verify
//! the server's certificate when told to: against the test machine's server, whose
//! certificate is self-signed (`ssl = on` with a snake-oil certificate, as Debian
//! sets it up), `sslmode=require` encrypts and `sslmode=verify-full` refuses.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

fn with_sslmode(mode: &str) -> String {
    let url = tenantry_test_services::postgres_admin_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode={mode}")
}

#[tokio::test]
async fn postgres_connections_use_tls_and_verify_full_refuses_an_untrusted_certificate() {
    let mut conn = match PgConnection::connect(&with_sslmode("require")).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL at the test URL does not accept TLS ({e}); the TLS test needs a server with ssl = on"
        ),
    };
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_ssl");
    assert!(ssl, "sslmode=require gave a plain connection");
    conn.close().await.expect("close");

    let Err(e) = PgConnection::connect(&with_sslmode("verify-full")).await else {
        panic!("a self-signed certificate must not verify");
    };
    let text = e.to_string().to_lowercase();
    assert!(
        text.contains("certificate") || text.contains("unknownissuer") || text.contains("tls"),
        "{e}"
    );
}
