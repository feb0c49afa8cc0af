//! An agent's MCP tools in a chat turn. The model is offered the tools the agent may use (as
//! OpenAI functions named `server__tool`); the calls it proposes run on their MCP servers and
//! their results go back to it, until it answers. The loop is bounded: at most
//! `--tool-max-steps` rounds of calls (then the model must answer without tools), each call
//! within `--tool-timeout-secs`, the whole turn within four times that. A call that fails
//! (server down or dying mid-call, tool error, timeout) is given to the model as the tool's
//! result, so it can say so or try something else.
//!
//! A streaming client gets every round streamed from the upstream: the model's text as it
//! writes it, while the pieces of its tool calls are put together here; the rounds of tool
//! calls in between send the client nothing.
//!
//! Each call and result is a stored event of the agent's squad (`agent.tool.called`,
//! `agent.tool.result`); SquadOS conversations keep them as messages too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use eventsource_stream::Eventsource;
use futures::StreamExt;

use serde_json::{json, Value};
use squadron_actors::store::entity::agent;
use squadron_actors::store::tools::{self as store_tools, ALL_TOOLS};
use uuid::Uuid;

use crate::error::ApiError;
use crate::gateway::sse::{self, error_frame, sources_chunk};
use crate::gateway::upstream::Upstream;
use crate::gateway::usage::record_usage;
use crate::state::AppState;
use crate::turn::Mirror;

/// How much of a tool's result goes to the model (and into events, less).
const MAX_RESULT_CHARS: usize = 16_000;
const EVENT_CHARS: usize = 1_000;

/// A tool the agent may use, as offered to the model.
struct Granted {
    server_id: Uuid,
    server: String,
    tool: String,
}

/// The tools an agent may use now.
pub struct Toolbox {
    /// OpenAI `tools` entries.
    functions: Vec<Value>,
    by_function: HashMap<String, Granted>,
}

