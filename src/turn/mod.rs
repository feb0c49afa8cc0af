//! The agent-turn engine: every answer an agent gives runs here. `/v1/chat/completions`,
//! SquadOS chat and the core utilities prepare a [`Turn`] and render what it emits.
//!
//! A turn is: the agent's prompt and defaults, excerpts from its knowledge bases, the rounds
//! with its upstream (each round either asked whole or streamed), the agent's MCP tools run
//! between rounds ([`tools`]), usage, and the mirror of it all on the agent's actor
//! ([`mirror`]). It emits [`TurnEvent`]s: a streamed turn sends them as they happen, a whole
//! one returns its [`Answer`] (the `Done` event's payload).

mod mirror;
mod rounds;
pub(crate) mod tools;

use std::sync::Arc;

use serde_json::{json, Value};
use squadron_actors::store::entity::{agent, model};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::error::ApiError;
use crate::gateway::upstream::Upstream;
use crate::gateway::usage::InFlight;
use crate::state::AppState;
use mirror::Mirror;
use tools::Toolbox;

/// What a turn emits, in this order: `Sources` once the upstream has taken the first round's
/// request; then, as they happen, the model's text, its calls of the agent's tools and their
/// results, and each round's usage; last, `Done` or `Failed`.
#[derive(Debug)]
pub(crate) enum TurnEvent {
    /// The files the agent's knowledge excerpts came from, best first (maybe none).
    Sources(Vec<Value>),
    /// Text the model wrote.
    Delta(String),
    /// The model called the agent's tools: its assistant message with `tool_calls`.
    ToolCalls(Value),
    /// A tool's result (or failure), as the `tool` message the model is given.
    ToolResult(Value),
    /// One round's usage.
    Usage(Value),
    Done(Answer),
    Failed(ApiError),
}

/// A turn's answer: the model's last completion (its usage summed over every round), the
/// messages that led to it (the tool calls and results, in order) and the files the
/// knowledge excerpts came from.
#[derive(Debug)]
pub(crate) struct Answer {
    pub completion: Value,
    pub transcript: Vec<Value>,
    pub sources: Vec<Value>,
}

impl Answer {
    /// The answer's text.
    pub fn content(&self) -> &str {
        self.completion["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or("")
    }
}

/// What a streamed turn does when its reader goes away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unread {
    /// Stop at once; the upstream request goes with it (the OpenAI gateway).
    Stop,
    /// Answer to the end all the same (a SquadOS reply is kept in its conversation).
    Finish,
}

/// An agent's turn, ready to run.
pub(crate) struct Turn {
    state: AppState,
    upstream: Arc<Upstream>,
    toolbox: Option<Toolbox>,
    /// The upstream request: model, prompt, defaults and excerpts set.
    body: Value,
    sources: Vec<Value>,
    mirror: Mirror,
}

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

impl Turn {
    /// Prepares `agent`'s turn on `body` (a chat request: `messages` and any parameters),
    /// answered by `model`: its prompt and defaults, its knowledge, its tools, its upstream.
    /// The agent's actor learns that it began (`stream`: read as it comes).
    pub async fn prepare(
        state: &AppState,
        agent: &agent::Model,
        model: &model::Model,
        mut body: Value,
        stream: bool,
    ) -> Result<Turn, ApiError> {
        apply_agent(&mut body, agent);
        let sources = crate::api::knowledge::consult::consult(state, agent, &mut body).await?;
        let upstream = state
            .gateway
            .upstream(agent.org_id, model.provider_id)
            .await?;
        body["model"] = Value::String(model.upstream_model.clone());
        let toolbox = Toolbox::of(state, agent).await?;
        let mirror = Mirror::start(&state.core, agent, stream).await?;
        Ok(Turn {
            state: state.clone(),
            upstream,
            toolbox,
            body,
            sources,
            mirror,
        })
    }

    /// Runs the turn with every round asked whole.
    pub async fn answer(self) -> Result<Answer, ApiError> {
        let (mut emit, rounds) = self.emitting(None);
        let result = rounds.run(false, &mut emit).await;
        emit.mirror.ended(&result);
        result
    }

