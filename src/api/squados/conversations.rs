//! SquadOS chat with an agent, and the conversations it keeps: `POST /api/v1/chat/{agentId}`
//! creates or continues a conversation, stores both messages and replies, as JSON or SSE.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use squadron_actors::store::entity::{conversation, message};
use squadron_actors::store::{conversations, gateway, squads};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::envelope::{self, data, Data, PageQuery};
use crate::api::extract::{Json, Path, Query};
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::state::AppState;
use crate::turn::{Answer, Turn, TurnEvent, Unread};

/// How much of a conversation goes back to the model with each new message.
const HISTORY: u64 = 50;
const MAX_MESSAGE_CHARS: usize = 32_000;

#[derive(Serialize, ToSchema)]
pub struct ConversationView {
    id: Uuid,
    agent_id: Uuid,
    title: String,
    /// `open` or `archived`.
    status: String,
    #[schema(value_type = Object)]
    metadata: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<conversation::Model> for ConversationView {
    fn from(c: conversation::Model) -> Self {
        ConversationView {
            id: c.id,
            agent_id: c.agent_id,
            title: c.title,
            status: c.status,
            metadata: c.metadata,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MessageView {
    id: Uuid,
    role: String,
    content: String,
    #[schema(value_type = Option<Object>)]
    usage: Option<Value>,
    /// The tool calls and results that led to an agent's reply, as OpenAI messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    steps: Option<Value>,
    created_at: DateTime<Utc>,
}

impl From<message::Model> for MessageView {
    fn from(m: message::Model) -> Self {
        MessageView {
            id: m.id,
            role: m.role,
            content: m.content,
            usage: m.usage,
            steps: m.steps,
            created_at: m.created_at,
        }
    }
}

/// How many of the latest replies are replayed with the tool calls and results that led to
/// them; older replies go back as their text alone, so tool output cannot grow a long
/// conversation past what a model takes.
const STEPS_REPLAYED: usize = 2;

/// A conversation's messages as the model sees them: the latest replies after the tool calls
/// and results that led to them.
fn history_for_model(history: &[message::Model]) -> Vec<Value> {
    let with_steps = history.iter().filter(|m| m.steps.is_some()).count();
    let mut skip = with_steps.saturating_sub(STEPS_REPLAYED);
    let mut messages = Vec::new();
    for m in history {
        if let Some(Value::Array(steps)) = &m.steps {
            if skip == 0 {
                messages.extend(steps.iter().cloned());
            } else {
                skip -= 1;
            }
        }
        messages.push(json!({ "role": m.role, "content": m.content }));
    }
    messages
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatInput {
    message: String,
    /// Continue this conversation; without it, a new one starts.
    #[serde(default)]
    conversation_id: Option<Uuid>,
    /// Reply as SSE: `conversation`, then `delta` events, then `done` (or `error`).
    #[serde(default)]
    stream: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ChatReply {
    conversation_id: Uuid,
    message: MessageView,
    /// The files the agent's knowledge excerpts came from, best first.
    #[schema(value_type = Vec<Object>)]
    sources: Vec<Value>,
}

/// Send a message to an agent; the conversation (new or continued) keeps both messages.
#[utoipa::path(post, path = "/api/v1/chat/{agent_id}", tag = "chat", params(("agent_id" = Uuid, Path)),
    request_body = ChatInput,
    responses((status = 200, body = Data<ChatReply>), (status = 400), (status = 401), (status = 404), (status = 409), (status = 502), (status = 504)))]
pub async fn chat(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(agent_id): Path<Uuid>,
    Json(input): Json<ChatInput>,
) -> Result<Response, ApiError> {
    let text = input.message.trim().to_owned();
    if text.is_empty() || text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::Validation(format!(
            "message must be 1 to {MAX_MESSAGE_CHARS} characters"
        )));
    }
    let agent = squads::agent(state.db(), agent_id)
        .await?
        .filter(|a| a.org_id == caller.org_id)
        .ok_or_else(|| ApiError::not_found("agent"))?;
    let model_id = agent.model_id.ok_or_else(|| {
        ApiError::Validation(format!(
            "agent {} has no model to answer with (see /v1/core/add/agent)",
            agent.name
        ))
    })?;
    let model = gateway::model_by_id(state.db(), caller.org_id, model_id)
        .await?
        .ok_or_else(|| ApiError::not_found("model"))?;
    let conversation = match input.conversation_id {
        Some(id) => {
            let c = conversations::get(state.db(), caller.org_id, id)
                .await?
                .filter(|c| c.agent_id == agent.id)
                .ok_or_else(|| ApiError::not_found("conversation"))?;
            if c.status == "archived" {
                return Err(ApiError::Conflict(
                    "the conversation is archived; reopen it first".into(),
                ));
            }
            c
        }
        None => {
            let title: String = text.chars().take(80).collect();
            conversations::create(state.db(), caller.org_id, agent.id, &title).await?
        }
    };
    let history = conversations::messages(state.db(), conversation.id, HISTORY).await?;
    conversations::add_message(state.db(), &conversation, "user", &text, (None, None)).await?;
    let mut messages = history_for_model(&history);
    messages.push(json!({ "role": "user", "content": text }));
    let body = json!({ "model": model.upstream_model, "messages": messages });
    let turn = Turn::prepare(&state, &agent, &model, body, input.stream).await?;
    if !input.stream {
        let answer = turn.answer().await?;
        let reply = keep(state.db(), &conversation, &answer).await?;
        return Ok(data(ChatReply {
            conversation_id: conversation.id,
            message: reply.into(),
            sources: answer.sources,
        })
        .into_response());
    }
    // The turn runs to its end and its reply is kept even if the client goes away: this task
    // reads it, and sends the client what it can.
    let mut events = turn.stream(Unread::Finish).await?;
    let (to, out) = tokio::sync::mpsc::channel::<Event>(64);
    let db = state.db().clone();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            let event = match event {
                TurnEvent::Sources(sources) => Event::default().event("conversation").data(
                    json!({ "conversation_id": conversation.id, "sources": sources }).to_string(),
                ),
                TurnEvent::Delta(text) => Event::default()
                    .event("delta")
                    .data(json!({ "content": text }).to_string()),
                TurnEvent::ToolCalls(step) | TurnEvent::ToolResult(step) => {
                    Event::default().event("step").data(step.to_string())
                }
                TurnEvent::Usage(_) => continue,
                TurnEvent::Done(answer) => match keep(&db, &conversation, &answer).await {
                    Ok(reply) => Event::default().event("done").data(
                        json!({
                            "conversation_id": conversation.id, "message_id": reply.id,
                            "usage": reply.usage,
                        })
                        .to_string(),
                    ),
                    Err(err) => error_event(format!("the reply could not be stored: {err}")),
                },
                TurnEvent::Failed(err) => error_event(err.to_string()),
            };
            let _ = to.send(event).await;
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(out)
        .map(Ok::<Event, Infallible>)
        .take_until(state.shutdown.clone().cancelled_owned());
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn error_event(message: String) -> Event {
    Event::default()
        .event("error")
        .data(json!({ "message": message }).to_string())
}

/// Keeps an agent's answer in its conversation, with its usage and the tool calls and
/// results that led to it.
async fn keep(
    db: &sea_orm::DatabaseConnection,
    conversation: &conversation::Model,
    answer: &Answer,
) -> Result<message::Model, ApiError> {
    let usage = Some(answer.completion["usage"].clone()).filter(|u| !u.is_null());
    let steps = (!answer.transcript.is_empty()).then(|| json!(answer.transcript));
    Ok(conversations::add_message(
        db,
        conversation,
        "assistant",
        answer.content(),
        (usage, steps),
    )
    .await?)
}

#[derive(Deserialize, IntoParams)]
pub struct ConversationQuery {
    agent_id: Option<Uuid>,
    /// open or archived
    status: Option<String>,
}

fn status(raw: &str) -> Result<String, ApiError> {
    match raw {
        "open" | "archived" => Ok(raw.to_owned()),
        other => Err(ApiError::Validation(format!(
            "status must be open or archived, not {other:?}"
        ))),
    }
}

/// The organization's conversations, most recently active first: 20 a page by default, at
/// most 100.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations", params(ConversationQuery, PageQuery),
    responses((status = 200, body = Data<Vec<ConversationView>>), (status = 400), (status = 401)))]
pub async fn index(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Query(query): Query<ConversationQuery>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<Data<Vec<ConversationView>>>, ApiError> {
    let window = page.window(20, 100)?;
    let filter = conversations::Filter {
        agent_id: query.agent_id,
        status: query.status.as_deref().map(status).transpose()?,
    };
    let (items, total) = conversations::list(state.db(), caller.org_id, &filter, window).await?;
    Ok(envelope::page(
        items.into_iter().map(ConversationView::from).collect(),
        total,
        window,
    ))
}

async fn owned(state: &AppState, org_id: Uuid, id: Uuid) -> Result<conversation::Model, ApiError> {
    conversations::get(state.db(), org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("conversation"))
}

/// A conversation.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = Data<ConversationView>), (status = 401), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Data<ConversationView>>, ApiError> {
    Ok(data(owned(&state, caller.org_id, id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchConversation {
    title: Option<String>,
    /// open or archived
    status: Option<String>,
    /// Replaces the metadata: a JSON object.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Map<String, Value>>,
}

/// Rename, archive or reopen a conversation, or set its metadata.
#[utoipa::path(patch, path = "/api/v1/conversations/{id}", tag = "conversations", params(("id" = Uuid, Path)),
    request_body = PatchConversation,
    responses((status = 200, body = Data<ConversationView>), (status = 400), (status = 401), (status = 404)))]
pub async fn update(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchConversation>,
) -> Result<axum::Json<Data<ConversationView>>, ApiError> {
    use sea_orm::{ActiveModelTrait, Set};
    let current = owned(&state, caller.org_id, id).await?;
    let mut active: conversation::ActiveModel = current.into();
    if let Some(title) = body.title {
        active.title = Set(squadron_actors::domain::title("title", &title, 200)?);
    }
    if let Some(s) = body.status {
        active.status = Set(status(&s)?);
    }
    if let Some(metadata) = body.metadata {
        if serde_json::to_string(&metadata).map_or(0, |s| s.len()) > 16 * 1024 {
            return Err(ApiError::Validation(
                "metadata must be at most 16 KB of JSON".into(),
            ));
        }
        active.metadata = Set(Value::Object(metadata));
    }
    active.updated_at = Set(Utc::now());
    Ok(data(active.update(state.db()).await?.into()))
}

/// A conversation's messages, oldest first: 100 a page by default, at most 1,000.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "conversations", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Data<Vec<MessageView>>), (status = 400), (status = 401), (status = 404)))]
pub async fn messages(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<Uuid>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<Data<Vec<MessageView>>>, ApiError> {
    let window = page.window(100, 1000)?;
    owned(&state, caller.org_id, id).await?;
    let (messages, total) = conversations::page_of_messages(state.db(), id, window).await?;
    Ok(envelope::page(
        messages.into_iter().map(MessageView::from).collect(),
        total,
        window,
    ))
}
