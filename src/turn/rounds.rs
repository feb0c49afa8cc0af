//! A turn's rounds with its upstream. Each round is asked whole, or streamed (its text is
//! emitted as it comes while the pieces of its tool calls are put together); when the model
//! calls the agent's tools, they run and their results go back to it in the next round,
//! until it answers. The loop is bounded: at most `--tool-max-steps` rounds of calls (then
//! the model must answer without tools), each call within `--tool-timeout-secs`, the whole
//! turn within four times that.

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};

use super::{add_usage, Answer, Emit, Rounds, TurnEvent};
use crate::error::ApiError;
use crate::gateway::upstream::Upstream;
use crate::gateway::usage::record_usage;

/// A model may propose at most this many calls at once; more pieces are dropped.
const MAX_CALLS_PER_ROUND: usize = 128;

impl Rounds {
    /// Runs the rounds (streamed or whole) until the model answers.
    pub(super) async fn run(self, stream: bool, emit: &mut Emit) -> Result<Answer, ApiError> {
        let Rounds {
            state,
            upstream,
            toolbox,
            mut body,
            sources,
        } = self;
        if let Some(object) = body.as_object_mut() {
            object.remove("stream");
            object.remove("stream_options");
        }
        if stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({ "include_usage": true });
        }
        // The client's own tools (if any) stay; the agent's join them.
        if let Some(toolbox) = &toolbox {
            let mut offered = body["tools"].as_array().cloned().unwrap_or_default();
            offered.extend(toolbox.functions().iter().cloned());
            body["tools"] = Value::Array(offered);
        }
        let per_call = Duration::from_secs(state.config.tool_timeout_secs.max(1));
        let deadline = Instant::now() + per_call * 4;
        let mut announced = false;
        let mut transcript = Vec::new();
        let mut usage = Value::Null;
        let mut steps = 0;
        loop {
            if steps >= state.config.tool_max_steps || Instant::now() >= deadline {
                // Out of steps or time: the model answers with what it has.
                body["tool_choice"] = json!("none");
            }
            let mut completion = if stream {
                let response = upstream
                    .send(
                        upstream
                            .request(reqwest::Method::POST, "chat/completions")
                            .json(&body),
                    )
                    .await?;
                // The upstream took the turn: its sources go first, once.
                if !announced {
                    announced = true;
                    emit.send(TurnEvent::Sources(sources.clone())).await;
                }
                streamed_round(&upstream, response, emit).await?
            } else {
                let completion = upstream.complete(&body).await?;
                if let Some(text) = completion["choices"][0]["message"]["content"]
                    .as_str()
                    .filter(|t| !t.is_empty())
                {
                    emit.send(TurnEvent::Delta(text.to_owned())).await;
                }
                completion
            };
            if !completion["usage"].is_null() {
                emit.send(TurnEvent::Usage(completion["usage"].clone()))
                    .await;
            }
            add_usage(&mut usage, &completion["usage"]);
            let message = completion["choices"][0]["message"].clone();
            let calls = message["tool_calls"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            // An answer, or calls of tools that are not the agent's (the client's: it runs them).
            let ours = toolbox
                .as_ref()
                .filter(|toolbox| !calls.is_empty() && calls.iter().all(|c| toolbox.grants(c)));
            let Some(toolbox) = ours.filter(|_| body["tool_choice"] != "none") else {
                completion["usage"] = usage;
                return Ok(Answer {
                    completion,
                    transcript,
                    sources,
                });
            };
            steps += 1;
            let assistant = json!({
                "role": "assistant",
                "content": message["content"],
                "tool_calls": calls,
            });
            push(&mut body, assistant.clone())?;
            emit.send(TurnEvent::ToolCalls(assistant.clone())).await;
            transcript.push(assistant);
            let left = deadline.saturating_duration_since(Instant::now());
            let mirror = &emit.mirror;
            let results = futures::future::join_all(
                calls
                    .iter()
                    .map(|call| toolbox.call(&state, call, per_call.min(left), mirror)),
            )
            .await;
            for result in results {
                push(&mut body, result.clone())?;
                emit.send(TurnEvent::ToolResult(result.clone())).await;
                transcript.push(result);
            }
        }
    }
}

fn push(body: &mut Value, message: Value) -> Result<(), ApiError> {
    body["messages"]
        .as_array_mut()
        .ok_or_else(|| ApiError::Validation("messages must be an array".into()))?
        .push(message);
    Ok(())
}

/// One streamed round: its text is emitted chunk by chunk; its tool calls (sent in pieces)
/// are put together. Returns the round as a whole completion.
async fn streamed_round(
    upstream: &Upstream,
    response: reqwest::Response,
    emit: &mut Emit,
) -> Result<Value, ApiError> {
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
            emit.send(TurnEvent::Delta(text.to_owned())).await;
        }
        for piece in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            gather(&mut calls, piece);
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

/// Adds a streamed piece of a tool call to the calls so far. The id and name come whole (some
/// providers repeat them); the arguments in pieces.
fn gather(calls: &mut Vec<Value>, piece: &Value) {
    let index = piece["index"].as_u64().unwrap_or(0) as usize;
    if index >= MAX_CALLS_PER_ROUND {
        return;
    }
    while calls.len() <= index {
        calls.push(
            json!({ "id": "", "type": "function", "function": { "name": "", "arguments": "" } }),
        );
    }
    let call = &mut calls[index];
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_are_put_together_from_their_pieces() {
        let mut calls = Vec::new();
        for piece in [
            json!({ "index": 0, "id": "call_a", "function": { "name": "srv__echo", "arguments": "{\"m\":" } }),
            json!({ "index": 1, "id": "call_b", "function": { "name": "srv__add", "arguments": "{}" } }),
            // A provider that repeats the id and name with every piece.
            json!({ "index": 0, "id": "call_a", "function": { "name": "srv__echo", "arguments": "\"hi\"}" } }),
            json!({ "index": 500, "id": "call_z", "function": { "name": "x" } }),
        ] {
            gather(&mut calls, &piece);
        }
        assert_eq!(calls.len(), 2, "an index past the bound is dropped");
        assert_eq!(calls[0]["id"], "call_a");
        assert_eq!(calls[0]["function"]["name"], "srv__echo");
        assert_eq!(calls[0]["function"]["arguments"], "{\"m\":\"hi\"}");
        assert_eq!(calls[1]["function"]["name"], "srv__add");
    }
}
