//! The live hub: one broadcast channel per watched squad. Squad actors publish here after an
//! event is stored; WebSocket and SSE subscribers read from here. Living outside the actors,
//! subscriptions survive an actor's restart or idle stop.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use dashmap::DashMap;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::store::entity::event;

/// A stored event, with its wire form rendered once for every subscriber.
#[derive(Debug)]
pub struct LiveEvent {
    pub squad_id: Uuid,
    pub seq: i64,
    pub kind: String,
    /// `{"type":"event","squad_id":..,"seq":..,"created_at":..,"event":{"kind":..,...}}`
    pub json: String,
}

impl LiveEvent {
    pub fn new(
        squad_id: Uuid,
        seq: i64,
        kind: &str,
        data: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Self {
        let mut body = serde_json::Map::new();
        body.insert("kind".into(), kind.into());
        if let serde_json::Value::Object(fields) = data {
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
            squad_id,
            seq,
            kind: kind.to_owned(),
            json,
        }
    }
}

impl From<&event::Model> for LiveEvent {
    fn from(e: &event::Model) -> Self {
        LiveEvent::new(e.squad_id, e.seq, &e.kind, &e.data, e.created_at)
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

    pub fn subscribe(&self, squad_id: Uuid) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.channels
            .entry(squad_id)
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    /// Hands the event to every current subscriber without waiting for any of them.
    pub fn publish(&self, event: Arc<LiveEvent>) {
        metrics::counter!("squadron_events_published_total").increment(1);
        let squad_id = event.squad_id;
        let unheard = match self.channels.get(&squad_id) {
            Some(tx) => tx.send(event).is_err(),
            None => false,
        };
        if unheard {
            // Nobody listens any more: drop the channel so idle squads cost nothing.
            self.channels
                .remove_if(&squad_id, |_, tx| tx.receiver_count() == 0);
        }
    }
}
