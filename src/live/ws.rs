//! WebSocket `/api/live`: subscribe to squads, receive their events.
//!
//! Client: `{"op":"subscribe","squad_id":..,"since":seq?}`, `{"op":"unsubscribe","squad_id":..}`,
//! `{"op":"ping"}`. Server: `subscribed`, `event`, `resync`, `unsubscribed`, `pong`, `error`.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use squadron_actors::store;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{squad_stream, LiveConnection};
use crate::auth::{self, Principal};
use crate::error::ApiError;
use crate::state::AppState;
use squadron_actors::squad::AgentRef;

/// Messages queued for one socket. A socket slower than this backs up its subscriptions,
/// which then lag and resync; the squads never wait for it.
const OUTBOX: usize = 256;
const MAX_SUBSCRIPTIONS: usize = 100;
/// Clients send only small control messages. tungstenite's default 128 KiB read buffer is
/// allocated and zeroed per socket, which made a watching dashboard cost ~145 KiB.
const READ_BUFFER: usize = 4 * 1024;
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;

#[derive(Deserialize)]
pub struct LiveQuery {
    /// A ticket from `POST /api/live/tickets`, for browsers.
    ticket: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum ClientOp {
    Subscribe { squad_id: Uuid, since: Option<i64> },
    Unsubscribe { squad_id: Uuid },
    Ping,
}

/// Open the live WebSocket, authenticated by header or by `?ticket=`.
#[utoipa::path(get, path = "/api/live", tag = "live",
    params(("ticket" = Option<String>, Query, description = "single-use ticket for browsers")),
    responses((status = 101, description = "switching to the WebSocket protocol"), (status = 401)))]
pub async fn upgrade(
    State(state): State<AppState>,
    Query(query): Query<LiveQuery>,
    headers: HeaderMap,
    client: auth::ClientAddr,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let principal = match query.ticket {
        Some(ticket) => state
            .tickets
            .redeem(&ticket)
            .ok_or_else(|| ApiError::Unauthorized("invalid or expired live ticket".into()))?,
        None => auth::authenticate(&state, &headers, client).await?,
    };
    // An agent's own socket also carries its notifications, the moment they are made.
    let agent = match &principal {
        Principal::Key(key) => auth::key_agent(&state, key, &headers).await.ok(),
        Principal::Org(_) => None,
    };
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| connection(state, principal, agent, socket)))
}

async fn connection(
    state: AppState,
    principal: Principal,
    agent: Option<AgentRef>,
    socket: WebSocket,
) {
    let _open = LiveConnection::open("ws");
    let (mut sink, mut incoming) = socket.split();
    let (outbox, mut queued) = mpsc::channel::<String>(OUTBOX);
    let writer = tokio::spawn(async move {
        while let Some(text) = queued.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let mut subscriptions: HashMap<Uuid, JoinHandle<()>> = HashMap::new();
    let notifications = agent.map(|agent| {
        let mut live = state.core.hub().subscribe(agent.id);
        let outbox = outbox.clone();
        tokio::spawn(async move {
            loop {
                match live.recv().await {
                    Ok(event) => {
                        if outbox.send(event.json.clone()).await.is_err() {
                            return;
                        }
                    }
                    // Lagging loses nothing: undelivered notifications stay pending.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                }
            }
        })
    });
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => break,
            message = incoming.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let reply = handle(&state, &principal, &text, &outbox, &mut subscriptions).await;
                    if let Some(reply) = reply {
                        if outbox.send(reply).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {} // pings are answered by axum; binary frames are ignored
            },
        }
    }
    for (_, task) in subscriptions {
        task.abort();
    }
    if let Some(task) = notifications {
        task.abort();
    }
    drop(outbox);
    // Let queued messages and the close frame go out, but not forever.
    if tokio::time::timeout(Duration::from_secs(1), writer)
        .await
        .is_err()
    {
        tracing::debug!("live socket writer did not finish in time");
    }
}

fn error(code: &str, message: impl Into<String>) -> Option<String> {
    Some(json!({ "type": "error", "code": code, "message": message.into() }).to_string())
}

/// Handles one client message; returns the direct reply, if any.
async fn handle(
    state: &AppState,
    principal: &Principal,
    text: &str,
    outbox: &mpsc::Sender<String>,
    subscriptions: &mut HashMap<Uuid, JoinHandle<()>>,
) -> Option<String> {
    let op = match serde_json::from_str::<ClientOp>(text) {
        Ok(op) => op,
        Err(err) => return error("VALIDATION_ERROR", format!("invalid message: {err}")),
    };
    match op {
        ClientOp::Ping => Some(json!({ "type": "pong" }).to_string()),
        ClientOp::Unsubscribe { squad_id } => {
            if let Some(task) = subscriptions.remove(&squad_id) {
                task.abort();
            }
            Some(json!({ "type": "unsubscribed", "squad_id": squad_id }).to_string())
        }
        ClientOp::Subscribe { squad_id, since } => {
            if principal.only_squad().is_some_and(|own| own != squad_id) {
                return error("NOT_FOUND", format!("squad {squad_id} not found"));
            }
            match store::squads::get(state.db(), principal.org_id(), squad_id).await {
                Ok(Some(_)) => {}
                Ok(None) => return error("NOT_FOUND", format!("squad {squad_id} not found")),
                Err(err) => return error("INTERNAL_ERROR", err.to_string()),
            }
            if !subscriptions.contains_key(&squad_id) && subscriptions.len() >= MAX_SUBSCRIPTIONS {
                return error(
                    "VALIDATION_ERROR",
                    format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection"),
                );
            }
            let stream = squad_stream(
                state.db().clone(),
                state.core.shared.hub.clone(),
                squad_id,
                since,
            );
            let outbox = outbox.clone();
            let task = tokio::spawn(async move {
                let mut stream = std::pin::pin!(stream);
                while let Some(item) = stream.next().await {
                    if outbox.send(item.json()).await.is_err() {
                        return;
                    }
                }
            });
            // Subscribing again replaces the old subscription (a client resyncing does this).
            if let Some(old) = subscriptions.insert(squad_id, task) {
                old.abort();
            }
            None
        }
    }
}
