//! An agent's turn: its prompt and defaults, excerpts from its knowledge bases, and the
//! [`Mirror`] of its completion on its squad's live stream. `/v1/chat/completions`, SquadOS
//! chat and the core utilities all answer as an agent through here.

use std::time::Instant;

use serde_json::{json, Value};
use squadron_actors::squad::SquadMsg;
use squadron_actors::store::entity::agent;
use squadron_actors::Core;
use uuid::Uuid;

use crate::error::ApiError;
use crate::gateway::sse::{Seen, Watch};
use crate::state::AppState;

/// An agent's system prompt (or else its SOUL.md) goes first; its defaults fill what the
/// request leaves out.
pub(crate) fn apply_agent(body: &mut Value, agent: &agent::Model) {
    let prompt = agent
        .system_prompt
        .clone()
        .or_else(|| (!agent.soul_md.is_empty()).then(|| agent.soul_md.clone()));
    if let (Some(prompt), Some(messages)) = (prompt, body["messages"].as_array_mut()) {
        messages.insert(0, json!({ "role": "system", "content": prompt }));
    }
    if let Some(Value::Object(params)) = &agent.params {
        for (key, value) in params {
            if body.get(key).is_none_or(Value::is_null) {
                body[key] = value.clone();
            }
        }
    }
}

/// An agent's turn: its prompt and defaults, excerpts from its knowledge bases, and the
/// mirror of its completion. Returns the mirror and the files the excerpts came from.
pub(crate) async fn agent_turn(
    state: &AppState,
    agent: &agent::Model,
    body: &mut Value,
    stream: bool,
) -> Result<(Mirror, Vec<Value>), ApiError> {
    apply_agent(body, agent);
    let sources = crate::api::knowledge::consult::consult(state, agent, body).await?;
    Ok((Mirror::start(&state.core, agent, stream), sources))
}

/// Mirrors an agent's completion to its squad's live subscribers: started, deltas coalesced
/// every [`Mirror::EVERY`], and finished (a stored event) with usage, or cancelled.
pub(crate) struct Mirror {
    core: Core,
    squad_id: Uuid,
    agent: Value,
    completion_id: Uuid,
    pending: String,
    last_flush: Instant,
    pub(crate) usage: Value,
    done: bool,
}

impl Mirror {
    const EVERY: std::time::Duration = std::time::Duration::from_millis(100);

    pub(crate) fn start(core: &Core, agent: &agent::Model, stream: bool) -> Mirror {
        let mirror = Mirror {
            core: core.clone(),
            squad_id: agent.squad_id,
            agent: json!({ "id": agent.id, "name": agent.name }),
            completion_id: Uuid::new_v4(),
            pending: String::new(),
            last_flush: Instant::now(),
            usage: Value::Null,
            done: false,
        };
        mirror.publish("agent.completion.started", json!({ "stream": stream }));
        mirror
    }

    fn publish(&self, kind: &str, mut data: Value) {
        let hub = self.core.hub();
        if !hub.is_watched(self.squad_id) {
            return;
        }
        data["completion_id"] = json!(self.completion_id);
        data["agent"] = self.agent.clone();
        let event = squadron_actors::live::LiveEvent::new(
            self.squad_id,
            None,
            kind,
            &data,
            chrono::Utc::now(),
        );
        hub.publish(std::sync::Arc::new(event));
    }

    pub(crate) fn delta(&mut self, text: &str) {
        self.pending.push_str(text);
        if self.last_flush.elapsed() >= Self::EVERY {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let text = std::mem::take(&mut self.pending);
            self.publish("agent.completion.delta", json!({ "text": text }));
        }
        self.last_flush = Instant::now();
    }

    /// A whole (not streamed) completion: its text as one delta, its usage, finished.
    pub(crate) fn completed(&mut self, completion: &Value) {
        self.delta(
            completion["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or(""),
        );
        self.usage = completion["usage"].clone();
        self.finish("completed");
    }

    pub(crate) fn finish(&mut self, outcome: &str) {
        self.flush();
        self.done = true;
        self.record(
            "agent.completion.finished",
            &format!("answered a chat ({outcome})"),
            json!({ "outcome": outcome, "usage": self.usage }),
        );
    }

    /// Stores an event of this completion on the squad (its activity feed shows `what`,
    /// after the agent's name) and sends it to the squad's subscribers.
    pub(crate) fn record(&self, kind: &'static str, what: &str, mut data: Value) {
        let name = self.agent["name"].as_str().unwrap_or_default();
        data["message"] = json!(format!("{name} {what}"));
        data["by"] = self.agent.clone();
        data["agent"] = self.agent.clone();
        data["completion_id"] = json!(self.completion_id);
        let core = self.core.clone();
        let squad_id = self.squad_id;
        tokio::spawn(async move {
            let _ = core
                .cast_squad(squad_id, SquadMsg::Record(vec![(kind, data)]))
                .await;
        });
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        if !self.done {
            self.finish("cancelled");
        }
    }
}

impl Watch for Mirror {
    fn seen(&mut self, seen: Seen<'_>) {
        match seen {
            Seen::Text(text) => self.delta(text),
            Seen::Usage(usage) => self.usage = usage.clone(),
            Seen::Done => self.finish("completed"),
            Seen::Failed => self.finish("failed"),
        }
    }
}

/// One non-streamed completion of `messages` by the model or agent called `name` (for the
/// core utilities). An agent's prompt and defaults apply, and it is mirrored like any chat.
pub(crate) async fn complete_once(
    state: &AppState,
    org_id: Uuid,
    name: &str,
    messages: Vec<Value>,
) -> Result<Value, ApiError> {
    let (model, agent) = state.gateway.target(org_id, name).await?;
    let mut body = json!({ "model": model.upstream_model, "messages": messages });
    let mut mirror = match &agent {
        Some(agent) => Some(agent_turn(state, agent, &mut body, false).await?.0),
        None => None,
    };
    let upstream = state.gateway.upstream(org_id, model.provider_id).await?;
    let completion = upstream.complete(&body).await?;
    if let Some(mirror) = &mut mirror {
        mirror.completed(&completion);
    }
    Ok(completion)
}
