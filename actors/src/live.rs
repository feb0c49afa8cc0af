//! The live hub: one broadcast channel per watched squad (and per agent, for its own
//! notifications). Squad actors publish here after an event is stored; WebSocket and SSE
//! subscribers read from here. Living outside the actors, subscriptions survive an actor's
//! restart or idle stop.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use dashmap::DashMap;
use serde_json::Value;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::store::entity::event;

/// A message for live subscribers, its wire form rendered once for all of them.
#[derive(Debug)]
pub struct LiveEvent {
    /// The squad (or agent) whose subscribers get it.
    pub channel: Uuid,
    /// The stored event's sequence number; `None` for ephemeral news (heartbeats, an agent's
    /// notifications), which is not replayed.
    pub seq: Option<i64>,
    pub kind: String,
    pub json: String,
}

impl LiveEvent {
    /// `{"type":"event","squad_id":..,"seq":..,"created_at":..,"event":{"kind":..,...}}`
    pub fn new(
        squad_id: Uuid,
        seq: Option<i64>,
        kind: &str,
        data: &Value,
        at: DateTime<Utc>,
    ) -> Self {
        let mut body = serde_json::Map::new();
        body.insert("kind".into(), kind.into());
        if let Value::Object(fields) = data {
            body.extend(fields.clone());
        }
        let json = serde_json::json!({
            "type": "event",
            "squad_id": squad_id,
            "seq": seq,
            "created_at": at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "event": body,
        })
        .to_string();
        LiveEvent {
            channel: squad_id,
            seq,
            kind: kind.to_owned(),
            json,
        }
    }

    /// An unsequenced message on `channel` whose wire form is `json` as given.
    pub fn ephemeral(channel: Uuid, kind: &str, json: String) -> Self {
        LiveEvent {
            channel,
            seq: None,
            kind: kind.to_owned(),
            json,
        }
    }
}

impl From<&event::Model> for LiveEvent {
    fn from(e: &event::Model) -> Self {
        LiveEvent::new(e.squad_id, Some(e.seq), &e.kind, &e.data, e.created_at)
    }
}

pub struct LiveHub {
    channels: DashMap<Uuid, broadcast::Sender<Arc<LiveEvent>>>,
    capacity: usize,
}

impl LiveHub {
    /// `capacity` is how many events a subscriber may fall behind before it is told to resync.
    pub fn new(capacity: usize) -> Self {
        LiveHub {
            channels: DashMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn subscribe(&self, channel: Uuid) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.channels
            .entry(channel)
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    /// Whether anyone listens on `channel` (to skip rendering news nobody would read).
    pub fn is_watched(&self, channel: Uuid) -> bool {
        self.channels
            .get(&channel)
            .is_some_and(|tx| tx.receiver_count() > 0)
    }

    /// Hands the event to every current subscriber without waiting for any of them.
    pub fn publish(&self, event: Arc<LiveEvent>) {
        metrics::counter!("squadron_events_published_total").increment(1);
        let channel = event.channel;
        let unheard = match self.channels.get(&channel) {
            Some(tx) => tx.send(event).is_err(),
            None => false,
        };
        if unheard {
            // Nobody listens any more: drop the channel so idle squads cost nothing.
            self.channels
                .remove_if(&channel, |_, tx| tx.receiver_count() == 0);
        }
    }
}
