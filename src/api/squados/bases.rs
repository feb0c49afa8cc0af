//! SquadOS knowledge bases (`/api/v1/bases`): a base is a vector store and its items are the
//! store's files, so both APIs see the same data. An item is given as text (kept as a file)
//! or names an uploaded file; changing its text ingests it again.

use axum::extract::State;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use squadron_actors::knowledge::KnowledgeMsg;
use squadron_actors::store::entity::vector_store_file;
use squadron_actors::store::knowledge as kb;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::envelope::{data, list, Data};
use crate::api::extract::{Json, Path};
use crate::api::knowledge::files::{owned_file, put_file, remove_file, replace_file};
use crate::api::knowledge::vector_stores::{
    self as stores, add_file, create_store, delete_store, search_store, update_store, NewEntry,
    NewStore, StoreUpdate,
};
use crate::api::knowledge::{file_id, FileCounts, LastError, Metadata};
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::state::AppState;

/// Longest text item, in bytes.
const MAX_TEXT_BYTES: usize = 1024 * 1024;

#[derive(Serialize, ToSchema)]
pub struct BaseView {
    id: Uuid,
    /// The same base in the OpenAI-compatible API.
    vector_store_id: String,
    name: String,
    description: String,
    /// `in_progress` while items are being ingested, `completed` otherwise (or `expired`).
    status: String,
    embedding_model: Option<String>,
    dimensions: Option<i32>,
    file_counts: FileCounts,
    usage_bytes: i64,
    #[schema(value_type = Metadata)]
    metadata: Value,
    created_at: DateTime<Utc>,
    last_active_at: DateTime<Utc>,
}

async fn base_view(
    state: &AppState,
    store: squadron_actors::store::entity::vector_store::Model,
) -> Result<BaseView, ApiError> {
    // In whole seconds, as the store's OpenAI view has them.
    let (id, created_at, last_active_at) = (
        store.id,
        store.created_at.trunc_subsecs(0),
        store.last_active_at.trunc_subsecs(0),
    );
    let v = stores::view(state, store).await?;
    Ok(BaseView {
        id,
        vector_store_id: v.id,
        name: v.name,
        description: v.description,
        status: v.status.to_owned(),
        embedding_model: v.embedding_model,
        dimensions: v.dimensions,
        file_counts: v.file_counts,
        usage_bytes: v.usage_bytes,
        metadata: v.metadata,
        created_at,
        last_active_at,
    })
}

#[derive(Serialize, ToSchema)]
pub struct ItemView {
    id: Uuid,
    base_id: Uuid,
    /// `text` or `file`.
    #[serde(rename = "type")]
    kind: String,
    title: String,
    file_id: String,
    /// `in_progress`, `completed`, `failed` or `cancelled`.
    status: String,
    chunk_count: i32,
    #[schema(value_type = Option<LastError>)]
    last_error: Option<Value>,
    #[schema(value_type = Object)]
    metadata: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<vector_store_file::Model> for ItemView {
    fn from(e: vector_store_file::Model) -> Self {
        ItemView {
            id: e.id,
            base_id: e.vector_store_id,
            kind: e.source,
            title: e.title,
            file_id: file_id(e.file_id),
            status: e.status,
            chunk_count: e.chunk_count,
            last_error: e.last_error,
            metadata: e.attributes,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A base's id as either API shows it: its UUID (SquadOS) or its vector store's `vs_…` id
/// (`/v1/vector_stores`), since a base is a vector store.
#[derive(Clone, Copy, ToSchema)]
#[schema(value_type = String)]
pub struct BaseId(Uuid);

impl<'de> Deserialize<'de> for BaseId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Uuid::try_parse(raw.strip_prefix("vs_").unwrap_or(&raw))
            .map(BaseId)
            .map_err(|_| serde::de::Error::custom(format!("{raw:?} is not a base id")))
    }
}

async fn owned_base(
    state: &AppState,
    org_id: Uuid,
    id: Uuid,
) -> Result<squadron_actors::store::entity::vector_store::Model, ApiError> {
    kb::store(state.db(), org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("base"))
}

async fn owned_item(
    state: &AppState,
    base: Uuid,
    item: Uuid,
) -> Result<vector_store_file::Model, ApiError> {
    kb::store_file_by_id(state.db(), item)
        .await?
        .filter(|e| e.vector_store_id == base)
        .ok_or_else(|| ApiError::not_found("item"))
}

/// The organization's knowledge bases, newest first.
#[utoipa::path(get, path = "/api/v1/bases", tag = "bases",
    responses((status = 200, body = Data<Vec<BaseView>>), (status = 401)))]
