//! `POST /api/live/tickets`: a single-use ticket for opening the live WebSocket from a
//! browser, which cannot carry an `Authorization` header (see [`crate::credentials::tickets`]).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::envelope::{data, Data};
use crate::auth::{OrgAuth, Principal};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Ticket {
    /// Pass as `/api/live?ticket=...`; valid once, for a few seconds.
    pub ticket: String,
    pub expires_at: DateTime<Utc>,
}

/// Make a single-use ticket for opening the live WebSocket from a browser.
#[utoipa::path(post, path = "/api/live/tickets", tag = "live",
    responses((status = 201, body = Data<Ticket>), (status = 401)))]
pub async fn create(
    State(state): State<AppState>,
    OrgAuth(principal): OrgAuth,
) -> (StatusCode, axum::Json<Data<Ticket>>) {
    let (ticket, expires_at) = state.caches.tickets.issue(Principal::Org(principal));
    (StatusCode::CREATED, data(Ticket { ticket, expires_at }))
}
