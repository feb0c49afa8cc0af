//! `POST /v1/chat/completions`, forwarded to the model's provider. The request passes through
//! untouched but for `model` (and, when streaming, usage is always asked for so it can be
//! recorded; the client sees the usage chunk only if it asked). A client that goes away
//! drops the upstream request with it.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use memchr::memmem::Finder;
use serde_json::{json, Value};
use squadron_actors::squad::SquadMsg;
use squadron_actors::store::{entity::agent, entity::model, gateway};
use uuid::Uuid;

use super::tool_calls::{self, Toolbox};
use super::upstream::Upstream;
use crate::api::extract::Json;
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::state::AppState;

/// The account's model called `name`, of `kind`.
pub async fn model_of(
    state: &AppState,
    org_id: Uuid,
    name: &str,
    kind: &str,
) -> Result<Arc<model::Model>, ApiError> {
    state
        .routes
        .model(state, org_id, name)
        .await?
        .filter(|m| m.kind == kind)
        .ok_or_else(|| {
            ApiError::NotFound(format!("the model {name:?} does not exist in this account"))
        })
}

/// Records tokens from a response's `usage`, wherever it arrives. Metrics are the operator's:
/// no label names an account's model.
pub fn record_usage(usage: &Value) {
    for (field, direction) in [("prompt_tokens", "in"), ("completion_tokens", "out")] {
        if let Some(n) = usage[field].as_u64() {
            metrics::counter!("squadron_gateway_tokens_total", "direction" => direction)
                .increment(n);
        }
    }
}

fn count(status: StatusCode) {
    metrics::counter!("squadron_gateway_requests_total", "status" => status.as_u16().to_string())
        .increment(1);
}

/// The body's `model`, as a string: every gateway call needs one.
pub fn requested_model(body: &Value) -> Result<String, ApiError> {
    if !body.is_object() {
        return Err(ApiError::Validation(
            "the request body must be a JSON object".into(),
        ));
    }
    body["model"]
        .as_str()
        .filter(|m| !m.trim().is_empty())
        .map(|m| m.trim().to_owned())
        .ok_or_else(|| ApiError::Validation("model is required".into()))
}

/// What a request's `model` names: one of the account's chat models, or one of its agents
/// (returned too: it answers with its own model, system prompt and defaults).
async fn target(
    state: &AppState,
    org_id: Uuid,
    name: &str,
) -> Result<(Arc<model::Model>, Option<agent::Model>), ApiError> {
    // Models first, from the cache: they are the common case, and one namespace means the
    // order cannot change the answer.
    let missing =
        || ApiError::NotFound(format!("the model {name:?} does not exist in this account"));
    if let Some(model) = state.routes.model(state, org_id, name).await? {
        return if model.kind == "chat" {
            Ok((model, None))
        } else {
            Err(missing())
        };
    }
    let agent = gateway::agent_by_name(state.db(), org_id, name)
        .await?
        .ok_or_else(missing)?;
    let model_id = agent.model_id.ok_or_else(missing)?;
    let model = gateway::model_by_id(state.db(), org_id, model_id)
        .await?
        .ok_or_else(missing)?;
    Ok((Arc::new(model), Some(agent)))
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
    Ok((Mirror::start(state, agent, stream), sources))
}

/// Mirrors an agent's completion to its squad's live subscribers: started, deltas coalesced
/// every [`Mirror::EVERY`], and finished (a stored event) with usage, or cancelled.
pub(crate) struct Mirror {
    state: AppState,
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