pub async fn index(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
) -> Result<axum::Json<Data<Vec<BaseView>>>, ApiError> {
    let mut bases = Vec::new();
    for store in kb::all_stores(state.db(), caller.org_id).await? {
        bases.push(base_view(&state, store).await?);
    }
    Ok(list(bases))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBase {
    name: String,
    description: Option<String>,
    /// One of the account's embedding models (default: its first).
    embedding_model: Option<String>,
    #[schema(value_type = Option<Metadata>)]
    metadata: Option<Value>,
}

/// Create a knowledge base.
#[utoipa::path(post, path = "/api/v1/bases", tag = "bases", request_body = NewBase,
    responses((status = 201, body = Data<BaseView>), (status = 400), (status = 401)))]
pub async fn create(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(body): Json<NewBase>,
) -> Result<(axum::http::StatusCode, axum::Json<Data<BaseView>>), ApiError> {
    if body.name.trim().is_empty() {
        return Err(ApiError::Validation("name is required".into()));
    }
    let new: NewStore = serde_json::from_value(json!({
        "name": body.name, "description": body.description,
        "embedding_model": body.embedding_model, "metadata": body.metadata,
    }))
    .map_err(|e| ApiError::Validation(e.to_string()))?;
    let store = create_store(&state, caller.org_id, new).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        data(base_view(&state, store).await?),
    ))
}

/// A knowledge base.
#[utoipa::path(get, path = "/api/v1/bases/{id}", tag = "bases",
    params(("id" = String, Path, description = "The base's id, or its vector store's `vs_…` id")),
    responses((status = 200, body = Data<BaseView>), (status = 401), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(base): Path<BaseId>,
) -> Result<axum::Json<Data<BaseView>>, ApiError> {
    let id = base.0;
    let store = owned_base(&state, caller.org_id, id).await?;
    Ok(data(base_view(&state, store).await?))
}

/// Rename a base, or change its description or metadata.
#[utoipa::path(patch, path = "/api/v1/bases/{id}", tag = "bases",
    params(("id" = String, Path, description = "The base's id, or its vector store's `vs_…` id")), request_body = StoreUpdate,
    responses((status = 200, body = Data<BaseView>), (status = 400), (status = 401), (status = 404)))]
pub async fn update(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(base): Path<BaseId>,
    Json(body): Json<StoreUpdate>,
) -> Result<axum::Json<Data<BaseView>>, ApiError> {
    let id = base.0;
    let store = owned_base(&state, caller.org_id, id).await?;
    let store = update_store(&state, store, body).await?;
    Ok(data(base_view(&state, store).await?))
}

/// Delete a base with its items (text items' files go too; uploaded files stay).
#[utoipa::path(delete, path = "/api/v1/bases/{id}", tag = "bases",
    params(("id" = String, Path, description = "The base's id, or its vector store's `vs_…` id")),
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(base): Path<BaseId>,
) -> Result<axum::http::StatusCode, ApiError> {
    let id = base.0;
    let store = owned_base(&state, caller.org_id, id).await?;
    let texts: Vec<Uuid> = kb::all_store_files(state.db(), store.id)
        .await?
        .into_iter()
        .filter(|e| e.source == "text")
        .map(|e| e.file_id)
        .collect();
    delete_store(&state, &store).await?;
    for file in texts {
        if let Some(f) = kb::file(state.db(), caller.org_id, file).await? {
            remove_file(&state, &f).await?;
        }
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// A base's items, newest first.
#[utoipa::path(get, path = "/api/v1/bases/{id}/items", tag = "bases",
    params(("id" = String, Path, description = "The base's id, or its vector store's `vs_…` id")),
    responses((status = 200, body = Data<Vec<ItemView>>), (status = 401), (status = 404)))]
