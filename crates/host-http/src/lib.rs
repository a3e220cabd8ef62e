//! `tenantry-host-http`: outbound HTTP(S) for plugins under an egress policy —
//! `wasi:http/outgoing-handler` for `tenantry:plugin@0.2.0` guests ([`wasi`]) and
//! the frozen 0.1.0 `http.fetch` ([`fetch`]), both through one client
//! ([`client::Egress`]).
//!
//! A request is sent only if (1) its scheme is `https` (`http` only where the
//! operator allows it), (2) its host is covered by the install's egress grants
//! (exact or `*.suffix`) and the platform's connector list, and (3) every address
//! the host resolves to is public: IANA special-purpose IPv4 blocks (loopback,
//! private, link-local including 169.254.169.254 metadata, CGNAT, documentation,
//! multicast, ...) and every IPv6 address outside global unicast 2000::/3 or in its
//! special-purpose blocks (see [`REFUSED_V4`], [`REFUSED_V6`]) are refused unless the
//! operator allows a CIDR explicitly. The connection goes to the addresses that were
//! checked (no second DNS lookup, so no rebinding window). TLS certificates are
//! verified against the bundled web PKI roots plus the operator's CA file. Response
//! bodies are capped; every request counts as a host call and is bounded by the
//! invocation's remaining wall time.

pub mod client;
mod fetch;
pub mod policy;
pub mod wasi;

pub use client::{Egress, EgressError};
pub use policy::{
    EgressPolicy, GLOBAL_UNICAST_V6, NamedRange, REFUSED_V4, REFUSED_V6, is_public, refused_range,
};
pub use wasi::WasiHttpParts;

use std::sync::Arc;
use tenantry_world::bindings::tenantry::plugin::http;
use tenantry_world::{Factor, InstanceCtx};
use wasmtime::component::{HasSelf, Linker};

/// The capability: the operator's egress policy and its shared client.
pub struct HttpFactor {
    egress: Arc<Egress>,
}

impl HttpFactor {
    pub fn new(policy: EgressPolicy) -> Result<Self, EgressError> {
        Ok(Self {
            egress: Arc::new(Egress::new(Arc::new(policy))?),
        })
    }

    /// Links `wasi:http` (0.2.0 guests). Separate from [`Factor::add_to_linker`]
    /// because the WASI HTTP resources live in the store's resource table, which
    /// the store data hands over through [`WasiHttpParts`].
    pub fn add_wasi_http_to_linker<T: WasiHttpParts + 'static>(
        linker: &mut Linker<T>,
    ) -> wasmtime::Result<()> {
        wasi::add_to_linker(linker)
    }
}

impl Factor for HttpFactor {
    type State = HttpHost;
    type Backend = ();

    /// Links the 0.1.0 `http` interface.
    fn add_to_linker<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut HttpHost,
    ) -> wasmtime::Result<()> {
        http::add_to_linker::<T, HasSelf<HttpHost>>(linker, get)
    }

    fn prepare(&self, cx: &InstanceCtx<'_>, _: &()) -> HttpHost {
        HttpHost {
            wasi: wasi::WasiState::new(
                self.egress.clone(),
                cx.grants.egress.clone().into(),
                cx.meter.clone(),
            ),
        }
    }
}

/// The capability's per-invocation state.
pub struct HttpHost {
    wasi: wasi::WasiState,
}