    pub(crate) fn start(state: &AppState, agent: &agent::Model, stream: bool) -> Mirror {
        let mirror = Mirror {
            state: state.clone(),
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
        let hub = self.state.core.hub();
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

    /// One relayed SSE frame: its chunk's text is a delta; `[DONE]` finishes the completion.
    fn frame(&mut self, frame: &[u8]) {
        let Some(data) = frame_data(frame) else {
            return;
        };
        if data.trim() == "[DONE]" {
            self.finish("completed");
        } else if let Ok(chunk) = serde_json::from_str::<ChunkPeek>(&data) {
            let text = chunk.choices.as_deref().and_then(|c| c.first());
            if let Some(text) = text
                .and_then(|c| c.delta.as_ref())
                .and_then(|d| d.content.as_deref())
            {
                self.delta(text);
            }
        }
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
        let core = self.state.core.clone();
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

/// One non-streamed completion of `messages` by the model or agent called `name` (for the
/// core utilities). An agent's prompt and defaults apply, and it is mirrored like any chat.
pub(crate) async fn complete_once(
    state: &AppState,
    org_id: Uuid,
    name: &str,
    messages: Vec<Value>,
) -> Result<Value, ApiError> {
    let (model, agent) = target(state, org_id, name).await?;
    let mut body = json!({ "model": model.upstream_model, "messages": messages });
    let mut mirror = match &agent {
        Some(agent) => Some(agent_turn(state, agent, &mut body, false).await?.0),
        None => None,
    };
    let upstream = Upstream::load(state, org_id, model.provider_id).await?;
    let completion = upstream.complete(state, &body).await?;
    if let Some(mirror) = &mut mirror {
        mirror.completed(&completion);
    }
    Ok(completion)
}

/// Create a chat completion (OpenAI's request and response; `stream: true` for SSE chunks).
/// `model` names one of the account's models or agents.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "gateway", request_body = super::wire::ChatRequest,
    responses((status = 200, description = "a chat completion, or SSE chunks ending with [DONE]", content(
            (super::wire::ChatCompletion = "application/json"), (String = "text/event-stream"))),
        (status = 400), (status = 401), (status = 404), (status = 429), (status = 502), (status = 504)))]
pub async fn completions(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(mut body): Json<Value>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let name = requested_model(&body)?;
    if !body["messages"].is_array() {
        return Err(ApiError::Validation("messages must be an array".into()));
    }
    let (model, agent) = target(&state, caller.org_id, &name).await?;
    let stream = body["stream"].as_bool() == Some(true);
    let (mut mirror, sources) = match &agent {
        Some(agent) => {
            let (mirror, sources) = agent_turn(&state, agent, &mut body, stream).await?;
            (Some(mirror), sources)
        }
        None => (None, Vec::new()),
    };
    let upstream = Upstream::load(&state, caller.org_id, model.provider_id).await?;
    body["model"] = Value::String(model.upstream_model.clone());
    let wants_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
    let toolbox = match &agent {
        Some(agent) => Toolbox::of(&state, agent).await?,
        None => None,
    };
    // An agent with tools: its turn runs the tool calls, and takes over its mirror (every
    // agent's turn has one).
    if let Some(toolbox) = toolbox {
        if let Some(mirror) = mirror.take() {
            count(StatusCode::OK);
            let turn = tool_calls::AgentTurn {
                state,
                toolbox,
                upstream,
                name,
                body,
                mirror,
            };
            return turn.respond(stream, wants_usage, sources).await;
        }
    }
    if stream {
        body["stream_options"] = json!({ "include_usage": true });
    }
    // What the gateway itself adds before the provider is asked: model and agent lookups,
    // secrets, the request's rewriting. (Auth and limits run before the handler: not counted.)
    metrics::histogram!("squadron_gateway_overhead_seconds")
        .record(arrived.elapsed().as_secs_f64());
    let started = Instant::now();
    let request = upstream
        .request(&state, reqwest::Method::POST, "chat/completions")
        .json(&body);
    let response = match upstream.send(request).await {
        Ok(response) => response,
        Err(err) => {
            if let ApiError::Upstream { status, .. } = &err {
                count(*status);
            }
            return Err(err);
        }
    };
    metrics::histogram!("squadron_gateway_upstream_seconds")
        .record(started.elapsed().as_secs_f64());
    count(StatusCode::OK);
    if !stream {
        let completion = upstream
            .json(response, crate::outbound::MAX_ANSWER_BYTES)
            .await?;
        record_usage(&completion["usage"]);
        if let Some(mirror) = &mut mirror {
            mirror.completed(&completion);
        }
        let mut completion = completion;
        if !sources.is_empty() {
            completion["sources"] = Value::Array(sources);
        }
        return Ok(axum::Json(completion).into_response());
    }
    let relay_options = Relay {
        wants_usage,
        started,
        mirror,
        sources,
    };
    Ok(relay(name, upstream.name.clone(), response, relay_options))
}

/// What the relay reads of a chunk: its delta's text (for an agent's mirror) and its usage.
/// Everything else is skipped unallocated; the chunk itself is relayed as it came.
#[derive(serde::Deserialize)]
struct ChunkPeek<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<ChoicePeek<'a>>>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(serde::Deserialize)]
struct ChoicePeek<'a> {
    #[serde(default, borrow)]
    delta: Option<DeltaPeek<'a>>,
}

#[derive(serde::Deserialize)]
struct DeltaPeek<'a> {
    #[serde(default, borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
}

