//! Code execution.

use tenantry_api_types as w;
use tenantry_service::executions::{
    ExecuteRequest, Executed, ExecutionRecord, ExecutionStats, Language, LogLine, ScriptError,
};

use super::{ToDomain, ToWire};

impl ToDomain for w::ExecuteRequest {
    type Domain = ExecuteRequest;
    fn to_domain(self) -> ExecuteRequest {
        let w::ExecuteRequest {
            language,
            code,
            input,
        } = self;
        ExecuteRequest {
            language: match language {
                w::ScriptLanguage::Javascript => Language::JavaScript,
            },
            code,
            input,
        }
    }
}

impl ToWire for ScriptError {
    type Wire = w::ExecutionError;
    fn to_wire(self) -> w::ExecutionError {
        let ScriptError {
            code,
            message,
            line,
            column,
        } = self;
        w::ExecutionError {
            code,
            message,
            line,
            column,
        }
    }
}

impl ToWire for LogLine {
    type Wire = w::ExecutionLog;
    fn to_wire(self) -> w::ExecutionLog {
        let LogLine { level, message } = self;
        w::ExecutionLog { level, message }
    }
}

impl ToWire for ExecutionStats {
    type Wire = w::ExecutionStats;
    fn to_wire(self) -> w::ExecutionStats {
        let ExecutionStats {
            duration_us,
            tool_calls,
            fuel,
            peak_memory_bytes,
        } = self;
        w::ExecutionStats {
            duration_us,
            tool_call_count: tool_calls,
            fuel,
            peak_memory_bytes,
        }
    }
}

impl ToWire for Executed {
    type Wire = w::ExecutionResult;
    fn to_wire(self) -> w::ExecutionResult {
        let Executed {
            execution_id,
            success,
            value,
            error,
            logs,
            logs_dropped,
            stats,
            rate_limits: _,
        } = self;
        w::ExecutionResult {
            execution_id: execution_id.to_wire(),
            success,
            value,
            error: error.to_wire(),
            logs: logs.to_wire(),
            logs_dropped,
            stats: stats.to_wire(),
        }
    }
}

impl ToWire for ExecutionRecord {
    type Wire = w::ExecutionRecord;
    fn to_wire(self) -> w::ExecutionRecord {
        let ExecutionRecord {
            execution_id,
            at,
            actor_kind,
            actor_id,
            success,
            error_code,
            code_sha256,
            code_bytes,
            duration_us,
            tool_calls,
        } = self;
        w::ExecutionRecord {
            execution_id: execution_id.to_wire(),
            at,
            actor_kind: actor_kind.to_wire(),
            actor_id,
            success,
            error_code,
            code_sha256,
            code_bytes,
            duration_us,
            tool_call_count: tool_calls,
        }
    }
}
