//! The baseline of `scripts/bench-http`: a bare axum server on the same tokio and axum
//! as Tenantry, answering `POST /echo` by parsing the JSON body and returning it. What
//! Tenantry's invoke path reaches is reported as a ratio of this server's throughput,
//! measured in the same run.
//!
//! `cargo run --release -p tenantry-server --example bare_axum -- 127.0.0.1:0`
//! prints `listening on ADDR` and serves until killed.

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let app = Router::new()
        .route("/echo", post(|Json(v): Json<Value>| async move { Json(v) }))
        .route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
