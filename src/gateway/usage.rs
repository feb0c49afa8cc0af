//! What the gateway counts: tokens from every response's `usage`, requests by status, and
//! streams in flight. Metrics are the operator's: no label names an account's model.

use axum::http::StatusCode;
use serde_json::Value;

/// Records tokens from a response's `usage`, wherever it arrives.
pub fn record_usage(usage: &Value) {
    for (field, direction) in [("prompt_tokens", "in"), ("completion_tokens", "out")] {
        if let Some(n) = usage[field].as_u64() {
            metrics::counter!("squadron_gateway_tokens_total", "direction" => direction)
                .increment(n);
        }
    }
}

/// Counts a gateway request that ended with `status`.
pub fn count(status: StatusCode) {
    metrics::counter!("squadron_gateway_requests_total", "status" => status.as_u16().to_string())
        .increment(1);
}

/// A stream's usage, recorded once when the stream ends (however it ends): the last usage a
/// chunk carried, so a provider that sends running totals is not counted twice.
#[derive(Default)]
pub struct UsageOnce {
    pub usage: Value,
}

impl Drop for UsageOnce {
    fn drop(&mut self) {
        record_usage(&self.usage);
    }
}

/// Counts a stream in `squadron_gateway_streams_in_flight` while held.
pub struct InFlight;

impl InFlight {
    pub fn count() -> InFlight {
        metrics::gauge!("squadron_gateway_streams_in_flight").increment(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("squadron_gateway_streams_in_flight").decrement(1.0);
    }
}
