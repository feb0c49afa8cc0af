//! `POST /v1/chat/completions`, forwarded to the model's provider. The request passes through
//! untouched but for `model` (and, when streaming, usage is always asked for so it can be
//! recorded; the client sees the usage chunk only if it asked). A client that goes away
//! drops the upstream request with it.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::requested_model;
use super::tool_calls::{self, Toolbox};
use crate::api::extract::Json;
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::gateway::sse::{self, Relay};
use crate::gateway::usage::{count, record_usage};
use crate::state::AppState;
use crate::turn::agent_turn;

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
    let (mut mirror, sources) = match &agent {
        Some(agent) => {
            let (mirror, sources) = agent_turn(&state, agent, &mut body, stream).await?;
            (Some(mirror), sources)
        }
        None => (None, Vec::new()),
    };
    let upstream = state
        .gateway
        .upstream(caller.org_id, model.provider_id)
        .await?;
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
        if let Some(mirror) = &mut mirror {
            mirror.completed(&completion);
        }
        let mut completion = completion;
        if !sources.is_empty() {
            completion["sources"] = Value::Array(sources);
        }
        return Ok(axum::Json(completion).into_response());
    }
    let relay = Relay {
        model: name,
        wants_usage,
        started,
        watch: mirror.map(|m| Box::new(m) as Box<dyn sse::Watch>),
        sources,
    };
    Ok(sse::relay(&upstream, response, relay))
}
