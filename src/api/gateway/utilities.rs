//! `/v1/core` utilities: the account's settings, a model writing a system prompt, a chain of
//! agents each given the previous one's output, and fetching a page's readable text.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use squadron_actors::store::gateway;
use utoipa::ToSchema;

use super::providers::refused;
use super::wire::Usage;
use crate::api::extract::Json;
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::gateway::embeddings::{SUGGESTED, UNSUPPORTED};
use crate::state::AppState;
use crate::turn::complete_once;

/// The account's non-secret settings.
#[derive(Serialize, ToSchema)]
pub struct Settings {
    rate_limits_per_minute: RateLimits,
    body_limits_bytes: BodyLimits,
    embedding_models: EmbeddingModels,
    unsupported_embedding_models: Vec<&'static str>,
    /// The account's chat models.
    chat_models: Vec<String>,
    upstream_timeout_secs: u64,
    workflow_max_agents: usize,
    scrape: ScrapeLimits,
}

/// Requests per minute per credential (0: no limit).
#[derive(Serialize, ToSchema)]
pub struct RateLimits {
    heartbeat: u32,
    tasks: u32,
    default: u32,
    gateway: u32,
}

#[derive(Serialize, ToSchema)]
pub struct BodyLimits {
    mission_control: usize,
    gateway: usize,
}

