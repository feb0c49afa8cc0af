//! WebSocket `/api/live`: subscribe to squads, receive their events.
//!
//! Client: `{"op":"subscribe","squad_id":..,"since":seq?}`, `{"op":"unsubscribe","squad_id":..}`,
//! `{"op":"ping"}`. Server: `subscribed`, `event`, `resync`, `unsubscribed`, `pong`, `error`.
//!
//! Memory per socket is bounded whatever its client does. Its messages wait in an outbox of
//! `--live-outbox-bytes`; events there are shared with every other subscriber, not copied.
//! A client slower than that holds up its subscriptions, which lag and are told to resync; a
//! client that takes longer than `--live-send-timeout-secs` to accept one message is closed.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use squadron_actors::live::LiveEvent;
use squadron_actors::store;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::squad_stream;
use super::streams::StreamGuard;
use crate::auth::{self, Principal};
use crate::error::ApiError;
use crate::state::AppState;
use squadron_actors::squad::AgentRef;

const MAX_SUBSCRIPTIONS: usize = 100;
/// Clients send only small control messages. tungstenite's default 128 KiB read buffer is
/// allocated and zeroed per socket, which made a watching dashboard cost ~145 KiB.
const READ_BUFFER: usize = 4 * 1024;
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;
/// What a queued message costs beyond its text (its slot and bookkeeping), charged against
/// the outbox's budget too, so many small messages cannot add up unbounded either.
const FRAME_OVERHEAD: usize = 64;
/// How long the close frame and the last queued messages may take once the socket ends.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

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
    responses((status = 101, description = "switching to the WebSocket protocol"), (status = 401),
        (status = 429, description = "the credential holds as many live connections as it may")))]
pub async fn upgrade(
    State(state): State<AppState>,
    Query(query): Query<LiveQuery>,
    headers: HeaderMap,
    client: auth::ClientAddr,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let principal = match query.ticket {
        Some(ticket) => state
            .caches
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
    let stream = state.caches.streams.open(&principal, "ws")?;
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_CLIENT_MESSAGE)
        // The writer sends one message at a time and waits until it is written, so the
        // socket's own buffer never holds more than that one: no need to gather 128 KiB.
        .write_buffer_size(0)
        .on_upgrade(move |socket| connection(state, principal, agent, stream, socket)))
}

/// A message for the socket's writer: an event shared with every subscriber of its squad
/// (copied only as it is written), or a reply of this connection's own.
enum Frame {
    Event(Arc<LiveEvent>),
    Text(String),
}

impl Frame {
    fn text(&self) -> &str {
        match self {
            Frame::Event(event) => &event.json,
            Frame::Text(text) => text,
        }
    }
}

/// The connection is closing: nothing more can be queued.
struct Closed;

/// One socket's queue to its writer, bounded in bytes: a sender waits while the socket has
/// its budget queued already. Each message holds its share of the budget until written.
#[derive(Clone)]
struct Outbox {
    queue: mpsc::UnboundedSender<(Frame, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
    budget: usize,
}

type Queued = mpsc::UnboundedReceiver<(Frame, OwnedSemaphorePermit)>;

impl Outbox {
    fn new(budget: usize) -> (Outbox, Queued) {
        let budget = budget.clamp(FRAME_OVERHEAD, u32::MAX as usize);
        let (queue, queued) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(budget));
        (
            Outbox {
                queue,
                room,
                budget,
            },
            queued,
        )
    }

    /// Queues `frame` once there is room for it. A message larger than the whole budget
    /// waits for an empty outbox instead of never going.
    async fn send(&self, frame: Frame) -> Result<(), Closed> {
        let cost = (frame.text().len() + FRAME_OVERHEAD).min(self.budget) as u32;
        let room = self
            .room
            .clone()
            .acquire_many_owned(cost)
            .await
            .map_err(|_| Closed)?;
        self.queue.send((frame, room)).map_err(|_| Closed)
    }
}

