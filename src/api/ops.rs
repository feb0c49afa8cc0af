//! Operations: liveness, readiness, Prometheus metrics, and the dashboard page.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// `{"status": ...}`, and why when it is not good.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` (`/healthz`), `ready` or `unavailable` (`/readyz`).
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok",
        reason: None,
    })
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, axum::Json<Health>) {
    match state.db().ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(Health {
                status: "ready",
                reason: None,
            }),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            let body = Health {
                status: "unavailable",
                reason: Some("database unreachable"),
            };
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body))
        }
    }
}

/// Prometheus text exposition; with `--metrics-token` set, only for `Authorization: Bearer <it>`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain"), (status = 401)))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(expected) = &state.config.metrics_token {
        let given = crate::credentials::presented(&headers)?.unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(ApiError::Unauthorized(
                "/metrics needs `Authorization: Bearer <metrics token>`".into(),
            ));
        }
    }
    state.metrics.run_upkeep();
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    ))
}

/// The dashboard's static files: embedded in the binary in release builds,
/// read from `dashboard/` on each request in debug builds (edit, reload).
#[derive(rust_embed::Embed)]
#[folder = "dashboard/"]
struct Dashboard;

/// The dashboard's page.
pub async fn dashboard() -> Response {
    dashboard_file(Path("index.html".to_owned())).await
}

/// One of the dashboard's files (`/dashboard/app.js`), or 404.
pub async fn dashboard_file(Path(path): Path<String>) -> Response {
    match Dashboard::get(&path) {
        Some(file) => {
            let mime = file.metadata.mimetype().to_owned();
            let headers = [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, "no-cache".to_owned()),
            ];
            (headers, file.data).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