pub async fn items(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(base): Path<BaseId>,
) -> Result<axum::Json<Data<Vec<ItemView>>>, ApiError> {
    let id = base.0;
    let store = owned_base(&state, caller.org_id, id).await?;
    let mut entries = kb::all_store_files(state.db(), store.id).await?;
    entries.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    Ok(list(entries.into_iter().map(ItemView::from).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    /// `text` (give `content`) or `file` (give `file_id` of an uploaded file). Default: text
    /// when `content` is given.
    #[serde(rename = "type")]
    kind: Option<String>,
    title: Option<String>,
    content: Option<String>,
    file_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

fn text_bytes(content: &str) -> Result<Vec<u8>, ApiError> {
    if content.trim().is_empty() {
        return Err(ApiError::Validation("content must not be empty".into()));
    }
    if content.len() > MAX_TEXT_BYTES {
        return Err(ApiError::Validation(format!(
            "content may be at most {MAX_TEXT_BYTES} bytes; upload larger texts as files"
        )));
    }
    Ok(content.as_bytes().to_vec())
}

/// Add an item: text, or an uploaded file. Its ingest starts at once.
#[utoipa::path(post, path = "/api/v1/bases/{id}/items", tag = "bases",
    params(("id" = String, Path, description = "The base's id, or its vector store's `vs_…` id")), request_body = NewItem,
    responses((status = 201, body = Data<ItemView>), (status = 400), (status = 401), (status = 404), (status = 409)))]
pub async fn add_item(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(base): Path<BaseId>,
    Json(body): Json<NewItem>,
) -> Result<(axum::http::StatusCode, axum::Json<Data<ItemView>>), ApiError> {
    let id = base.0;
    let store = owned_base(&state, caller.org_id, id).await?;
    let metadata = body.metadata.unwrap_or_else(|| json!({}));
    crate::api::knowledge::check_metadata(&metadata)?;
    let title = body
        .title
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let kind = body.kind.as_deref().unwrap_or(if body.file_id.is_some() {
        "file"
    } else {
        "text"
    });
    let new = match kind {
        "text" => {
            let bytes = text_bytes(body.content.as_deref().unwrap_or(""))?;
            let name = format!("{}.md", title.as_deref().unwrap_or("item"));
            let file = put_file(&state, caller.org_id, &name, bytes).await?;
            NewEntry {
                attributes: metadata,
                title: Some(title.unwrap_or_else(|| "Untitled".into())),
                source: "text",
                ..NewEntry::file(file)
            }
        }
        "file" => {
            let file_id = body
                .file_id
                .ok_or_else(|| ApiError::Validation("a file item needs file_id".into()))?;
            let file = owned_file(&state, caller.org_id, &file_id).await?;
            NewEntry {
                attributes: metadata,
                title,
                ..NewEntry::file(file)
            }
        }
        other => {
            return Err(ApiError::Validation(format!(
                "type must be text or file, not {other:?}"
            )))
        }
    };
    let entry = add_file(&state, &store, new).await?;
    Ok((axum::http::StatusCode::CREATED, data(entry.into())))
}

/// An item, with its ingest status.
#[utoipa::path(get, path = "/api/v1/bases/{id}/items/{item_id}", tag = "bases",
    params(("id" = String, Path, description = "The base's id, or its vector store's `vs_…` id"), ("item_id" = Uuid, Path, description = "The item's id")),
    responses((status = 200, body = Data<ItemView>), (status = 401), (status = 404)))]
