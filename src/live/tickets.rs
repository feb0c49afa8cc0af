//! Short-lived, single-use tickets that let a browser open the WebSocket, which cannot carry
//! an `Authorization` header: `POST /api/live/tickets`, then `/api/live?ticket=...`.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use rand::RngCore;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::envelope::{data, Data};
use crate::auth::{OrgAuth, Principal};
use crate::state::AppState;

pub struct Tickets {
    issued: DashMap<String, (Principal, Instant)>,
    ttl: Duration,
}

impl Tickets {
    pub fn new(ttl: Duration) -> Tickets {
        Tickets {
            issued: DashMap::new(),
            ttl,
        }
    }

    pub fn issue(&self, principal: Principal) -> (String, DateTime<Utc>) {
        let now = Instant::now();
        // Expired tickets go whenever a new one is made, so the map stays small.
        self.issued
            .retain(|_, (_, at)| now.duration_since(*at) < self.ttl);
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let ticket = format!("lt_{}", hex::encode(bytes));
        self.issued.insert(ticket.clone(), (principal, now));
        let expires = Utc::now() + self.ttl;
        (ticket, expires)
    }

    /// Voids the tickets issued to `credential` (it was revoked).
    pub fn void(&self, credential: Uuid) {
        self.issued
            .retain(|_, (principal, _)| principal.credential() != credential);
    }

    /// The ticket's principal, once: a second redemption fails.
    pub fn redeem(&self, ticket: &str) -> Option<Principal> {
        let (_, (principal, at)) = self.issued.remove(ticket)?;
        (at.elapsed() < self.ttl).then_some(principal)
    }
}

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
    let (ticket, expires_at) = state.tickets.issue(Principal::Org(principal));
    (StatusCode::CREATED, data(Ticket { ticket, expires_at }))
}
