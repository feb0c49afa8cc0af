//! A turn's mirror: what the turn tells its agent's actor, which keeps the agent's turns in
//! flight and shows them to the squad (see `squadron_actors::turns`). Text is coalesced here,
//! one delta every [`Mirror::EVERY`], so a fast stream costs the actor a few messages a second.

use std::time::{Duration, Instant};

use ractor::ActorRef;
use serde_json::Value;
use squadron_actors::agent::AgentMsg;
use squadron_actors::store::entity::agent;
use squadron_actors::turns::TurnNews;
use squadron_actors::Core;
use uuid::Uuid;

use super::{add_usage, Answer, TurnEvent};
use crate::error::ApiError;

pub(crate) struct Mirror {
    actor: ActorRef<AgentMsg>,
    completion_id: Uuid,
    pending: String,
    last_flush: Instant,
    /// The usage of the rounds so far, for a turn that ends before its answer.
    usage: Value,
    done: bool,
}

impl Mirror {
    const EVERY: Duration = Duration::from_millis(100);

    /// Tells `agent`'s actor that a turn began (starting its squad if it sleeps).
    pub async fn start(
        core: &Core,
        agent: &agent::Model,
        stream: bool,
    ) -> Result<Mirror, ApiError> {
        let actor = core.agent(agent.squad_id, agent.id).await?;
        let mirror = Mirror {
            actor,
            completion_id: Uuid::new_v4(),
            pending: String::new(),
            last_flush: Instant::now(),
            usage: Value::Null,
            done: false,
        };
        mirror.tell(TurnNews::Started { stream });
        Ok(mirror)
    }

    /// News for the actor. An actor that has gone (its squad stopped, it was restarted) took
    /// the turn's bookkeeping with it: nothing is left to tell.
    fn tell(&self, news: TurnNews) {
        let _ = self.actor.cast(AgentMsg::Turn(self.completion_id, news));
    }

    pub fn see(&mut self, event: &TurnEvent) {
        match event {
            TurnEvent::Delta(text) => {
                self.pending.push_str(text);
                if self.last_flush.elapsed() >= Self::EVERY {
                    self.flush();
                }
            }
            TurnEvent::Usage(usage) => add_usage(&mut self.usage, usage),
            // Tool calls and results are recorded as they run (see `tools`), the end by `ended`.
            _ => {}
        }
    }

    /// A stored event of the turn: the activity feed shows `what` after the agent's name.
    pub fn record(&self, kind: &'static str, what: String, data: Value) {
        self.tell(TurnNews::Record { kind, what, data });
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let text = std::mem::take(&mut self.pending);
            self.tell(TurnNews::Delta(text));
        }
        self.last_flush = Instant::now();
    }

    /// The turn ended with its answer or an error.
    pub fn ended(&mut self, result: &Result<Answer, ApiError>) {
        match result {
            Ok(answer) => {
                self.usage = answer.completion["usage"].clone();
                self.finish("completed");
            }
            Err(_) => self.finish("failed"),
        }
    }

    fn finish(&mut self, outcome: &'static str) {
        self.flush();
        self.done = true;
        let usage = std::mem::take(&mut self.usage);
        self.tell(TurnNews::Finished { outcome, usage });
    }
}

impl Drop for Mirror {
    /// A turn dropped before its end (its reader went away) was cancelled.
    fn drop(&mut self) {
        if !self.done {
            self.finish("cancelled");
        }
    }
}
