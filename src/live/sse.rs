//! SSE `GET /api/squad/events`: a squad's event stream, resumable with `Last-Event-ID`.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use uuid::Uuid;

use super::{squad_stream, Outgoing};
use crate::api::extract::Query;
use crate::api::mission_control::squads::owned_squad;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct EventsQuery {
    /// The squad, when not given in `X-Squad-Id`.
    squad_id: Option<Uuid>,
    /// Replay events after this sequence number (the `Last-Event-ID` header wins).
    since: Option<i64>,
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn sse_event(item: Outgoing) -> Event {
    let data = item.json();
    match item {
        // Ephemeral news carries no id, so a client's Last-Event-ID stays on stored events.
        Outgoing::Event(event) => match event.seq {
            Some(seq) => Event::default().id(seq.to_string()).data(data),
            None => Event::default().data(data),
        },
        Outgoing::Subscribed { .. } => Event::default().event("subscribed").data(data),
        Outgoing::Resync { .. } => Event::default().event("resync").data(data),
        Outgoing::Failed { .. } => Event::default().event("error").data(data),
    }
}

/// Stream a squad's events. Every event's `id` is its sequence number.
#[utoipa::path(get, path = "/api/squad/events", tag = "live",
    params(
        ("X-Squad-Id" = Option<Uuid>, Header, description = "the squad to watch"),
        ("Last-Event-ID" = Option<i64>, Header, description = "resume after this sequence number"),
        ("squad_id" = Option<Uuid>, Query), ("since" = Option<i64>, Query)),
    responses((status = 200, content_type = "text/event-stream"), (status = 400), (status = 401), (status = 404)))]
pub async fn squad_events(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let named = match header(&headers, "x-squad-id") {
        Some(raw) => Some(
            Uuid::parse_str(raw)
                .map_err(|_| ApiError::Validation("X-Squad-Id must be a UUID".into()))?,
        ),
        None => query.squad_id,
    };
    // A squad key watches its own squad; an organization token names one of its squads.
    let squad_id = match (named, principal.only_squad()) {
        (Some(id), Some(own)) if id != own => return Err(ApiError::not_found("squad")),
        (_, Some(own)) => own,
        (Some(id), None) => id,
        (None, None) => {
            return Err(ApiError::Validation(
                "name the squad with X-Squad-Id or ?squad_id=".into(),
            ))
        }
    };
    let since = match header(&headers, "last-event-id") {
        Some(raw) => Some(raw.parse::<i64>().map_err(|_| {
            ApiError::Validation("Last-Event-ID must be an event sequence number".into())
        })?),
        None => query.since,
    };
    owned_squad(&state, principal.org_id(), squad_id).await?;

    let open = state.caches.streams.open(&principal, "sse")?;
    let ends = open.ended().clone().cancelled_owned();
    let stream = squad_stream(
        state.db().clone(),
        state.core.shared.hub.clone(),
        squad_id,
        since,
    )
    .map(move |item| {
        let _held = &open;
        Ok(sse_event(item))
    })
    .take_until(ends);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
