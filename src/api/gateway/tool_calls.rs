//! An agent's MCP tools in a chat turn. The model is offered the tools the agent may use (as
//! OpenAI functions named `server__tool`); the calls it proposes run on their MCP servers and
//! their results go back to it, until it answers. The loop is bounded: at most
//! `--tool-max-steps` rounds of calls (then the model must answer without tools), each call
//! within `--tool-timeout-secs`, the whole turn within four times that. A call that fails
//! (server down or dying mid-call, tool error, timeout) is given to the model as the tool's
//! result, so it can say so or try something else.
//!
//! Each call and result is a stored event of the agent's squad (`agent.tool.called`,
//! `agent.tool.result`); SquadOS conversations keep them as messages too.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use squadron_actors::store::entity::agent;
use squadron_actors::store::tools::{self as store_tools, ALL_TOOLS};
use uuid::Uuid;

use super::chat::Mirror;
use super::upstream::Upstream;
use crate::error::ApiError;
use crate::state::AppState;

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

/// Runs the turn. `body` is the upstream request (model and messages set); streaming is
/// turned off, as every round but the last ends in tool calls.
pub(crate) async fn run(
    state: &AppState,
    toolbox: &Toolbox,
    upstream: &Upstream,
    (name, body): (&str, Value),
    mirror: &Mirror,
) -> Result<Turn, ApiError> {
    let mut body = body;
    if let Some(object) = body.as_object_mut() {
        object.remove("stream");
        object.remove("stream_options");
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
        let mut completion = upstream.complete(state, name, &body).await?;
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
                let server = (granted.server_id, granted.server.as_str());
                match state
                    .tools
                    .call(server, &granted.tool, arguments, timeout)
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

/// A finished (not streamed) completion as OpenAI's SSE chunks, for a client that asked to
/// stream a turn that used tools.
pub fn as_chunks(completion: &Value, wants_usage: bool) -> Vec<String> {
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
    let mut delta = json!({ "role": "assistant", "content": message["content"] });
    if !message["tool_calls"].is_null() {
        delta["tool_calls"] = message["tool_calls"].clone();
    }
    let mut chunks = vec![
        base(json!([{ "index": 0, "delta": delta, "finish_reason": null }])),
        base(
            json!([{ "index": 0, "delta": {}, "finish_reason": completion["choices"][0]["finish_reason"] }]),
        ),
    ];
    if wants_usage {
        let mut last = base(json!([]));
        last["usage"] = completion["usage"].clone();
        chunks.push(last);
    }
    chunks.into_iter().map(|c| c.to_string()).collect()
}