/// How a stream is relayed.
struct Relay {
    /// Whether the client asked for the usage chunk.
    wants_usage: bool,
    /// When the upstream was asked.
    started: Instant,
    /// An agent's completion, mirrored to its squad.
    mirror: Option<Mirror>,
    /// The files an agent's knowledge excerpts came from: a first chunk names them.
    sources: Vec<Value>,
}

/// The frame that ends a stream which failed after it began: an OpenAI error object.
pub(crate) fn error_frame(message: &str) -> String {
    let error = json!({ "error": {
        "message": message, "type": "server_error", "param": null, "code": "upstream_error",
    }});
    format!("data: {error}\n\n")
}

/// An SSE response of chat completion chunks.
pub(crate) fn sse(body: Body) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .expect("static headers are valid")
}

/// The chunk that names the files an agent's knowledge excerpts came from. Like the usage
/// chunk, it has no choices: clients that know it read it, the others skip it.
pub(crate) fn sources_chunk(model: &str, sources: Vec<Value>) -> String {
    let chunk = json!({
        "id": format!("chatcmpl-sources-{}", Uuid::new_v4().simple()),
        "object": "chat.completion.chunk",
        "created": chrono::Utc::now().timestamp(),
        "model": model,
        "choices": [],
        "sources": sources,
    });
    format!("data: {chunk}\n\n")
}

/// Relays the upstream's stream frame by frame as it came, without parsing it: only the usage
/// frame is read (to record it, and to drop it unless the client asked for it), and, for an
/// agent, each frame's text is mirrored to its squad. Frames end with a blank line, `\n\n` or
/// `\r\n\r\n`. A broken upstream stream ends ours with an OpenAI error object.
fn relay(model: String, provider: String, response: reqwest::Response, relay: Relay) -> Response {
    let Relay {
        wants_usage,
        started,
        mut mirror,
        sources,
    } = relay;
    let mut body = response.bytes_stream();
    let chunks = async_stream::stream! {
        let _in_flight = InFlight::new();
        let mut counted = UsageOnce::default();
        if !sources.is_empty() {
            yield Ok::<Bytes, std::io::Error>(Bytes::from(sources_chunk(&model, sources)));
        }
        let mut first = true;
        let mut pending = bytes::BytesMut::new();
        while let Some(read) = body.next().await {
            let read = match read {
                Ok(read) => read,
                Err(err) => {
                    if let Some(mirror) = &mut mirror {
                        mirror.finish("failed");
                    }
                    let error = error_frame(&Upstream::broke_off(&provider, err));
                    yield Ok::<Bytes, std::io::Error>(Bytes::from(error));
                    break;
                }
            };
            if first {
                first = false;
                metrics::histogram!("squadron_gateway_time_to_first_token_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
            // The common case: the read is whole frames with no usage in them, and no agent
            // reads their text. It goes out as it came, uncopied.
            if mirror.is_none() && pending.is_empty() && ends_a_frame(&read) && !has_usage(&read) {
                yield Ok(read);
                continue;
            }
            pending.extend_from_slice(&read);
            // The complete frames of this read go out in one write; the rest waits.
            let mut out = bytes::BytesMut::new();
            while let Some(end) = frame_end(&pending) {
                let frame = pending.split_to(end);
                if let Some(mirror) = &mut mirror {
                    mirror.frame(&frame);
                }
                if let Some((usage, has_choices)) = usage_of(&frame) {
                    if let Some(mirror) = &mut mirror {
                        mirror.usage = usage.clone();
                    }
                    counted.usage = usage;
                    if !wants_usage && !has_choices {
                        continue;
                    }
                }
                if out.is_empty() {
                    out = frame;
                } else {
                    out.unsplit(frame);
                }
            }
            if !out.is_empty() {
                yield Ok(out.freeze());
            }
        }
        if !pending.is_empty() {
            yield Ok(pending.freeze());
        }
    };
    sse(Body::from_stream(chunks))
}

/// Searchers for what the relay looks for in every frame, built once.
static BLANK_LINE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\n"));
static CRLF_BLANK_LINE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\r\n\r\n"));
static USAGE_FIELD: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\""));