async fn connection(
    state: AppState,
    principal: Principal,
    agent: Option<AgentRef>,
    stream: StreamGuard,
    socket: WebSocket,
) {
    // Ends the connection: shutdown, the credential's revocation, or the writer giving up.
    let ended = stream.ended().child_token();
    let (sink, mut incoming) = socket.split();
    let (outbox, queued) = Outbox::new(state.config.live_outbox_bytes);
    let writer = tokio::spawn(write(
        state.clone(),
        sink,
        queued,
        outbox.room.clone(),
        ended.clone(),
    ));
    let mut subscriptions: HashMap<Uuid, JoinHandle<()>> = HashMap::new();
    let notifications = agent.map(|agent| {
        let mut live = state.core.hub().subscribe(agent.id);
        let outbox = outbox.clone();
        tokio::spawn(async move {
            loop {
                match live.recv().await {
                    Ok(event) => {
                        if outbox.send(Frame::Event(event)).await.is_err() {
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
            _ = ended.cancelled() => break,
            message = incoming.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let reply = handle(&state, &principal, &text, &outbox, &mut subscriptions).await;
                    if let Some(reply) = reply {
                        // A client that sends but does not read waits here, not in memory.
                        tokio::select! {
                            _ = ended.cancelled() => break,
                            sent = outbox.send(Frame::Text(reply)) => if sent.is_err() {
                                break;
                            },
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
    if tokio::time::timeout(CLOSE_GRACE * 2, writer).await.is_err() {
        tracing::debug!("live socket writer did not finish in time");
    }
    drop(stream);
}

/// Writes the outbox to the socket, one message at a time, until every sender is gone or
/// the connection ends; then closes it, saying why when it was revoked or the server stops.
/// A message the client takes longer than the send timeout to accept ends the connection.
async fn write(
    state: AppState,
    mut sink: SplitSink<WebSocket, Message>,
    mut queued: Queued,
    room: Arc<Semaphore>,
    ended: CancellationToken,
) {
    // However this ends, the connection ends with it, and no sender waits for room again.
    let _ended = ended.clone().drop_guard();
    let _closed = close_on_drop(room);
    let send_timeout = Duration::from_secs(state.config.live_send_timeout_secs.max(1));
    let why = loop {
        let next = tokio::select! {
            biased;
            _ = ended.cancelled() => break Some(if state.shutdown.is_cancelled() {
                (close_code::AWAY, "the server is shutting down")
            } else {
                (close_code::POLICY, "the credential was revoked")
            }),
            next = queued.recv() => next,
        };
        let Some((frame, _room)) = next else {
            break None;
        };
        match tokio::time::timeout(send_timeout, sink.send(Message::Text(frame.text().into())))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                metrics::counter!("squadron_live_stalled_closed_total").increment(1);
                tracing::debug!("closing a live socket whose client stopped reading");
                return;
            }
        }
    };
    let close = why.map(|(code, reason)| CloseFrame {
        code,
        reason: reason.into(),
    });
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        sink.send(Message::Close(close)).await?;
        sink.close().await
    })
    .await;
}

/// Closes the outbox's semaphore when dropped, so a subscription waiting for room gives up.
fn close_on_drop(room: Arc<Semaphore>) -> impl Drop {
    struct CloseOnDrop(Arc<Semaphore>);
    impl Drop for CloseOnDrop {
        fn drop(&mut self) {
            self.0.close();
        }
    }
    CloseOnDrop(room)
}

fn error(code: &str, message: impl Into<String>) -> Option<String> {
    Some(json!({ "type": "error", "code": code, "message": message.into() }).to_string())
}

/// Handles one client message; returns the direct reply, if any.
async fn handle(
    state: &AppState,
    principal: &Principal,
    text: &str,
    outbox: &Outbox,
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
                    let frame = match item {
                        super::Outgoing::Event(event) => Frame::Event(event),
                        other => Frame::Text(other.json()),
                    };
                    if outbox.send(frame).await.is_err() {
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
