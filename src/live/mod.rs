//! The live layer. One stream per subscription replays what the subscriber missed from the
//! store, then follows the squad's broadcast channel; WebSocket and SSE render it each their way.

pub mod sse;
pub mod streams;
pub mod tickets;
pub mod ws;

use std::sync::Arc;

use futures::Stream;
use sea_orm::DatabaseConnection;
use serde_json::json;
use squadron_actors::live::{LiveEvent, LiveHub};
use squadron_actors::store;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

/// Events read from the store per query while replaying. A subscriber that stops reading
/// holds one page until it is closed, so pages stay small.
const REPLAY_PAGE: u64 = 100;

/// What a subscriber is sent.
pub enum Outgoing {
    /// First message of a subscription: the squad's latest sequence number when it began.
    Subscribed {
        squad_id: Uuid,
        last_seq: i64,
    },
    Event(Arc<LiveEvent>),
    /// The subscriber fell behind by more than the live buffer. The subscription ends here:
    /// everything up to `last_seq` was sent, and subscribing again with `since: last_seq`
    /// (SSE: reconnecting with `Last-Event-ID`) fetches the rest from the store.
    Resync {
        squad_id: Uuid,
        last_seq: i64,
        missed: u64,
    },
    Failed {
        squad_id: Uuid,
        message: String,
    },
}

impl Outgoing {
    pub fn json(&self) -> String {
        match self {
            Outgoing::Subscribed { squad_id, last_seq } => {
                json!({ "type": "subscribed", "squad_id": squad_id, "last_seq": last_seq })
                    .to_string()
            }
            Outgoing::Event(event) => event.json.clone(),
            Outgoing::Resync {
                squad_id,
                last_seq,
                missed,
            } => json!({
                "type": "resync", "squad_id": squad_id, "last_seq": last_seq, "missed": missed,
            })
            .to_string(),
            Outgoing::Failed { squad_id, message } => json!({
                "type": "error", "code": "INTERNAL_ERROR", "squad_id": squad_id, "message": message,
            })
            .to_string(),
        }
    }
}

/// The squad's events after `since` (from the store), then live ones as they come; without
/// `since`, live ones only. No event is sent twice or skipped; a subscriber that falls too far
/// behind gets a `Resync` that ends the stream.
pub fn squad_stream(
    db: DatabaseConnection,
    hub: Arc<LiveHub>,
    squad_id: Uuid,
    since: Option<i64>,
) -> impl Stream<Item = Outgoing> + Send + 'static {
    async_stream::stream! {
        // Subscribe before reading the store, so nothing falls between the two.
        let mut live = hub.subscribe(squad_id);
        let current = match store::events::last_seq(&db, squad_id).await {
            Ok(seq) => seq,
            Err(err) => {
                yield Outgoing::Failed { squad_id, message: format!("could not read events: {err}") };
                return;
            }
        };
        yield Outgoing::Subscribed { squad_id, last_seq: current };
        let mut last = since.unwrap_or(current);
        if since.is_some() {
            loop {
                let page = match store::events::after(&db, squad_id, last, REPLAY_PAGE).await {
                    Ok(page) => page,
                    Err(err) => {
                        yield Outgoing::Failed { squad_id, message: format!("could not replay events: {err}") };
                        return;
                    }
                };
                let full = page.len() as u64 == REPLAY_PAGE;
                for event in &page {
                    last = event.seq;
                    yield Outgoing::Event(Arc::new(LiveEvent::from(event)));
                }
                if !full {
                    break;
                }
            }
        }
        loop {
            match live.recv().await {
                // Ephemeral news has no sequence: it is never replayed, nor skipped.
                Ok(event) => match event.seq {
                    None => yield Outgoing::Event(event),
                    Some(seq) if seq <= last => continue,
                    Some(seq) => {
                        last = seq;
                        yield Outgoing::Event(event);
                    }
                },
                Err(RecvError::Lagged(missed)) => {
                    metrics::counter!("squadron_live_resyncs_total").increment(1);
                    yield Outgoing::Resync { squad_id, last_seq: last, missed };
                    return;
                }
                Err(RecvError::Closed) => break,
            }
        }
    }
}

/// Counts an open live connection in `squadron_live_connections{transport}` while held.
pub struct LiveConnection(&'static str);

impl LiveConnection {
    pub fn open(transport: &'static str) -> Self {
        metrics::gauge!("squadron_live_connections", "transport" => transport).increment(1.0);
        LiveConnection(transport)
    }
}

impl Drop for LiveConnection {
    fn drop(&mut self) {
        metrics::gauge!("squadron_live_connections", "transport" => self.0).decrement(1.0);
    }
}