/// Where the first complete SSE frame of `buffer` ends (after its blank line), if one has.
fn frame_end(buffer: &[u8]) -> Option<usize> {
    let lf = BLANK_LINE.find(buffer).map(|at| at + 2);
    // A CRLF frame end can come first only if it starts before the LF one ends.
    let before = lf.unwrap_or(buffer.len());
    let crlf = CRLF_BLANK_LINE.find(&buffer[..before]).map(|at| at + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A frame's data: its `data:` lines joined (`None` if it is not UTF-8).
fn frame_data(frame: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(frame).ok()?;
    Some(
        text.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect(),
    )
}

/// Whether `bytes` end where a frame does.
fn ends_a_frame(bytes: &[u8]) -> bool {
    bytes.ends_with(b"\n\n") || bytes.ends_with(b"\r\n\r\n")
}

/// Whether any chunk in `bytes` carries usage: names `"usage"` (in a chunk's text the quotes
/// would be escaped) with a value other than `null`, which providers that report usage on the
/// last chunk send on every other one.
fn has_usage(bytes: &[u8]) -> bool {
    USAGE_FIELD.find_iter(bytes).any(|at| {
        let value = bytes[at + b"\"usage\"".len()..].trim_ascii_start();
        let value = value.strip_prefix(b":").unwrap_or(value).trim_ascii_start();
        !value.starts_with(b"null")
    })
}

/// The usage a frame's chunk carries, and whether it has choices too. Only a frame that
/// [`has_usage`] is parsed.
fn usage_of(frame: &[u8]) -> Option<(Value, bool)> {
    if !has_usage(frame) {
        return None;
    }
    let data = frame_data(frame)?;
    let chunk: ChunkPeek = serde_json::from_str(&data).ok()?;
    let usage = chunk.usage.filter(Value::is_object)?;
    Some((usage, chunk.choices.is_some_and(|c| !c.is_empty())))
}

/// A stream's usage, recorded once when the stream ends (however it ends): the last usage a
/// chunk carried, so a provider that sends running totals is not counted twice.
#[derive(Default)]
struct UsageOnce {
    usage: Value,
}

impl Drop for UsageOnce {
    fn drop(&mut self) {
        record_usage(&self.usage);
    }
}

/// Counts a stream in `squadron_gateway_streams_in_flight` while held.
struct InFlight;

impl InFlight {
    fn new() -> InFlight {
        metrics::gauge!("squadron_gateway_streams_in_flight").increment(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("squadron_gateway_streams_in_flight").decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_end_at_a_blank_line_of_either_kind() {
        assert!(ends_a_frame(b"data: {}\n\n") && ends_a_frame(b"data: {}\r\n\r\n"));
        assert!(!ends_a_frame(b"data: {}\n") && !ends_a_frame(b"data: {}\r\n"));
        assert_eq!(frame_end(b"data: {}\n\ndata: x"), Some(10));
        assert_eq!(frame_end(b"data: {}\r\n\r\ndata: x\n\n"), Some(12));
        assert_eq!(frame_end(b"data: {}\n"), None);
    }

    #[test]
    fn only_chunks_with_usage_are_read_for_it() {
        let usage_only = br#"data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}

"#;
        let (usage, has_choices) = usage_of(usage_only).unwrap();
        assert_eq!(usage["completion_tokens"], 4);
        assert!(!has_choices, "dropped unless the client asked for usage");
        let last_content =
            br#"data: {"choices":[{"delta":{"content":"hi"}}],"usage":{"prompt_tokens":1}}

"#;
        assert!(usage_of(last_content).unwrap().1, "relayed: it has content");
        assert!(usage_of(br#"data: {"choices":[],"usage":null}"#).is_none());
        assert!(!has_usage(
            br#"data: {"choices":[{"delta":{"content":"hi"}}],"usage" : null}"#
        ));
        // A read of two frames: the second one's usage is seen past the first's null.
        let two = b"data: {\"choices\":[],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n";
        assert!(has_usage(two));
        // The word in a chunk's text is escaped, so it is not taken for the field.
        assert!(usage_of(br#"data: {"choices":[{"delta":{"content":"\"usage\""}}]}"#).is_none());
    }
}
