//! Documents the squad writes: deliverables, research, protocols and drafts.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use squadron_actors::domain::{self, DocKind};
use squadron_actors::squad::{DocFields, SquadMsg};
use squadron_actors::store;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::views::{names, DocumentView};
use crate::api::envelope::{self, data, Data, PageQuery};
use crate::api::extract::{double_option, Json, Path, Query};
use crate::auth::{Caller, SquadCaller};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
pub struct DocQuery {
    /// deliverable, research, protocol or draft
    #[serde(rename = "type")]
    kind: Option<String>,
    task_id: Option<Uuid>,
}

async fn view(
    state: &AppState,
    caller: &Caller,
    doc: squadron_actors::store::entity::document::Model,
) -> Result<DocumentView, ApiError> {
    let agents = store::squads::agents(state.db(), caller.squad_id).await?;
    Ok(DocumentView::new(doc, &names(&agents), true))
}

/// The squad's documents, newest first: 50 a page by default, at most 200.
#[utoipa::path(get, path = "/api/documents", tag = "documents", params(DocQuery, PageQuery),
    responses((status = 200, body = Data<Vec<DocumentView>>), (status = 400), (status = 401)))]
pub async fn index(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Query(query): Query<DocQuery>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<Data<Vec<DocumentView>>>, ApiError> {
    let window = page.window(50, 200)?;
    let kind = query.kind.as_deref().map(DocKind::parse).transpose()?;
    let (docs, total) = store::content::documents(
        state.db(),
        caller.squad_id,
        kind.map(DocKind::as_str),
        query.task_id,
        window,
    )
    .await?;
    let agents = store::squads::agents(state.db(), caller.squad_id).await?;
    let names = names(&agents);
    let views = docs
        .into_iter()
        .map(|d| DocumentView::new(d, &names, false))
        .collect();
    Ok(envelope::page(views, total, window))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    title: Option<String>,
    content: Option<String>,
    /// deliverable, research, protocol or draft
    #[serde(rename = "type")]
    kind: Option<String>,
    /// The task it belongs to; `null` detaches it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    task_id: Option<Option<Uuid>>,
}

impl DocumentInput {
    fn parse(self) -> Result<DocFields, ApiError> {
        Ok(DocFields {
            title: self
                .title
                .as_deref()
                .map(|t| domain::title("title", t, 200))
                .transpose()?,
            content: self
                .content
                .as_deref()
                .map(|c| domain::text("content", c, 100_000))
                .transpose()?,
            kind: self.kind.as_deref().map(DocKind::parse).transpose()?,
            task_id: self.task_id,
        })
    }
}

/// Write a document (`title` and `type` required).
#[utoipa::path(post, path = "/api/documents", tag = "documents", request_body = DocumentInput,
    responses((status = 201, body = Data<DocumentView>), (status = 400), (status = 401)))]
pub async fn create(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Json(body): Json<DocumentInput>,
) -> Result<(StatusCode, axum::Json<Data<DocumentView>>), ApiError> {
    let fields = body.parse()?;
    if fields.title.is_none() || fields.kind.is_none() {
        return Err(ApiError::Validation("title and type are required".into()));
    }
    let by = caller.author.clone();
    let doc = state
        .core
        .call_squad(caller.squad_id, |reply| {
            SquadMsg::SaveDocument(by.clone(), None, fields.clone(), reply)
        })
        .await??;
    Ok((StatusCode::CREATED, data(view(&state, &caller, doc).await?)))
}

/// A document, with its content.
#[utoipa::path(get, path = "/api/documents/{id}", tag = "documents", params(("id" = Uuid, Path)),
    responses((status = 200, body = Data<DocumentView>), (status = 401), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Data<DocumentView>>, ApiError> {
    let doc = store::content::document(state.db(), caller.squad_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("document"))?;
    Ok(data(view(&state, &caller, doc).await?))
}

/// Change a document; fields left out stay as they are.
#[utoipa::path(patch, path = "/api/documents/{id}", tag = "documents", params(("id" = Uuid, Path)),
    request_body = DocumentInput,
    responses((status = 200, body = Data<DocumentView>), (status = 400), (status = 401), (status = 404)))]
pub async fn update(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Path(id): Path<Uuid>,
    Json(body): Json<DocumentInput>,
) -> Result<axum::Json<Data<DocumentView>>, ApiError> {
    let fields = body.parse()?;
    let by = caller.author.clone();
    let doc = state
        .core
        .call_squad(caller.squad_id, |reply| {
            SquadMsg::SaveDocument(by.clone(), Some(id), fields.clone(), reply)
        })
        .await??;
    Ok(data(view(&state, &caller, doc).await?))
}

/// Delete a document.
#[utoipa::path(delete, path = "/api/documents/{id}", tag = "documents", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let by = caller.author.clone();
    state
        .core
        .call_squad(caller.squad_id, |reply| {
            SquadMsg::DeleteDocument(by.clone(), id, reply)
        })
        .await??;
    Ok(StatusCode::NO_CONTENT)
}
