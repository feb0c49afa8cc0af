//! One error type for every handler. It renders in the family's shape: `{"error","code"}`
//! under `/api`, OpenAI's `{"error":{"message","type","param","code"}}` under `/v1`.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use squadron_actors::domain::Invalid;
use squadron_actors::CoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Conflict(String),
    /// A body (an upload) beyond its limit.
    #[error("{0}")]
    TooLarge(String),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("rate limit of {limit} requests per minute exceeded; retry in {retry_after_secs} s")]
    RateLimited { limit: u32, retry_after_secs: u64 },
    /// Too many failed authentications from one client address.
    #[error("too many failed authentications from this address; retry in {retry_after_secs} s")]
    AuthThrottled { retry_after_secs: u64 },
    /// A credential holds as many live streams as it may.
    #[error("{0}")]
    TooManyStreams(String),
    #[error("{0}")]
    Unavailable(String),
    /// An upstream provider failed: its 429 stays a 429 (with its `Retry-After`), its 5xx
    /// becomes a 502, no answer in time a 504, its 4xx is passed on.
    #[error("{message}")]
    Upstream {
        status: StatusCode,
        message: String,
        retry_after: Option<HeaderValue>,
    },
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// Attached to every error response so the `/v1` layer can re-render it in OpenAI's shape.
#[derive(Clone, Debug)]
struct ErrorInfo {
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. }
            | ApiError::AuthThrottled { .. }
            | ApiError::TooManyStreams(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Upstream { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Seed 002's codes, plus the two that HTTP needs beyond them.
    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "UNAUTHORIZED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Validation(_) => "VALIDATION_ERROR",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::TooLarge(_) => "PAYLOAD_TOO_LARGE",
            ApiError::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ApiError::RateLimited { .. }
            | ApiError::AuthThrottled { .. }
            | ApiError::TooManyStreams(_) => "RATE_LIMITED",
            ApiError::Unavailable(_) => "SERVICE_UNAVAILABLE",
            ApiError::Upstream { status, .. } => match status.as_u16() {
                429 => "RATE_LIMITED",
                504 => "UPSTREAM_TIMEOUT",
                _ => "UPSTREAM_ERROR",
            },
            ApiError::Internal(_) => "INTERNAL_ERROR",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(err) = &self {
            tracing::error!(error = ?err, "request failed");
        }
        let code = self.code();
        let message = self.to_string();
        let mut response = (
            self.status(),
            axum::Json(json!({ "error": message, "code": code })),
        )
            .into_response();
        let retry_after = match self {
            ApiError::RateLimited {
                retry_after_secs, ..
            }
            | ApiError::AuthThrottled { retry_after_secs } => {
                Some(HeaderValue::from(retry_after_secs))
            }
            ApiError::Upstream { retry_after, .. } => retry_after,
            _ => None,
        };
        if let Some(value) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
            .extensions_mut()
            .insert(ErrorInfo { code, message });
        response
    }
}

impl From<CoreError> for ApiError {
    fn from(err: CoreError) -> Self {
        match err {
            CoreError::NotFound(what) => ApiError::not_found(what),
            CoreError::Invalid(msg) => ApiError::Validation(msg),
            CoreError::Unauthorized(msg) => ApiError::Unauthorized(msg),
            CoreError::Conflict(msg) => ApiError::Conflict(msg),
            CoreError::Unavailable(msg) => ApiError::Unavailable(msg),
            CoreError::Db(err) => err.into(),
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        if squadron_actors::store::is_unavailable(&err) {
            tracing::warn!(error = %err, "database unavailable");
            return ApiError::Unavailable("the database is unavailable; try again".into());
        }
        if squadron_actors::store::is_retryable(&err) {
            tracing::warn!(error = %err, "write kept conflicting");
            return ApiError::Unavailable("the database is busy; try again".into());
        }
        ApiError::Internal(err.into())
    }
}

impl From<Invalid> for ApiError {
    fn from(err: Invalid) -> Self {
        ApiError::Validation(err.0)
    }
}

/// Middleware: errors under `/v1` are re-rendered in OpenAI's error shape.
pub async fn openai_shape(request: Request, next: Next) -> Response {
    let openai = is_gateway_path(request.uri().path());
    let mut response = next.run(request).await;
    if !openai {
        return response;
    }
    let Some(info) = response.extensions_mut().remove::<ErrorInfo>() else {
        return response;
    };
    let kind = match response.status() {
        StatusCode::UNAUTHORIZED => "authentication_error",
        StatusCode::FORBIDDEN => "permission_error",
        StatusCode::NOT_FOUND => "not_found_error",
        StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
        s if s.is_server_error() => "server_error",
        _ => "invalid_request_error",
    };
    let body = json!({ "error": {
        "message": info.message,
        "type": kind,
        "param": null,
        "code": info.code.to_ascii_lowercase(),
    }});
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    (parts, axum::Json(body)).into_response()
}

pub fn is_gateway_path(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

/// The router's fallback: an unknown route is a 404 in the family's shape.
pub async fn no_route(request: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no route for {} {}",
        request.method(),
        request.uri().path()
    ))
}

pub async fn wrong_method() -> ApiError {
    ApiError::MethodNotAllowed
}
