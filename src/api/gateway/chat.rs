//! `POST /v1/chat/completions`, forwarded to the model's provider. The request passes through
//! untouched but for `model` (and, when streaming, usage is always asked for so it can be
//! recorded; the client sees the usage chunk only if it asked). A client that goes away
//! drops the upstream request with it.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use squadron_actors::store::entity::{agent, model};

use super::requested_model;
use crate::api::extract::Json;
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::gateway::sse::{self, error_frame, sources_chunk, Relay};
use crate::gateway::usage::{count, record_usage};
use crate::state::AppState;
use crate::turn::{Turn, TurnEvent, Unread};

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
    let (model, agent) = state.gateway.target(caller.org_id, &name).await?;
    let stream = body["stream"].as_bool() == Some(true);
    if let Some(agent) = agent {
        return agent_answers(&state, &agent, &model, name, body, stream).await;
    }
    let upstream = state
        .gateway
        .upstream(caller.org_id, model.provider_id)
        .await?;
    body["model"] = Value::String(model.upstream_model.clone());
    let wants_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
    if stream {
        body["stream_options"] = json!({ "include_usage": true });
    }
    // What the gateway itself adds before the provider is asked: model and agent lookups,
    // secrets, the request's rewriting. (Auth and limits run before the handler: not counted.)
    metrics::histogram!("squadron_gateway_overhead_seconds")
        .record(arrived.elapsed().as_secs_f64());
    let started = Instant::now();
    let request = upstream
        .request(reqwest::Method::POST, "chat/completions")
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
        return Ok(axum::Json(completion).into_response());
    }
    Ok(sse::relay(
        &upstream,
        response,
        Relay {
            wants_usage,
            started,
        },
    ))
}

/// An agent answers with a turn: the whole completion as JSON (with the files its knowledge
/// came from, if any); or, when streaming, its text as the model writes it (tool rounds in
/// between send nothing), then the finish, the usage if asked for, and `[DONE]`. A failure
/// before the upstream took the turn is an HTTP error; after, it ends the stream with an
/// error object. A client that goes away ends the turn.
async fn agent_answers(
    state: &AppState,
    agent: &agent::Model,
    model: &model::Model,
    name: String,
    body: Value,
    stream: bool,
) -> Result<Response, ApiError> {
    let wants_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
    let turn = Turn::prepare(state, agent, model, body, stream).await?;
    if !stream {
        let answer = turn.answer().await.inspect_err(counted)?;
        count(StatusCode::OK);
        let mut completion = answer.completion;
        if !answer.sources.is_empty() {
            completion["sources"] = Value::Array(answer.sources);
        }
        return Ok(axum::Json(completion).into_response());
    }
    let events = turn.stream(Unread::Stop).await.inspect_err(counted)?;
    count(StatusCode::OK);
    let chunks = Chunks {
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        created: chrono::Utc::now().timestamp(),
        model: name,
        wants_usage,
    };
    let frames = futures::stream::unfold((events, chunks), |(mut events, chunks)| async move {
        let frames = chunks.of(events.next().await?);
        Some((
            Ok::<Bytes, std::io::Error>(Bytes::from(frames)),
            (events, chunks),
        ))
    });
    Ok(sse::response(Body::from_stream(frames)))
}

/// Counts a gateway request refused with an upstream's status.
fn counted(err: &ApiError) {
    if let ApiError::Upstream { status, .. } = err {
        count(*status);
    }
}

/// How a streamed turn's events look as OpenAI's SSE chunks: all of one id, named by the
/// model (the agent) the client asked for.
struct Chunks {
    id: String,
    created: i64,
    model: String,
    /// Whether the client asked for the usage chunk.
    wants_usage: bool,
}

impl Chunks {
    fn chunk(&self, choices: Value) -> Value {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": choices,
        })
    }

    /// A turn's event as SSE frames (maybe none).
    fn of(&self, event: TurnEvent) -> String {
        let mut done = false;
        let chunks = match event {
            TurnEvent::Sources(sources) if !sources.is_empty() => {
                return sources_chunk(&self.model, sources)
            }
            TurnEvent::Delta(text) => vec![self.chunk(json!([
                { "index": 0, "delta": { "content": text }, "finish_reason": null }
            ]))],
            TurnEvent::Done(answer) => {
                done = true;
                self.tail(&answer.completion)
            }
            TurnEvent::Failed(err) => return error_frame(&err.to_string()),
            _ => Vec::new(),
        };
        let mut out = String::new();
        for chunk in chunks {
            out.push_str(&format!("data: {chunk}\n\n"));
        }
        if done {
            out.push_str("data: [DONE]\n\n");
        }
        out
    }

    /// The end of a streamed turn (its text went out as it came): the calls of the client's
    /// own tools (if the model made any), the finish reason, the usage if the client asked
    /// for it.
    fn tail(&self, completion: &Value) -> Vec<Value> {
        let choice = &completion["choices"][0];
        let mut chunks = Vec::new();
        if let Some(calls) = choice["message"]["tool_calls"].as_array() {
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
            chunks.push(self.chunk(json!([{ "index": 0, "delta": delta, "finish_reason": null }])));
        }
        chunks.push(self.chunk(json!([
            { "index": 0, "delta": {}, "finish_reason": choice["finish_reason"] }
        ])));
        if self.wants_usage {
            let mut last = self.chunk(json!([]));
            last["usage"] = completion["usage"].clone();
            chunks.push(last);
        }
        chunks
    }
}
