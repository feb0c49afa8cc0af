//! The turns an agent is answering (chats through the gateway, SquadOS chat, workflows), as
//! its actor keeps them. The turn itself runs where the request is (the HTTP layer's turn
//! engine); it tells the agent's actor what happens, and the actor keeps the turns in flight
//! and mirrors them to the squad's live subscribers: started, text deltas and, stored,
//! tool calls and results and the finish with its usage.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use serde_json::{json, Value};
use tokio::time::Instant;
use uuid::Uuid;

use crate::live::{LiveEvent, LiveHub};
use crate::store::entity::agent;

/// What a turn tells its agent's actor.
#[derive(Debug)]
pub enum TurnNews {
    /// The turn began (`stream`: its client reads it as it comes).
    Started { stream: bool },
    /// Text the model wrote since the last delta (the engine coalesces them).
    Delta(String),
    /// A stored event of the turn (a tool call or result); the activity feed shows `what`
    /// after the agent's name.
    Record {
        kind: &'static str,
        what: String,
        data: Value,
    },
    /// The turn ended: `completed`, `failed` or `cancelled`, with its usage.
    Finished { outcome: &'static str, usage: Value },
}

/// A turn being answered.
#[derive(Clone, Copy, Debug)]
pub struct InFlight {
    pub started: Instant,
    pub stream: bool,
}

/// An agent's turns in flight, by completion id.
#[derive(Default)]
pub struct Turns {
    in_flight: HashMap<Uuid, InFlight>,
}

impl Turns {
    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Takes a turn's news: keeps the turns in flight, publishes what is news to the squad's
    /// subscribers, and returns the events its squad is to store.
    pub fn news(
        &mut self,
        agent: &agent::Model,
        hub: &LiveHub,
        completion_id: Uuid,
        news: TurnNews,
    ) -> Vec<(&'static str, Value)> {
        let mirror = Mirror {
            agent,
            hub,
            completion_id,
        };
        match news {
            TurnNews::Started { stream } => {
                self.in_flight.insert(
                    completion_id,
                    InFlight {
                        started: Instant::now(),
                        stream,
                    },
                );
                metrics::gauge!("squadron_agent_turns_in_flight").increment(1.0);
                mirror.publish("agent.completion.started", json!({ "stream": stream }));
                Vec::new()
            }
            TurnNews::Delta(text) => {
                mirror.publish("agent.completion.delta", json!({ "text": text }));
                Vec::new()
            }
            TurnNews::Record { kind, what, data } => vec![mirror.stored(kind, &what, data)],
            TurnNews::Finished { outcome, usage } => {
                if self.in_flight.remove(&completion_id).is_none() {
                    return Vec::new(); // finished once already
                }
                metrics::gauge!("squadron_agent_turns_in_flight").decrement(1.0);
                vec![mirror.stored(
                    "agent.completion.finished",
                    &format!("answered a chat ({outcome})"),
                    json!({ "outcome": outcome, "usage": usage }),
                )]
            }
        }
    }

    /// The actor stops with turns in flight: each is finished as cancelled.
    pub fn cancel_all(
        &mut self,
        agent: &agent::Model,
        hub: &LiveHub,
    ) -> Vec<(&'static str, Value)> {
        let ids: Vec<Uuid> = self.in_flight.keys().copied().collect();
        ids.into_iter()
            .flat_map(|id| {
                let news = TurnNews::Finished {
                    outcome: "cancelled",
                    usage: Value::Null,
                };
                self.news(agent, hub, id, news)
            })
            .collect()
    }
}

/// How one turn's events look on its squad's live stream.
struct Mirror<'a> {
    agent: &'a agent::Model,
    hub: &'a LiveHub,
    completion_id: Uuid,
}

impl Mirror<'_> {
    fn who(&self) -> Value {
        json!({ "id": self.agent.id, "name": self.agent.name })
    }

    /// News for whoever watches the squad now, never stored.
    fn publish(&self, kind: &str, mut data: Value) {
        let squad_id = self.agent.squad_id;
        if !self.hub.is_watched(squad_id) {
            return;
        }
        data["completion_id"] = json!(self.completion_id);
        data["agent"] = self.who();
        let event = LiveEvent::new(squad_id, None, kind, &data, Utc::now());
        self.hub.publish(Arc::new(event));
    }

    /// An event for the squad to store and publish.
    fn stored(&self, kind: &'static str, what: &str, mut data: Value) -> (&'static str, Value) {
        data["message"] = json!(format!("{} {what}", self.agent.name));
        data["by"] = self.who();
        data["agent"] = self.who();
        data["completion_id"] = json!(self.completion_id);
        (kind, data)
    }
}