/// `server__tool` in the characters and length OpenAI allows a function name.
fn function_name(server: &str, tool: &str) -> String {
    format!("{server}__{tool}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

impl Toolbox {
    /// The agent's tools from its servers' last lists; `None` when it has none.
    pub async fn of(state: &AppState, agent: &agent::Model) -> Result<Option<Toolbox>, ApiError> {
        let grants = store_tools::agent_tools(state.db(), agent.id).await?;
        if grants.is_empty() {
            return Ok(None);
        }
        let mut toolbox = Toolbox {
            functions: Vec::new(),
            by_function: HashMap::new(),
        };
        let mut statuses = HashMap::new();
        for (grant, server) in grants {
            if let std::collections::hash_map::Entry::Vacant(entry) = statuses.entry(server.id) {
                entry.insert(state.tools.status(server.id).await);
            }
            for tool in statuses[&server.id].tools.iter() {
                if grant.tool != ALL_TOOLS && grant.tool != tool.name {
                    continue;
                }
                let function = function_name(&server.name, &tool.name);
                if toolbox.by_function.contains_key(&function) {
                    continue;
                }
                toolbox.functions.push(json!({
                    "type": "function",
                    "function": {
                        "name": function,
                        "description": tool.description.as_deref().unwrap_or_default(),
                        "parameters": Value::Object((*tool.input_schema).clone()),
                    }
                }));
                toolbox.by_function.insert(
                    function,
                    Granted {
                        server_id: server.id,
                        server: server.name.clone(),
                        tool: tool.name.to_string(),
                    },
                );
            }
        }
        Ok(Some(toolbox))
    }
}

/// A finished turn: the model's answer (usage summed over every round) and the messages that
/// led to it (assistant tool calls and tool results, in order).
pub struct Turn {
    pub completion: Value,
    pub transcript: Vec<Value>,
}

fn add_usage(total: &mut Value, usage: &Value) {
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

/// Where a streamed turn goes: SSE frames for the client as they come; and, until the first
/// round's upstream answers, the handler waiting to learn whether it took the request (so
/// that its refusal, a 429 say, keeps its status and `Retry-After`).
pub(crate) struct Streaming {
    sink: tokio::sync::mpsc::Sender<Bytes>,
    started: Option<tokio::sync::oneshot::Sender<Result<(), ApiError>>>,
}

/// An agent's chat turn with tools, for `/v1/chat/completions`.
pub(crate) struct AgentTurn {
    pub state: AppState,
    pub toolbox: Toolbox,
    pub upstream: Arc<Upstream>,
    /// The model's name as the client gave it (the agent's), for the chunks it is sent.
    pub name: String,
    /// The upstream request: model and messages set.
    pub body: Value,
    pub mirror: Mirror,
}

impl AgentTurn {
    /// The whole completion as JSON; or, when `stream`, SSE chunks: the answer's text as the
    /// model writes it (tool rounds in between send nothing), then the finish, the usage if
    /// `wants_usage`, and `[DONE]`. The response waits for the first round's upstream to take
    /// the request, so a refusal is an HTTP error; a failure after that ends the stream with
    /// an error object.
    pub(crate) async fn respond(
        mut self,
        stream: bool,
        wants_usage: bool,
        sources: Vec<Value>,
    ) -> Result<Response, ApiError> {
        if !stream {
            let turn = run(
                &self.state,
                &self.toolbox,
                &self.upstream,
                self.body,
                &mut self.mirror,
                None,
            )
            .await?;
            self.mirror.completed(&turn.completion);
            let mut completion = turn.completion;
            if !sources.is_empty() {
                completion["sources"] = Value::Array(sources);
            }
            return Ok(axum::Json(completion).into_response());
        }
        let (sink, frames) = tokio::sync::mpsc::channel::<Bytes>(64);
        let (started, taken) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let AgentTurn {
                state,
                toolbox,
                upstream,
                name,
                body,
                mut mirror,
            } = self;
            if !sources.is_empty() {
                let _ = sink.send(Bytes::from(sources_chunk(&name, sources))).await;
            }
            let gone = sink.clone();
            let mut streaming = Streaming {
                sink,
                started: Some(started),
            };
            let turn = tokio::select! {
                turn = run(&state, &toolbox, &upstream, body, &mut mirror, Some(&mut streaming)) => turn,
                // The client went away: stop at once (the upstream request goes with it).
                () = gone.closed() => return,
            };
            let mut out = String::new();
            match turn {
                Ok(turn) => {
                    mirror.usage = turn.completion["usage"].clone();
                    mirror.finish("completed");
                    for chunk in tail_chunks(&turn.completion, wants_usage) {
                        out.push_str(&format!("data: {chunk}\n\n"));
                    }
                    out.push_str("data: [DONE]\n\n");
                }
                Err(err) => {
                    mirror.finish("failed");
                    match streaming.started.take() {
                        // Refused before the stream began: the handler answers with it.
                        Some(started) => {
                            let _ = started.send(Err(err));
                            return;
                        }
                        None => out.push_str(&error_frame(&err.to_string())),
                    }
                }
            }
            let _ = streaming.sink.send(Bytes::from(out)).await;
        });
        match taken.await {
            Ok(Ok(())) => {
                let frames = tokio_stream::wrappers::ReceiverStream::new(frames)
                    .map(Ok::<Bytes, std::io::Error>);
                Ok(sse::response(Body::from_stream(frames)))
            }
            Ok(Err(refused)) => Err(refused),
            Err(_) => Err(ApiError::Internal(anyhow::anyhow!(
                "an agent's turn with tools ended before it began"
            ))),
        }
    }
}

/// Runs the turn. `body` is the upstream request (model and messages set). Without
/// `streaming` each round is asked for whole; with it, each round streams and its text goes to
/// the client (and the mirror) as it comes, while its tool calls are gathered.
pub(crate) async fn run(
    state: &AppState,
    toolbox: &Toolbox,
    upstream: &Upstream,
    body: Value,
    mirror: &mut Mirror,
    mut streaming: Option<&mut Streaming>,
) -> Result<Turn, ApiError> {
    let mut body = body;
    if let Some(object) = body.as_object_mut() {
        object.remove("stream");
        object.remove("stream_options");
    }
    if streaming.is_some() {
        body["stream"] = json!(true);
        body["stream_options"] = json!({ "include_usage": true });
    }
    // The client's own tools (if any) stay; ours join them.
    let mut offered = body["tools"].as_array().cloned().unwrap_or_default();
    offered.extend(toolbox.functions.iter().cloned());
    if !offered.is_empty() {
        body["tools"] = Value::Array(offered);
    }
    let per_call = Duration::from_secs(state.config.tool_timeout_secs.max(1));
    let deadline = Instant::now() + per_call * 4;
    let mut transcript = Vec::new();
    let mut usage = Value::Null;
    let mut steps = 0;
    loop {
        if steps >= state.config.tool_max_steps || Instant::now() >= deadline {
            // Out of steps or time: the model answers with what it has.
            body["tool_choice"] = json!("none");
        }
        let mut completion = match streaming.as_deref_mut() {
            Some(streaming) => streamed_round(upstream, &body, streaming, mirror).await?,
            None => upstream.complete(&body).await?,
        };
        add_usage(&mut usage, &completion["usage"]);
        let message = completion["choices"][0]["message"].clone();
        let calls = message["tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        // An answer, or calls of tools that are not ours (the client's: it runs them).
        let ours = !calls.is_empty()
            && calls.iter().all(|c| {
                c["function"]["name"]
                    .as_str()
                    .is_some_and(|f| toolbox.by_function.contains_key(f))
            });
        if !ours || body["tool_choice"] == "none" {
            completion["usage"] = usage;
            return Ok(Turn {
                completion,
                transcript,
            });
        }
        steps += 1;
        let assistant = json!({
            "role": "assistant",
            "content": message["content"],
            "tool_calls": calls,
        });
        body["messages"]
            .as_array_mut()
            .ok_or_else(|| ApiError::Validation("messages must be an array".into()))?
            .push(assistant.clone());
        transcript.push(assistant);
        let left = deadline.saturating_duration_since(Instant::now());
        let mirror = &*mirror;
        let results = futures::future::join_all(
            calls
                .iter()
                .map(|call| one_call(state, toolbox, call, per_call.min(left), mirror)),
        )
        .await;
        for result in results {
            body["messages"]
                .as_array_mut()
                .expect("checked above")
                .push(result.clone());
            transcript.push(result);
        }
    }
}

/// One streamed round: its text goes to the client and the mirror chunk by chunk; its tool calls
/// (sent in pieces) are put together. Returns the round as a whole completion.
async fn streamed_round(
    upstream: &Upstream,
    body: &Value,
    streaming: &mut Streaming,
    mirror: &mut Mirror,
) -> Result<Value, ApiError> {
    let request = upstream
        .request(reqwest::Method::POST, "chat/completions")
        .json(body);
    let response = upstream.send(request).await?;
    if let Some(started) = streaming.started.take() {
        let _ = started.send(Ok(()));
    }
    let mut events = response.bytes_stream().eventsource();
    let (mut head, mut content, mut calls) = (Value::Null, String::new(), Vec::<Value>::new());
    let (mut finish, mut usage) = (Value::Null, Value::Null);
    while let Some(event) = events.next().await {
        let event = event.map_err(|err| ApiError::Upstream {
            status: axum::http::StatusCode::BAD_GATEWAY,
            message: Upstream::broke_off(&upstream.name, err),
            retry_after: None,
        })?;
        if event.data.trim() == "[DONE]" {
            break;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(&event.data) else {
            continue;
        };
        if head.is_null() {
            head =
                json!({ "id": chunk["id"], "created": chunk["created"], "model": chunk["model"] });
        }
        if chunk["usage"].is_object() {
            usage = chunk["usage"].clone();
        }
        let choice = &chunk["choices"][0];
        if let Some(text) = choice["delta"]["content"]
            .as_str()
            .filter(|t| !t.is_empty())
        {
            content.push_str(text);
            mirror.delta(text);
            let out = json!({
                "id": head["id"], "object": "chat.completion.chunk", "created": head["created"],
                "model": head["model"],
                "choices": [{ "index": 0, "delta": { "content": text }, "finish_reason": null }],
            });
            // A client that went away ends the turn (see `respond`); nothing to do here.
            let _ = streaming
                .sink
                .send(Bytes::from(format!("data: {out}\n\n")))
                .await;
        }
        for piece in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = piece["index"].as_u64().unwrap_or(0) as usize;
            if index >= 128 {
                continue;
            }
            while calls.len() <= index {
                calls.push(json!({ "id": "", "type": "function", "function": { "name": "", "arguments": "" } }));
            }
            let call = &mut calls[index];
            // The id and name come whole (some providers repeat them); the arguments in pieces.
            for at in ["/id", "/function/name"] {
                let part = piece
                    .pointer(at)
                    .and_then(Value::as_str)
                    .filter(|p| !p.is_empty());
                if let (Some(part), Some(whole)) = (part, call.pointer_mut(at)) {
                    if whole.as_str().is_some_and(str::is_empty) {
                        *whole = json!(part);
                    }
                }
            }
            let part = piece["function"]["arguments"].as_str();
            if let (Some(part), Some(Value::String(whole))) =
                (part, call.pointer_mut("/function/arguments"))
            {
                whole.push_str(part);
            }
        }
        if !choice["finish_reason"].is_null() {
            finish = choice["finish_reason"].clone();
        }
    }
    record_usage(&usage);
    let mut message =
        json!({ "role": "assistant", "content": (!content.is_empty()).then_some(content) });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    Ok(json!({
        "id": head["id"], "object": "chat.completion", "created": head["created"], "model": head["model"],
        "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
        "usage": usage,
    }))
}

/// Runs one proposed call; its result (or failure) as a `tool` message.
async fn one_call(
    state: &AppState,
    toolbox: &Toolbox,
    call: &Value,
    timeout: Duration,
    mirror: &Mirror,
) -> Value {
    let id = call["id"].as_str().unwrap_or_default().to_owned();
    let function = call["function"]["name"].as_str().unwrap_or_default();
    let granted = &toolbox.by_function[function];
    let raw = call["function"]["arguments"].as_str().unwrap_or("{}");
    let event = |extra: Value| {
        let mut event = json!({ "call_id": id, "server": granted.server, "tool": granted.tool });
        if let (Some(event), Value::Object(extra)) = (event.as_object_mut(), extra) {
            event.extend(extra);
        }
        event
    };
    mirror.record(
        "agent.tool.called",
        &format!("called {}/{}", granted.server, granted.tool),
        event(json!({ "arguments": clip(raw, EVENT_CHARS) })),
    );
    let started = Instant::now();
    let (content, is_error) =
        match serde_json::from_str::<Value>(if raw.trim().is_empty() { "{}" } else { raw }) {
            Ok(Value::Object(arguments)) => {
                match state
                    .tools
                    .call(granted.server_id, &granted.tool, arguments, timeout)
                    .await
                {
                    Ok(output) => (output.text, output.is_error),
                    Err(err) => (format!("error: {err}"), true),
                }
            }
            _ => (
                "error: the arguments must be a JSON object".to_owned(),
                true,
            ),
        };
    let content = clip(&content, MAX_RESULT_CHARS);
    mirror.record(
        "agent.tool.result",
        &format!(
            "{}/{} {}",
            granted.server,
            granted.tool,
            if is_error { "failed" } else { "answered" }
        ),
        event(json!({
            "is_error": is_error,
            "content": clip(&content, EVENT_CHARS),
            "duration_ms": started.elapsed().as_millis() as u64,
        })),
    );
    json!({ "role": "tool", "tool_call_id": id, "content": content })
}

fn clip(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The end of a streamed turn as OpenAI's SSE chunks (its text went out as it came): the
/// calls of the client's own tools (if the model made any), the finish reason, and the usage
/// if the client asked for it.
pub fn tail_chunks(completion: &Value, wants_usage: bool) -> Vec<String> {
    let base = |choices: Value| {
        json!({
            "id": completion["id"],
            "object": "chat.completion.chunk",
            "created": completion["created"],
            "model": completion["model"],
            "choices": choices,
        })
    };
    let message = &completion["choices"][0]["message"];
    let mut chunks = Vec::new();
    if let Some(calls) = message["tool_calls"].as_array() {
        let indexed: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, call)| {
                let mut call = call.clone();
                call["index"] = json!(i);
                call
            })
            .collect();
        let delta = json!({ "role": "assistant", "tool_calls": indexed });
        chunks.push(base(
            json!([{ "index": 0, "delta": delta, "finish_reason": null }]),
        ));
    }
    chunks.push(base(json!([{ "index": 0, "delta": {}, "finish_reason": completion["choices"][0]["finish_reason"] }])));
    if wants_usage {
        let mut last = base(json!([]));
        last["usage"] = completion["usage"].clone();
        chunks.push(last);
    }
    chunks.into_iter().map(|c| c.to_string()).collect()
}
