//! `wasi:http/outgoing-handler` for `tenantry:plugin@0.2.0` guests.
//!
//! wasmtime-wasi-http implements the WASI types (requests, bodies, streams); every
//! request a guest hands to `outgoing-handler.handle` is charged as a host call
//! (a trap past the execution's host-call limit or deadline, like every other
//! capability) and then sent by [`EgressHooks::send_request`] through the shared
//! [`Egress`] client, which applies the egress policy. The response body is capped
//! and its reading bounded by the same timeout. Redirects are returned to the guest
//! as they are; a client that follows one sends a new request, checked again.

use crate::HttpHost;
use crate::client::{Egress, EgressError};
use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tenantry_world::Meter;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi_http::p2::bindings::http::{outgoing_handler, types};
use wasmtime_wasi_http::{
    Error as WasiError, RequestOptions, WasiBody, WasiHttp, WasiHttpCtx, WasiHttpCtxView,
    WasiHttpHooks,
};

/// What the store data must give the wasi:http wiring: this capability's state and
/// the store's resource table (shared with `wasi:io`, whose streams and pollables
/// the HTTP resources use).
pub trait WasiHttpParts: Send {
    fn wasi_http_parts(&mut self) -> (&mut HttpHost, &mut ResourceTable);
}

/// One invocation's [`HttpHost`]: the WASI HTTP context and the hooks that send
/// its requests (which 0.1.0's `fetch` uses too).
pub(crate) struct WasiState {
    ctx: WasiHttpCtx,
    pub(crate) hooks: EgressHooks,
}

impl WasiState {
    pub(crate) fn new(egress: Arc<Egress>, granted: Arc<[String]>, meter: Arc<Meter>) -> Self {
        Self {
            ctx: WasiHttpCtx::new(),
            hooks: EgressHooks {
                egress,
                granted,
                meter,
            },
        }
    }
}

/// The `wasi:http` version linked (wasmtime 48's); guests built against any
/// earlier 0.2.x match it by semver.
const OUTGOING_HANDLER: &str = "wasi:http/outgoing-handler@0.2.12";

/// Links `wasi:http/types` and a metered `wasi:http/outgoing-handler`.
///
/// `handle` is wired by hand rather than with the generated `add_to_linker`: the
/// generated trait for it requires the whole `types` trait of whatever implements
/// it, and all this adds is the host-call charge in front of wasmtime-wasi-http's
/// own `handle`.
pub fn add_to_linker<T: WasiHttpParts + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let options = wasmtime_wasi_http::p2::bindings::LinkOptions::default();
    types::add_to_linker::<T, WasiHttp>(linker, &options.into(), view)?;
    linker.instance(OUTGOING_HANDLER)?.func_wrap(
        "handle",
        |mut store: StoreContextMut<'_, T>,
         (request, options): (
            Resource<types::OutgoingRequest>,
            Option<Resource<types::RequestOptions>>,
        )| {
            let data = store.data_mut();
            data.wasi_http_parts().0.wasi.hooks.meter.charge()?;
            match outgoing_handler::Host::handle(&mut view(data), request, options) {
                Ok(response) => Ok((Ok(response),)),
                Err(e) => Ok((Err(e.downcast()?),)),
            }
        },
    )?;
    Ok(())
}

fn view<T: WasiHttpParts>(t: &mut T) -> WasiHttpCtxView<'_> {
    let (HttpHost { wasi }, table) = t.wasi_http_parts();
    WasiHttpCtxView {
        ctx: &mut wasi.ctx,
        table,
        hooks: &mut wasi.hooks,
    }
}

/// Sends every request through the egress client, under this install's grants.
pub(crate) struct EgressHooks {
    pub(crate) egress: Arc<Egress>,
    /// Egress host patterns granted to this install.
    pub(crate) granted: Arc<[String]>,
    pub(crate) meter: Arc<Meter>,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for EgressHooks {
    /// Every scheme reaches [`Egress::send`], which refuses and records what the
    /// policy does not allow.
    fn is_supported_scheme(&mut self, _: &http::uri::Scheme) -> bool {
        true
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let (egress, granted, meter) = (
            self.egress.clone(),
            self.granted.clone(),
            self.meter.clone(),
        );
        Box::new(async move {
            let cap = egress.policy().max_response_bytes;
            let request = request.map(|b| reqwest::Body::wrap(SyncBody(std::sync::Mutex::new(b))));
            let request = reqwest::Request::try_from(request)
                .map_err(|_| WasiError::HttpRequestUriInvalid)?;
            let response = egress
                .send(&granted, &meter, request)
                .await
                .map_err(to_wasi)?;
            let response: http::Response<reqwest::Body> = response.into();
            let response = response.map(|inner| {
                Capped {
                    inner,
                    left: cap,
                    cap,
                }
                .boxed_unsync()
            });
            let io: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

fn to_wasi(e: EgressError) -> WasiError {
    match e {
        EgressError::Denied(_) => WasiError::HttpRequestDenied,
        EgressError::Invalid(_) => WasiError::HttpRequestUriInvalid,
        EgressError::Dns(_) => WasiError::DnsError {
            rcode: Some("address not found".into()),
            info_code: None,
        },
        EgressError::Certificate(_) => WasiError::TlsCertificateError,
        EgressError::Tls(_) => WasiError::TlsProtocolError,
        EgressError::Connect(_) => WasiError::ConnectionRefused,
        EgressError::Timeout => WasiError::ConnectionTimeout,
        EgressError::Failed(m) => WasiError::InternalError(Some(m)),
    }
}

/// The guest's request body, made `Sync` for the client. The mutex is never
/// contended (polling goes through `&mut`); it is there so `is_end_stream` and
/// `size_hint` reach the client too (a request without a body then goes out as
/// headers only, with no empty body frame after them).
struct SyncBody(std::sync::Mutex<WasiBody>);

impl Body for SyncBody {
    type Data = Bytes;
    type Error = WasiError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WasiError>>> {
        let body = self
            .get_mut()
            .0
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Pin::new(body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.lock().is_ok_and(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.lock().map(|b| b.size_hint()).unwrap_or_default()
    }
}

/// The response body, cut with `http-response-body-size` past the policy's cap.
struct Capped {
    inner: reqwest::Body,
    left: usize,
    cap: usize,
}

impl Body for Capped {
    type Data = Bytes;
    type Error = WasiError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WasiError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if data.len() > this.left {
                        this.left = 0;
                        return Poll::Ready(Some(Err(WasiError::HttpResponseBodySize(Some(
                            this.cap as u64,
                        )))));
                    }
                    this.left -= data.len();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(if e.is_timeout() {
                WasiError::HttpResponseTimeout
            } else {
                WasiError::HttpResponseIncomplete
            }))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}
