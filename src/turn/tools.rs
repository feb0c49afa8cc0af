//! An agent's MCP tools in a turn. The model is offered the tools the agent may use (as
//! OpenAI functions named `server__tool`); the calls it proposes run on their MCP servers and
//! their results go back to it (see `rounds` for the loop and its bounds). A call that fails
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

use super::mirror::Mirror;
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

impl Toolbox {
    /// The OpenAI `tools` entries offered to the model.
    pub fn functions(&self) -> &[Value] {
        &self.functions
    }

    /// Whether `call` (an OpenAI tool call) is of one of the agent's tools.
    pub fn grants(&self, call: &Value) -> bool {
        call["function"]["name"]
            .as_str()
            .is_some_and(|f| self.by_function.contains_key(f))
    }

    /// Runs one proposed call of a tool it [`grants`](Self::grants); its result (or failure)
    /// as a `tool` message.
    pub async fn call(
        &self,
        state: &AppState,
        call: &Value,
        timeout: Duration,
        mirror: &Mirror,
    ) -> Value {
        let function = call["function"]["name"].as_str().unwrap_or_default();
        match self.by_function.get(function) {
            Some(granted) => granted.call(state, call, timeout, mirror).await,
            None => json!({ "role": "tool", "tool_call_id": call["id"],
                "content": format!("error: no tool {function:?}") }),
        }
    }
}

impl Granted {
    async fn call(
        &self,
        state: &AppState,
        call: &Value,
        timeout: Duration,
        mirror: &Mirror,
    ) -> Value {
        let granted = self;
        let id = call["id"].as_str().unwrap_or_default().to_owned();
        let raw = call["function"]["arguments"].as_str().unwrap_or("{}");
        let event = |extra: Value| {
            let mut event =
                json!({ "call_id": id, "server": granted.server, "tool": granted.tool });
            if let (Some(event), Value::Object(extra)) = (event.as_object_mut(), extra) {
                event.extend(extra);
            }
            event
        };
        mirror.record(
            "agent.tool.called",
            format!("called {}/{}", granted.server, granted.tool),
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
            format!(
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
}

fn clip(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