#[derive(Serialize, ToSchema)]
pub struct EmbeddingModels {
    /// The names that need no account model of their own.
    supported: Vec<&'static str>,
    /// The account's embedding models.
    account: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ScrapeLimits {
    max_bytes: usize,
    timeout_secs: u64,
    /// Whether this caller may fetch private and loopback addresses.
    private_targets: bool,
}

/// The account's non-secret settings: limits, embedding models, defaults.
#[utoipa::path(get, path = "/v1/core/config", tag = "gateway", responses((status = 200, body = Settings), (status = 401)))]
pub async fn config(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
) -> Result<axum::Json<Settings>, ApiError> {
    let c = &state.config;
    let models = gateway::models(state.db(), caller.org_id).await?;
    let named = |kind: &str| {
        models
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.name.clone())
            .collect()
    };
    Ok(axum::Json(Settings {
        rate_limits_per_minute: RateLimits {
            heartbeat: c.rate_heartbeat,
            tasks: c.rate_tasks,
            default: c.rate_default,
            gateway: c.rate_gateway,
        },
        body_limits_bytes: BodyLimits {
            mission_control: c.body_limit_api,
            gateway: c.body_limit_gateway,
        },
        embedding_models: EmbeddingModels {
            supported: SUGGESTED.to_vec(),
            account: named("embedding"),
        },
        unsupported_embedding_models: vec![UNSUPPORTED],
        chat_models: named("chat"),
        upstream_timeout_secs: c.upstream_timeout_secs,
        workflow_max_agents: MAX_WORKFLOW,
        scrape: ScrapeLimits {
            max_bytes: SCRAPE_MAX_BYTES,
            timeout_secs: SCRAPE_TIMEOUT.as_secs(),
            private_targets: state
                .outbound
                .reach_for(caller.role, c.scrape_allow_private)
                .allows_private(),
        },
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct PromptInput {
    /// The chat model (or agent) that writes it.
    model: String,
    /// What the agent should be and do.
    description: String,
}

#[derive(Serialize, ToSchema)]
pub struct Prompt {
    prompt: String,
    usage: Option<Usage>,
}

/// A model writes a system prompt from a description.
#[utoipa::path(post, path = "/v1/core/generate/prompt", tag = "gateway", request_body = PromptInput,
    responses((status = 200, body = Prompt), (status = 400), (status = 401), (status = 404), (status = 502), (status = 504)))]
pub async fn generate_prompt(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(input): Json<PromptInput>,
) -> Result<axum::Json<Prompt>, ApiError> {
    let description = squadron_actors::domain::title("description", &input.description, 5_000)?;
    let messages = vec![
        json!({ "role": "system", "content": "You write system prompts for AI agents. Given a description, \
            reply with the system prompt only: second person, concrete duties, tone and limits, no preamble." }),
        json!({ "role": "user", "content": description }),
    ];
    let completion = complete_once(&state, caller.org_id, input.model.trim(), messages).await?;
    let prompt = completion["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("")
        .trim()
        .to_owned();
    Ok(axum::Json(Prompt {
        prompt,
        usage: Usage::of(&completion),
    }))
}

const MAX_WORKFLOW: usize = 10;

#[derive(Deserialize, ToSchema)]
pub struct WorkflowInput {
    /// Agent (or model) names, in order; each is given the previous one's output.
    agents: Vec<String>,
    /// What the first is given.
    input: String,
    /// Report progress as SSE: `step` events, then `done` (or `error`).
    #[serde(default)]
    stream: bool,
}

/// One agent's part of a workflow.
#[derive(Serialize, ToSchema)]
pub struct Step {
    /// Its place in the chain, from 0.
    index: usize,
    agent: String,
    output: String,
    usage: Option<Usage>,
}

/// A workflow's result: the last agent's output, and every step.
#[derive(Serialize, ToSchema)]
pub struct Workflow {
    output: String,
    steps: Vec<Step>,
}

/// Run an ordered chain of agents, each given the previous output. With `stream: true`, SSE:
/// a `step` event per agent (a `Step`), then `done`, or `error` with the failing index.
#[utoipa::path(post, path = "/v1/core/agent-workflow", tag = "gateway", request_body = WorkflowInput,
    responses((status = 200, content((Workflow = "application/json"), (String = "text/event-stream"))), (status = 400), (status = 401), (status = 404), (status = 502), (status = 504)))]
pub async fn agent_workflow(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(input): Json<WorkflowInput>,
) -> Result<Response, ApiError> {
    if input.agents.is_empty() || input.agents.len() > MAX_WORKFLOW {
        return Err(ApiError::Validation(format!(
            "agents must name 1 to {MAX_WORKFLOW} agents"
        )));
    }
    let first = squadron_actors::domain::title("input", &input.input, 32_000)?;
    let org_id = caller.org_id;
    let steps = async_stream::stream! {
        let mut carried = first;
        for (index, agent) in input.agents.iter().enumerate() {
            let messages = vec![json!({ "role": "user", "content": carried })];
            match complete_once(&state, org_id, agent.trim(), messages).await {
                Ok(completion) => {
                    carried = completion["choices"][0]["message"]["content"].as_str().unwrap_or("").to_owned();
                    yield Ok(Step { index, agent: agent.clone(), output: carried.clone(), usage: Usage::of(&completion) });
                }
                Err(err) => {
                    yield Err((index, agent.clone(), err));
                    return;
                }
            }
        }
    };
    if input.stream {
        let events = steps.map(|step| {
            Ok::<Event, Infallible>(match step {
                Ok(step) => Event::default()
                    .event("step")
                    .json_data(&step)
                    .expect("a step serializes"),
                Err((index, agent, err)) => Event::default().event("error").data(
                    json!({ "index": index, "agent": agent, "message": err.to_string() })
                        .to_string(),
                ),
            })
        });
        let done = futures::stream::once(async { Ok(Event::default().event("done").data("{}")) });
        return Ok(Sse::new(events.chain(done))
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let mut steps = std::pin::pin!(steps);
    let mut done = Vec::new();
    while let Some(step) = steps.next().await {
        match step {
            Ok(step) => done.push(step),
            Err((_, _, err)) => return Err(err),
        }
    }
    let output = done.last().map(|s| s.output.clone()).unwrap_or_default();
    Ok(axum::Json(Workflow {
        output,
        steps: done,
    })
    .into_response())
}

const SCRAPE_MAX_BYTES: usize = 2 * 1024 * 1024;
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
const SCRAPE_REDIRECTS: usize = 3;

#[derive(Deserialize, ToSchema)]
pub struct ScrapeInput {
    url: String,
}

/// A fetched page's readable text.
#[derive(Serialize, ToSchema)]
pub struct Page {
    /// Where the page was found, after redirects.
    url: String,
    title: String,
    text: String,
}

/// Fetch a page and return its title and readable text.
#[utoipa::path(post, path = "/v1/core/scrape-url", tag = "gateway", request_body = ScrapeInput,
    responses((status = 200, body = Page), (status = 400), (status = 401), (status = 502), (status = 504)))]
pub async fn scrape_url(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(input): Json<ScrapeInput>,
) -> Result<axum::Json<Page>, ApiError> {
    let mut url = reqwest::Url::parse(input.url.trim())
        .map_err(|e| ApiError::Validation(format!("url: {e}")))?;
    let unreachable = |message: String| ApiError::Upstream {
        status: axum::http::StatusCode::BAD_GATEWAY,
        message,
        retry_after: None,
    };
    let reach = state
        .outbound
        .reach_for(caller.role, state.config.scrape_allow_private);
    // A page's redirects are followed here, not by the client: each hop is a GET (no body to
    // re-send), vetted and pinned like the first.
    for _ in 0..=SCRAPE_REDIRECTS {
        let (host, addr) = state.outbound.vet(&url, reach).await.map_err(refused)?;
        let client = state
            .outbound
            .pinned(&host, addr, SCRAPE_TIMEOUT)
            .map_err(|e| ApiError::Internal(e.into()))?;
        let response = client.get(url.clone()).send().await.map_err(|e| {
            if e.is_timeout() {
                ApiError::Upstream {
                    status: axum::http::StatusCode::GATEWAY_TIMEOUT,
                    message: format!("{url} did not answer in time"),
                    retry_after: None,
                }
            } else {
                unreachable(format!("{url} could not be fetched: {}", e.without_url()))
            }
        })?;
        if response.status().is_redirection() {
            let next = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok());
            url = url
                .join(next.ok_or_else(|| unreachable(format!("{url} redirects nowhere")))?)
                .map_err(|e| unreachable(format!("bad redirect: {e}")))?;
            continue;
        }
        if !response.status().is_success() {
            return Err(unreachable(format!("{url} answered {}", response.status())));
        }
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            body.extend_from_slice(&chunk.map_err(|e| unreachable(format!("reading {url}: {e}")))?);
            if body.len() > SCRAPE_MAX_BYTES {
                return Err(ApiError::Validation(format!(
                    "the page is larger than {SCRAPE_MAX_BYTES} bytes"
                )));
            }
        }
        let (title, text) = readable(&String::from_utf8_lossy(&body));
        return Ok(axum::Json(Page {
            url: url.to_string(),
            title,
            text,
        }));
    }
    Err(unreachable(format!(
        "more than {SCRAPE_REDIRECTS} redirects"
    )))
}

