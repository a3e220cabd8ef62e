//! Invocations.

use tenantry_api_types as w;
use tenantry_service::invoke::{InvocationStats, InvokeError, InvokeRequest, InvokeResponse};

use super::{ToDomain, ToWire};

impl ToDomain for w::InvokeRequest {
    type Domain = InvokeRequest;
    fn to_domain(self) -> InvokeRequest {
        let w::InvokeRequest { action, input } = self;
        InvokeRequest { action, input }
    }
}

impl ToWire for InvocationStats {
    type Wire = w::InvocationStats;
    fn to_wire(self) -> w::InvocationStats {
        let InvocationStats {
            duration_us,
            fuel,
            peak_memory_bytes,
            host_calls,
            bytes_in,
            bytes_out,
        } = self;
        w::InvocationStats {
            duration_us,
            fuel,
            peak_memory_bytes,
            host_calls,
            bytes_in,
            bytes_out,
        }
    }
}

impl ToWire for InvokeError {
    type Wire = w::InvokeError;
    fn to_wire(self) -> w::InvokeError {
        let InvokeError { code, message } = self;
        w::InvokeError {
            code: code.to_wire(),
            message,
        }
    }
}

impl ToWire for InvokeResponse {
    type Wire = w::InvokeResponse;
    fn to_wire(self) -> w::InvokeResponse {
        let InvokeResponse {
            invocation_id,
            outcome,
            output,
            error,
            stats,
        } = self;
        w::InvokeResponse {
            invocation_id: invocation_id.to_wire(),
            outcome: outcome.to_wire(),
            output,
            error: error.to_wire(),
            stats: stats.to_wire(),
        }
    }
}