    /// Runs the turn with every round streamed; its events as they come. Returns once the
    /// upstream has taken the first round's request (the first event is `Sources`), so that
    /// a refusal (a 429 with its `Retry-After`, say) is the caller's error, not an event.
    pub async fn stream(self, unread: Unread) -> Result<Events, ApiError> {
        let (to, mut rest) = mpsc::channel(64);
        let (mut emit, rounds) = self.emitting(Some(to.clone()));
        tokio::spawn(async move {
            let _in_flight = InFlight::count();
            let run = rounds.run(true, &mut emit);
            let result = match unread {
                Unread::Finish => run.await,
                Unread::Stop => tokio::select! {
                    result = run => result,
                    // Dropping the turn cancels it: the mirror says so.
                    () = to.closed() => return,
                },
            };
            emit.mirror.ended(&result);
            let last = match result {
                Ok(answer) => TurnEvent::Done(answer),
                Err(err) => TurnEvent::Failed(err),
            };
            let _ = to.send(last).await;
        });
        match rest.recv().await {
            Some(TurnEvent::Failed(refused)) => Err(refused),
            Some(first) => Ok(Events {
                first: Some(first),
                rest,
            }),
            None => Err(ApiError::Internal(anyhow::anyhow!(
                "an agent's turn ended before it began"
            ))),
        }
    }

    /// Splits the turn into where its events go (the mirror, and `to`) and what runs.
    fn emitting(self, to: Option<mpsc::Sender<TurnEvent>>) -> (Emit, Rounds) {
        let Turn {
            state,
            upstream,
            toolbox,
            body,
            sources,
            mirror,
        } = self;
        let emit = Emit { mirror, to };
        let rounds = Rounds {
            state,
            upstream,
            toolbox,
            body,
            sources,
        };
        (emit, rounds)
    }
}

/// What runs of a turn: its rounds with the upstream and the tool calls between them.
struct Rounds {
    state: AppState,
    upstream: Arc<Upstream>,
    toolbox: Option<Toolbox>,
    body: Value,
    sources: Vec<Value>,
}

/// Where a turn's events go: always to its mirror; to its reader if it streams (a reader that
/// went away is no error here: [`Unread`] decides).
struct Emit {
    mirror: Mirror,
    to: Option<mpsc::Sender<TurnEvent>>,
}

impl Emit {
    async fn send(&mut self, event: TurnEvent) {
        self.mirror.see(&event);
        if let Some(to) = &self.to {
            let _ = to.send(event).await;
        }
    }
}

/// A streamed turn's events, the last one `Done` or `Failed`.
pub(crate) struct Events {
    first: Option<TurnEvent>,
    rest: mpsc::Receiver<TurnEvent>,
}

impl Events {
    pub async fn next(&mut self) -> Option<TurnEvent> {
        match self.first.take() {
            Some(first) => Some(first),
            None => self.rest.recv().await,
        }
    }
}

/// Adds a round's `usage` to a turn's `total`.
pub(crate) fn add_usage(total: &mut Value, usage: &Value) {
    if usage.is_null() {
        return;
    }
    if total.is_null() {
        *total = json!({ "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0 });
    }
    for field in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        let sum = total[field].as_u64().unwrap_or(0) + usage[field].as_u64().unwrap_or(0);
        total[field] = json!(sum);
    }
}

/// One whole completion of `messages` by the model or agent called `name` (for the core
/// utilities): an agent answers with a turn of its own.
pub(crate) async fn complete_once(
    state: &AppState,
    org_id: Uuid,
    name: &str,
    messages: Vec<Value>,
) -> Result<Value, ApiError> {
    let (model, agent) = state.gateway.target(org_id, name).await?;
    let body = json!({ "model": model.upstream_model, "messages": messages });
    match &agent {
        Some(agent) => {
            let turn = Turn::prepare(state, agent, &model, body, false).await?;
            Ok(turn.answer().await?.completion)
        }
        None => {
            let upstream = state.gateway.upstream(org_id, model.provider_id).await?;
            upstream.complete(&body).await
        }
    }
}