pub async fn item(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path((base, item_id)): Path<(BaseId, Uuid)>,
) -> Result<axum::Json<Data<ItemView>>, ApiError> {
    let id = base.0;
    owned_base(&state, caller.org_id, id).await?;
    Ok(data(owned_item(&state, id, item_id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemUpdate {
    title: Option<String>,
    /// A text item's new text: it is ingested again.
    content: Option<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

/// Change an item's title or metadata, or a text item's text (which ingests it again).
#[utoipa::path(patch, path = "/api/v1/bases/{id}/items/{item_id}", tag = "bases",
    params(("id" = String, Path, description = "The base's id, or its vector store's `vs_…` id"), ("item_id" = Uuid, Path, description = "The item's id")), request_body = ItemUpdate,
    responses((status = 200, body = Data<ItemView>), (status = 400), (status = 401), (status = 404)))]
pub async fn update_item(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path((base, item_id)): Path<(BaseId, Uuid)>,
    Json(body): Json<ItemUpdate>,
) -> Result<axum::Json<Data<ItemView>>, ApiError> {
    let id = base.0;
    owned_base(&state, caller.org_id, id).await?;
    let entry = owned_item(&state, id, item_id).await?;
    if let Some(metadata) = &body.metadata {
        crate::api::knowledge::check_metadata(metadata)?;
    }
    let text = match &body.content {
        Some(_) if entry.source != "text" => {
            return Err(ApiError::Validation(
                "only text items have content to change; upload a new file instead".into(),
            ))
        }
        Some(content) => Some(text_bytes(content)?),
        None => None,
    };
    let title = body
        .title
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| entry.title.clone());
    let metadata = body.metadata.unwrap_or_else(|| entry.attributes.clone());
    kb::relabel_store_file(state.db(), entry.id, &title, metadata).await?;
    if let Some(bytes) = text {
        let file = kb::file(state.db(), caller.org_id, entry.file_id)
            .await?
            .ok_or_else(|| ApiError::not_found("item"))?;
        replace_file(&state, &file, bytes).await?;
        kb::restart_store_file(state.db(), entry.id).await?;
        state
            .knowledge
            .cast(KnowledgeMsg::Ingest(entry.id))
            .map_err(|_| ApiError::Unavailable("the server is shutting down".into()))?;
    }
    Ok(data(owned_item(&state, id, item_id).await?.into()))
}

/// Delete an item (a text item's file goes with it; an uploaded file stays).
#[utoipa::path(delete, path = "/api/v1/bases/{id}/items/{item_id}", tag = "bases",
    params(("id" = String, Path, description = "The base's id, or its vector store's `vs_…` id"), ("item_id" = Uuid, Path, description = "The item's id")),
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn delete_item(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path((base, item_id)): Path<(BaseId, Uuid)>,
) -> Result<axum::http::StatusCode, ApiError> {
    let id = base.0;
    owned_base(&state, caller.org_id, id).await?;
    let entry = owned_item(&state, id, item_id).await?;
    stores::cancel(&state, &entry).await?;
    kb::remove_store_file(state.db(), state.vectors(), &entry).await?;
    if entry.source == "text" {
        if let Some(f) = kb::file(state.db(), caller.org_id, entry.file_id).await? {
            remove_file(&state, &f).await?;
        }
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BaseQuery {
    query: String,
    /// 1 to 50 (default 5).
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct Match {
    item_id: Uuid,
    title: String,
    file_id: String,
    content: String,
    score: f32,
}

/// Semantic search in a base: its items' best chunks for `query`.
#[utoipa::path(post, path = "/api/v1/bases/{id}/query", tag = "bases",
    params(("id" = String, Path, description = "The base's id, or its vector store's `vs_…` id")), request_body = BaseQuery,
    responses((status = 200, body = Data<Vec<Match>>), (status = 400), (status = 401), (status = 404)))]
pub async fn query(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(base): Path<BaseId>,
    Json(body): Json<BaseQuery>,
) -> Result<axum::Json<Data<Vec<Match>>>, ApiError> {
    let id = base.0;
    let store = owned_base(&state, caller.org_id, id).await?;
    if body.query.trim().is_empty() {
        return Err(ApiError::Validation("query is required".into()));
    }
    let limit = body.limit.unwrap_or(5);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::Validation("limit must be 1 to 50".into()));
    }
    let entries = kb::all_store_files(state.db(), store.id).await?;
    let found = search_store(&state, &store, vec![body.query], limit, None, 0.0).await?;
    let matches = found
        .into_iter()
        .filter_map(|f| {
            let entry = entries.iter().find(|e| e.file_id == f.file_id)?;
            Some(Match {
                item_id: entry.id,
                title: entry.title.clone(),
                file_id: file_id(f.file_id),
                content: f.text,
                score: f.score,
            })
        })
        .collect();
    Ok(list(matches))
}
