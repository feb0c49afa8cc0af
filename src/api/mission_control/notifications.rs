//! The calling agent's notifications: poll, acknowledge (idempotently; a delivered one is
//! never handed out again), queue health, and a push stream over SSE.

use std::collections::HashSet;
use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use squadron_actors::agent::{AgentMsg, Delivered};
use squadron_actors::store;
use utoipa::ToSchema;
use uuid::Uuid;

use super::views::NotificationView;
use crate::api::envelope::{data, list, Data};
use crate::api::extract::{Json, Path};
use crate::auth::{AgentCaller, Principal};
use crate::error::ApiError;
use crate::state::AppState;

/// The calling agent's undelivered notifications, oldest first.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications",
    responses((status = 200, body = Data<Vec<NotificationView>>), (status = 401), (status = 403)))]
pub async fn index(
    State(state): State<AppState>,
    AgentCaller(caller, agent): AgentCaller,
) -> Result<axum::Json<Data<Vec<NotificationView>>>, ApiError> {
    let pending = state
        .core
        .call_agent(caller.squad_id, agent.id, AgentMsg::Pending)
        .await?;
    Ok(list(
        pending.into_iter().map(NotificationView::from).collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveredInput {
    /// Must be `true`: delivery cannot be undone.
    delivered: bool,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveredView {
    id: Uuid,
    delivered: bool,
    /// False when it had been acknowledged before (the call changes nothing).
    newly_delivered: bool,
}

/// Acknowledge a notification. Idempotent: acknowledging again changes nothing.
#[utoipa::path(patch, path = "/api/notifications/{id}", tag = "notifications",
    params(("id" = Uuid, Path)), request_body = DeliveredInput,
    responses((status = 200, body = Data<DeliveredView>), (status = 400), (status = 401), (status = 404), (status = 409)))]
pub async fn deliver(
    State(state): State<AppState>,
    AgentCaller(caller, agent): AgentCaller,
    Path(id): Path<Uuid>,
    Json(body): Json<DeliveredInput>,
) -> Result<axum::Json<Data<DeliveredView>>, ApiError> {
    if !body.delivered {
        return Err(ApiError::Validation(
            "only {\"delivered\": true} is accepted".into(),
        ));
    }
    let outcome = state
        .core
        .call_agent(caller.squad_id, agent.id, |reply| {
            AgentMsg::Deliver(id, reply)
        })
        .await??;
    Ok(data(DeliveredView {
        id,
        delivered: true,
        newly_delivered: outcome == Delivered::Now,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct HealthView {
    pending_count: u64,
    /// Notifications that can no longer be delivered (their task was deleted first).
    failed_count: u64,
    oldest_pending: Option<DateTime<Utc>>,
}

/// The calling agent's notification queue health.
#[utoipa::path(get, path = "/api/notifications/health", tag = "notifications",
    responses((status = 200, body = Data<HealthView>), (status = 401), (status = 403)))]
pub async fn health(
    State(state): State<AppState>,
    AgentCaller(_caller, agent): AgentCaller,
) -> Result<axum::Json<Data<HealthView>>, ApiError> {
    let health = store::notifications::health(state.db(), agent.id).await?;
    Ok(data(HealthView {
        pending_count: health.pending,
        failed_count: health.failed,
        oldest_pending: health.oldest_pending,
    }))
}

/// Push: the calling agent's notifications over SSE, the moment they are created. On
/// connect, those still undelivered come first. Each is an `event: notification`.
#[utoipa::path(get, path = "/api/notifications/stream", tag = "notifications",
    responses((status = 200, content_type = "text/event-stream"), (status = 401), (status = 403)))]
pub async fn stream(
    State(state): State<AppState>,
    AgentCaller(caller, agent): AgentCaller,
    Extension(principal): Extension<Principal>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Subscribe before reading the queue, so nothing falls between the two.
    let mut live = state.core.hub().subscribe(agent.id);
    let pending = state
        .core
        .call_agent(caller.squad_id, agent.id, AgentMsg::Pending)
        .await?;
    let open = state.caches.streams.open(&principal, "sse")?;
    let ends = open.ended().clone().cancelled_owned();
    let stream = async_stream::stream! {
        let _open = open;
        let mut sent: HashSet<Uuid> = HashSet::new();
        for n in pending {
            sent.insert(n.id);
            let json = serde_json::json!({ "type": "notification", "agent_id": n.agent_id, "notification": squadron_actors::agent::view(&n) });
            yield Ok(Event::default().event("notification").data(json.to_string()));
        }
        loop {
            match live.recv().await {
                Ok(event) => {
                    let id = serde_json::from_str::<serde_json::Value>(&event.json).ok()
                        .and_then(|v| v["notification"]["id"].as_str().and_then(|s| s.parse::<Uuid>().ok()));
                    if id.is_some_and(|id| !sent.insert(id)) {
                        continue;
                    }
                    yield Ok(Event::default().event("notification").data(event.json.clone()));
                }
                // Missed some: they are still pending, and come back on reconnect.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    yield Ok(Event::default().event("resync").data("{\"type\":\"resync\"}"));
                    break;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    };
    let stream = stream.take_until(ends);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