/// The page's title and its text without scripts, styles and markup, whitespace collapsed.
fn readable(html: &str) -> (String, String) {
    let doc = scraper::Html::parse_document(html);
    let title = scraper::Selector::parse("title").expect("a valid selector");
    let title = doc
        .select(&title)
        .next()
        .map(|t| t.text().collect::<String>())
        .unwrap_or_default();
    let body = scraper::Selector::parse("body").expect("a valid selector");
    let mut words = Vec::new();
    let root = doc
        .select(&body)
        .next()
        .unwrap_or_else(|| doc.root_element());
    for node in root.descendants() {
        let Some(text) = node.value().as_text() else {
            continue;
        };
        let hidden = node.ancestors().any(|a| {
            a.value()
                .as_element()
                .is_some_and(|e| matches!(e.name(), "script" | "style" | "noscript" | "template"))
        });
        if !hidden {
            words.extend(text.split_whitespace().map(str::to_owned));
        }
    }
    (
        title.split_whitespace().collect::<Vec<_>>().join(" "),
        words.join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_text_leaves_out_scripts_and_markup() {
        let (title, text) = readable("<html><head><title> A  page </title><style>p{}</style></head><body><h1>Hi</h1><script>x()</script><p>there <b>you</b></p></body></html>");
        assert_eq!(title, "A page");
        assert_eq!(text, "Hi there you");
    }
}
