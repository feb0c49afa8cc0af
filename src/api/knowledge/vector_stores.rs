//! `/v1/vector_stores`: stores, the files in them (each ingested by its own actor), search,
//! and the seed's `cancel`, `file-details` and `user-collections`.

use std::collections::HashMap;

use axum::extract::State;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use squadron_actors::knowledge::chunk::Chunking;
use squadron_actors::knowledge::KnowledgeMsg;
use squadron_actors::store::entity::{file, model, vector_store, vector_store_file};
use squadron_actors::store::vectors::Hit;
use squadron_actors::store::{gateway, knowledge as kb};
use utoipa::ToSchema;
use uuid::Uuid;

use super::filters::Filter;
use super::{
    check_metadata, file_id, list_of, parse_id, store_id, ChunkingStrategy, ExpiresAfter,
    FileCounts, LastError, ListQuery, Metadata, Queries,
};
use crate::api::extract::{double_option, Json, Path, Query};
use crate::api::openai::{list, CursorPage, Deleted, Identified, List};
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::state::AppState;

/// OpenAI's vector store object, with the embedding model and vector size it was made with.
#[derive(Serialize, ToSchema)]
pub struct VectorStore {
    pub id: String,
    /// Always `vector_store`.
    object: &'static str,
    pub created_at: i64,
    pub name: String,
    pub description: String,
    pub usage_bytes: i64,
    pub file_counts: FileCounts,
    /// `in_progress` while files are being ingested, `completed` otherwise, or `expired`.
    pub status: &'static str,
    #[schema(value_type = Option<ExpiresAfter>)]
    expires_after: Option<Value>,
    expires_at: Option<i64>,
    pub last_active_at: i64,
    #[schema(value_type = Metadata)]
    pub metadata: Value,
    pub embedding_model: Option<String>,
    /// Known once the first vectors are stored.
    pub dimensions: Option<i32>,
}

impl Identified for VectorStore {
    fn id(&self) -> &str {
        &self.id
    }
}

/// A store's files' counts and its status, as OpenAI reports them.
pub async fn view(state: &AppState, s: vector_store::Model) -> Result<VectorStore, ApiError> {
    let counts = kb::counts(state.db(), s.id).await?;
    let expired = s.expires_at.is_some_and(|at| at <= Utc::now());
    let status = if expired {
        "expired"
    } else if counts.in_progress > 0 {
        "in_progress"
    } else {
        "completed"
    };
    let model = gateway::model_by_id(state.db(), s.org_id, s.model_id).await?;
    Ok(VectorStore {
        id: store_id(s.id),
        object: "vector_store",
        created_at: s.created_at.timestamp(),
        name: s.name,
        description: s.description,
        usage_bytes: counts.usage_bytes,
        file_counts: FileCounts::from(&counts),
        status,
        expires_after: s.expires_after,
        expires_at: s.expires_at.map(|t| t.timestamp()),
        last_active_at: s.last_active_at.timestamp(),
        metadata: s.metadata,
        embedding_model: model.map(|m| m.name),
        dimensions: s.dimensions,
    })
}

/// OpenAI's vector store file object: a file in a store, and its ingest.
#[derive(Serialize, ToSchema)]
pub struct VectorStoreFile {
    /// The file's id.
    id: String,
    /// Always `vector_store.file`.
    object: &'static str,
    usage_bytes: i64,
    created_at: i64,
    vector_store_id: String,
    /// `in_progress`, `completed`, `failed` or `cancelled`.
    status: String,
    #[schema(value_type = Option<LastError>)]
    last_error: Option<Value>,
    #[schema(value_type = ChunkingStrategy)]
    chunking_strategy: Value,
    /// Up to 16 keys; strings, numbers or booleans.
    #[schema(value_type = Object)]
    attributes: Value,
}

impl Identified for VectorStoreFile {
    fn id(&self) -> &str {
        &self.id
    }
}

pub fn file_view(e: vector_store_file::Model) -> VectorStoreFile {
    VectorStoreFile {
        id: file_id(e.file_id),
        object: "vector_store.file",
        usage_bytes: e.usage_bytes,
        created_at: e.created_at.timestamp(),
        vector_store_id: store_id(e.vector_store_id),
        status: e.status,
        last_error: e.last_error,
        chunking_strategy: e.chunking_strategy,
        attributes: e.attributes,
    }
}

/// The account's store `id`, or a 404.
pub async fn owned_store(
    state: &AppState,
    org_id: Uuid,
    id: &str,
) -> Result<vector_store::Model, ApiError> {
    let id = parse_id(id, "vs_", "vector store")?;
    kb::store(state.db(), org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("vector store"))
}

/// `{"type": "auto"}` or `{"type": "static", "static": {...}}`; absent is auto.
pub fn chunking(value: Option<&Value>) -> Result<Chunking, ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Chunking::default());
    };
    match value["type"].as_str() {
        Some("auto") => Ok(Chunking::default()),
        Some("static") => {
            let size = value["static"]["max_chunk_size_tokens"].as_u64();
            let overlap = value["static"]["chunk_overlap_tokens"].as_u64();
            let (Some(size), Some(overlap)) = (size, overlap) else {
                return Err(ApiError::Validation(
                    "a static chunking_strategy needs max_chunk_size_tokens and chunk_overlap_tokens".into(),
                ));
            };
            Chunking::new(size as usize, overlap as usize).map_err(ApiError::Validation)
        }
        _ => Err(ApiError::Validation(
            "chunking_strategy.type must be auto or static".into(),
        )),
    }
}

/// `{"anchor": "last_active_at", "days": 1..=365}`: when the store then expires.
fn expiry(value: &Value) -> Result<Duration, ApiError> {
    let days = value["days"].as_u64().filter(|d| (1..=365).contains(d));
    match (value["anchor"].as_str(), days) {
        (Some("last_active_at"), Some(days)) => Ok(Duration::days(days as i64)),
        _ => Err(ApiError::Validation(
            "expires_after must be {\"anchor\": \"last_active_at\", \"days\": 1 to 365}".into(),
        )),
    }
}

/// The embedding model a new store uses: the one named, or the account's first.
async fn embedding_model(
    state: &AppState,
    org_id: Uuid,
    name: Option<&str>,
) -> Result<model::Model, ApiError> {
    let models = gateway::models(state.db(), org_id).await?;
    let mut embedding = models.into_iter().filter(|m| m.kind == "embedding");
    match name {
        Some(name) => embedding.find(|m| m.name == name).ok_or_else(|| {
            ApiError::Validation(format!(
                "embedding_model {name:?} is not one of this account's embedding models"
            ))
        }),
        None => embedding.next().ok_or_else(|| {
            ApiError::Validation(
                "this account has no embedding model; add one with /v1/core/add/model".into(),
            )
        }),
    }
}

/// A file about to join a store.
pub struct NewEntry {
    pub file: file::Model,
    pub strategy: Chunking,
    pub attributes: Value,
    /// A base item's title; the file's name if none.
    pub title: Option<String>,
    /// `file`, or `text` for a base item given as text.
    pub source: &'static str,
}

impl NewEntry {
    pub fn file(file: file::Model) -> NewEntry {
        NewEntry {
            file,
            strategy: Chunking::default(),
            attributes: json!({}),
            title: None,
            source: "file",
        }
    }
}

/// An expired store keeps its data but is no longer used (as in OpenAI's API).
fn usable(store: &vector_store::Model) -> Result<(), ApiError> {
    if store.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::Validation(format!(
            "the vector store {} has expired",
            store_id(store.id)
        )));
    }
    Ok(())
}

/// Puts a file in a store and starts its ingest; 409 when it is there already.
pub async fn add_file(
    state: &AppState,
    store: &vector_store::Model,
    new: NewEntry,
) -> Result<vector_store_file::Model, ApiError> {
    usable(store)?;
    let NewEntry {
        file,
        strategy,
        attributes,
        title,
        source,
    } = new;
    if !attributes.is_object() {
        return Err(ApiError::Validation("attributes must be an object".into()));
    }
    if attributes.as_object().is_some_and(|a| a.len() > 16) {
        return Err(ApiError::Validation(
            "attributes may hold at most 16 pairs".into(),
        ));
    }
    let now = Utc::now();
    let entry = vector_store_file::Model {
        id: Uuid::new_v4(),
        vector_store_id: store.id,
        file_id: file.id,
        org_id: store.org_id,
        status: "in_progress".into(),
        chunking_strategy: strategy.to_json(),
        attributes,
        title: title.unwrap_or_else(|| file.filename.clone()),
        source: source.into(),
        usage_bytes: 0,
        chunk_count: 0,
        last_error: None,
        created_at: now,
        updated_at: now,
    };
    let entry = match kb::add_store_file(state.db(), entry).await {
        Ok(entry) => entry,
        Err(err) if squadron_actors::store::is_unique_violation(&err) => {
            return Err(ApiError::Conflict(format!(
                "the file {} is already in the vector store {}",
                file_id(file.id),
                store_id(store.id)
            )))
        }
        Err(err) => return Err(err.into()),
    };
    kb::touch_store(state.db(), store).await?;
    state
        .knowledge
        .cast(KnowledgeMsg::Ingest(entry.id))
        .map_err(|_| {
            ApiError::Unavailable(
                "the server is shutting down; the ingest resumes at the next start".into(),
            )
        })?;
    Ok(entry)
}

/// Marks a running ingest cancelled and stops its job; false if it was not running.
pub async fn cancel(state: &AppState, entry: &vector_store_file::Model) -> Result<bool, ApiError> {
    let cancelled = kb::finish_store_file(state.db(), entry.id, "cancelled", 0, 0, None).await?;
    if cancelled {
        let _ = state.knowledge.cast(KnowledgeMsg::Cancel(entry.id));
    }
    Ok(cancelled)
}

#[derive(Deserialize, ToSchema)]
pub struct NewStore {
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    file_ids: Vec<String>,
    /// The account's embedding model (default: its first).
    embedding_model: Option<String>,
    #[schema(value_type = Option<ChunkingStrategy>)]
    chunking_strategy: Option<Value>,
    #[schema(value_type = Option<ExpiresAfter>)]
    expires_after: Option<Value>,
    #[schema(value_type = Option<Metadata>)]
    metadata: Option<Value>,
}

/// Most files a create or a batch may name at once.
const MAX_FILES_AT_ONCE: usize = 500;

/// Creates a store from its parts (shared with SquadOS knowledge bases).
pub async fn create_store(
    state: &AppState,
    org_id: Uuid,
    body: NewStore,
) -> Result<vector_store::Model, ApiError> {
    let name = body.name.unwrap_or_default().trim().to_owned();
    if name.chars().count() > 256 {
        return Err(ApiError::Validation(
            "name may be at most 256 characters".into(),
        ));
    }
    if body.file_ids.len() > MAX_FILES_AT_ONCE {
        return Err(ApiError::Validation(format!(
            "file_ids may name at most {MAX_FILES_AT_ONCE} files"
        )));
    }
    let metadata = body.metadata.unwrap_or_else(|| json!({}));
    check_metadata(&metadata)?;
    let strategy = chunking(body.chunking_strategy.as_ref())?;
    let expires_after = body.expires_after.filter(|v| !v.is_null());
    let now = Utc::now();
    let expires_at = expires_after
        .as_ref()
        .map(expiry)
        .transpose()?
        .map(|d| now + d);
    let model = embedding_model(state, org_id, body.embedding_model.as_deref()).await?;
    let mut files: Vec<file::Model> = Vec::new();
    for id in &body.file_ids {
        let f = super::files::owned_file(state, org_id, id).await?;
        if !files.iter().any(|known| known.id == f.id) {
            files.push(f);
        }
    }
    if let Some(dims) = model.dimensions {
        kb::ensure_index(state.db(), &state.core.shared.indexed, dims as usize).await?;
    }
    let store = kb::insert_store(
        state.db(),
        vector_store::Model {
            id: Uuid::new_v4(),
            org_id,
            name,
            description: body.description.unwrap_or_default(),
            model_id: model.id,
            dimensions: model.dimensions,
            metadata,
            expires_after,
            expires_at,
            last_active_at: now,
            created_at: now,
        },
    )
    .await?;
    for file in files {
        let new = NewEntry {
            strategy,
            ..NewEntry::file(file)
        };
        add_file(state, &store, new).await?;
    }
    Ok(store)
}

/// Create a vector store (its files start ingesting at once).
#[utoipa::path(post, path = "/v1/vector_stores", tag = "knowledge", request_body = NewStore,
    responses((status = 200, body = VectorStore), (status = 400), (status = 401), (status = 404)))]
pub async fn create(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(body): Json<NewStore>,
) -> Result<axum::Json<VectorStore>, ApiError> {
    let store = create_store(&state, caller.org_id, body).await?;
    Ok(axum::Json(view(&state, store).await?))
}

/// List the account's vector stores.
#[utoipa::path(get, path = "/v1/vector_stores", tag = "knowledge", params(ListQuery),
    responses((status = 200, body = CursorPage<VectorStore>), (status = 400), (status = 401), (status = 404, description = "The `after` cursor names no vector store")))]
pub async fn index(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<CursorPage<VectorStore>>, ApiError> {
    let after = match &query.after {
        Some(after) => {
            let s = owned_store(&state, caller.org_id, after).await?;
            Some((s.created_at, s.id))
        }
        None => None,
    };
    let page = query.page(after)?;
    let mut stores = kb::stores(state.db(), caller.org_id, &page).await?;
    let has_more = stores.len() as u64 > page.limit;
    stores.truncate(page.limit as usize);
    let mut data = Vec::with_capacity(stores.len());
    for s in stores {
        data.push(view(&state, s).await?);
    }
    Ok(axum::Json(CursorPage::new(data, has_more)))
}

/// A vector store.
#[utoipa::path(get, path = "/v1/vector_stores/{id}", tag = "knowledge",
    responses((status = 200, body = VectorStore), (status = 401), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<VectorStore>, ApiError> {
    let store = owned_store(&state, caller.org_id, &id).await?;
    Ok(axum::Json(view(&state, store).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreUpdate {
    name: Option<String>,
    description: Option<String>,
    /// `null` removes the expiry.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<ExpiresAfter>)]
    expires_after: Option<Option<Value>>,
    #[schema(value_type = Option<Metadata>)]
    metadata: Option<Value>,
}

/// Applies a change to a store (shared with SquadOS knowledge bases).
pub async fn update_store(
    state: &AppState,
    store: vector_store::Model,
    body: StoreUpdate,
) -> Result<vector_store::Model, ApiError> {
    use sea_orm::{IntoActiveModel, Set};
    let mut active = store.clone().into_active_model();
    if let Some(name) = body.name {
        if name.chars().count() > 256 {
            return Err(ApiError::Validation(
                "name may be at most 256 characters".into(),
            ));
        }
        active.name = Set(name.trim().to_owned());
    }
    if let Some(description) = body.description {
        active.description = Set(description);
    }
    if let Some(metadata) = body.metadata {
        check_metadata(&metadata)?;
        active.metadata = Set(metadata);
    }
    match body.expires_after {
        None => {}
        Some(None) | Some(Some(Value::Null)) => {
            active.expires_after = Set(None);
            active.expires_at = Set(None);
        }
        Some(Some(after)) => {
            let days = expiry(&after)?;
            active.expires_at = Set(Some(store.last_active_at + days));
            active.expires_after = Set(Some(after));
        }
    }
    Ok(kb::update_store(state.db(), active).await?)
}

/// Modify a vector store's name, expiry or metadata.
#[utoipa::path(post, path = "/v1/vector_stores/{id}", tag = "knowledge", request_body = StoreUpdate,
    responses((status = 200, body = VectorStore), (status = 400), (status = 401), (status = 404)))]
pub async fn update(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<String>,
    Json(body): Json<StoreUpdate>,
) -> Result<axum::Json<VectorStore>, ApiError> {
    let store = owned_store(&state, caller.org_id, &id).await?;
    let store = update_store(&state, store, body).await?;
    Ok(axum::Json(view(&state, store).await?))
}

/// Deletes a store: its running ingests stop, its chunks go (shared with knowledge bases).
pub async fn delete_store(state: &AppState, store: &vector_store::Model) -> Result<(), ApiError> {
    for entry in kb::all_store_files(state.db(), store.id).await? {
        if entry.status == "in_progress" {
            let _ = state.knowledge.cast(KnowledgeMsg::Cancel(entry.id));
        }
    }
    kb::delete_store(state.db(), state.vectors(), store.id).await?;
    Ok(())
}

/// Delete a vector store (the files stay).
#[utoipa::path(delete, path = "/v1/vector_stores/{id}", tag = "knowledge",
    responses((status = 200, body = Deleted), (status = 401), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<Deleted>, ApiError> {
    let store = owned_store(&state, caller.org_id, &id).await?;
    delete_store(&state, &store).await?;
    Ok(Deleted::new(store_id(store.id), "vector_store.deleted"))
}

#[derive(Deserialize, ToSchema)]
pub struct NewStoreFile {
    file_id: String,
    /// Up to 16 keys; strings, numbers or booleans.
    #[schema(value_type = Option<Object>)]
    attributes: Option<Value>,
    #[schema(value_type = Option<ChunkingStrategy>)]
    chunking_strategy: Option<Value>,
}

/// Add a file to a vector store (409 if it is there already); its ingest starts at once.
#[utoipa::path(post, path = "/v1/vector_stores/{id}/files", tag = "knowledge", request_body = NewStoreFile,
    responses((status = 200, body = VectorStoreFile), (status = 400), (status = 401), (status = 404), (status = 409)))]
pub async fn add(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<String>,
    Json(body): Json<NewStoreFile>,
) -> Result<axum::Json<VectorStoreFile>, ApiError> {
    let store = owned_store(&state, caller.org_id, &id).await?;
    let file = super::files::owned_file(&state, caller.org_id, &body.file_id).await?;
    let strategy = chunking(body.chunking_strategy.as_ref())?;
    let attributes = body
        .attributes
        .filter(|a| !a.is_null())
        .unwrap_or_else(|| json!({}));
    let new = NewEntry {
        strategy,
        attributes,
        ..NewEntry::file(file)
    };
    let entry = add_file(&state, &store, new).await?;
    Ok(axum::Json(file_view(entry)))
}

/// The store's entry for file `file`, or a 404.
async fn entry(
    state: &AppState,
    store: &vector_store::Model,
    file: &str,
) -> Result<vector_store_file::Model, ApiError> {
    let file = parse_id(file, "file-", "file")?;
    kb::store_file(state.db(), store.id, file)
        .await?
        .ok_or_else(|| ApiError::not_found("file in this vector store"))
}

/// List the files in a vector store (`filter` by status).
#[utoipa::path(get, path = "/v1/vector_stores/{id}/files", tag = "knowledge", params(ListQuery),
    responses((status = 200, body = CursorPage<VectorStoreFile>), (status = 400), (status = 401), (status = 404)))]
pub async fn files(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<CursorPage<VectorStoreFile>>, ApiError> {
    let store = owned_store(&state, caller.org_id, &id).await?;
    if let Some(status) = &query.filter {
        if !["in_progress", "completed", "failed", "cancelled"].contains(&status.as_str()) {
            return Err(ApiError::Validation(
                "filter must be in_progress, completed, failed or cancelled".into(),
            ));
        }
    }
    let after = match &query.after {
        Some(after) => {
            let e = entry(&state, &store, after).await?;
            Some((e.created_at, e.id))
        }
        None => None,
    };
    let page = query.page(after)?;
    let entries = kb::store_files(state.db(), store.id, query.filter.as_deref(), &page).await?;
    Ok(list_of(entries, &page, file_view))
}

/// A file in a vector store, with its ingest status.
#[utoipa::path(get, path = "/v1/vector_stores/{id}/files/{file_id}", tag = "knowledge",
    responses((status = 200, body = VectorStoreFile), (status = 401), (status = 404)))]
pub async fn file(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path((id, file)): Path<(String, String)>,
) -> Result<axum::Json<VectorStoreFile>, ApiError> {
    let store = owned_store(&state, caller.org_id, &id).await?;
    Ok(axum::Json(file_view(entry(&state, &store, &file).await?)))
}

/// Remove a file from a vector store (the file stays; its chunks there go).
#[utoipa::path(delete, path = "/v1/vector_stores/{id}/files/{file_id}", tag = "knowledge",
    responses((status = 200, body = Deleted), (status = 401), (status = 404)))]
pub async fn remove(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path((id, file)): Path<(String, String)>,
) -> Result<axum::Json<Deleted>, ApiError> {
    let store = owned_store(&state, caller.org_id, &id).await?;
    let entry = entry(&state, &store, &file).await?;
    cancel(&state, &entry).await?;
    kb::remove_store_file(state.db(), state.vectors(), &entry).await?;
    Ok(Deleted::new(
        file_id(entry.file_id),
        "vector_store.file.deleted",
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct CancelRequest {
    vector_store_id: String,
    /// One file; without it, every running ingest of the store.
    file_id: Option<String>,
}

/// A store after some of its ingests were cancelled.
#[derive(Serialize, ToSchema)]
pub struct Cancelled {
    #[serde(flatten)]
    store: VectorStore,
    /// How many running ingests were stopped.
    cancelled: u64,
}

/// Cancel a store's running ingests (or one file's).
#[utoipa::path(post, path = "/v1/vector_stores/cancel", tag = "knowledge", request_body = CancelRequest,
    responses((status = 200, body = Cancelled), (status = 401), (status = 404)))]
pub async fn cancel_ingests(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(body): Json<CancelRequest>,
) -> Result<axum::Json<Cancelled>, ApiError> {
    let store = owned_store(&state, caller.org_id, &body.vector_store_id).await?;
    let entries = match &body.file_id {
        Some(file) => vec![entry(&state, &store, file).await?],
        None => kb::all_store_files(state.db(), store.id).await?,
    };
    let mut cancelled = 0;
    for e in entries.iter().filter(|e| e.status == "in_progress") {
        if cancel(&state, e).await? {
            cancelled += 1;
        }
    }
    Ok(axum::Json(Cancelled {
        store: view(&state, store).await?,
        cancelled,
    }))
}

/// Per file of a store: its ingest, chunks and bytes (the seed's diagnostics).
#[derive(Serialize, ToSchema)]
pub struct FileDetail {
    file_id: String,
    /// Absent when the file itself was deleted.
    filename: Option<String>,
    bytes: Option<i64>,
    /// `in_progress`, `completed`, `failed` or `cancelled`.
    status: String,
    /// The chunks in the store, and those its last finished ingest wrote: they differ only
    /// while an ingest runs (or if something went wrong).
    chunk_count: i64,
    chunks_recorded: i32,
    usage_bytes: i64,
    #[schema(value_type = Option<LastError>)]
    last_error: Option<Value>,
    updated_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct FileDetails {
    /// Always `list`.
    object: &'static str,
    vector_store_id: String,
    data: Vec<FileDetail>,
}

/// Per file of a store: status, chunks, bytes and last error (the seed's diagnostics).
pub async fn details(
    state: &AppState,
    store: &vector_store::Model,
) -> Result<Vec<FileDetail>, ApiError> {
    let entries = kb::all_store_files(state.db(), store.id).await?;
    let chunks = kb::chunk_counts(state.db(), store.id).await?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let f = kb::file(state.db(), store.org_id, e.file_id).await?;
        out.push(FileDetail {
            file_id: file_id(e.file_id),
            filename: f.as_ref().map(|f| f.filename.clone()),
            bytes: f.as_ref().map(|f| f.bytes),
            status: e.status,
            chunk_count: chunks.get(&e.file_id).copied().unwrap_or(0),
            chunks_recorded: e.chunk_count,
            usage_bytes: e.usage_bytes,
            last_error: e.last_error,
            updated_at: e.updated_at.timestamp(),
        });
    }
    Ok(out)
}

/// Each file of a store with its ingest status, chunk count, bytes and last error.
#[utoipa::path(get, path = "/v1/vector_stores/{id}/file-details", tag = "knowledge",
    responses((status = 200, body = FileDetails), (status = 401), (status = 404)))]
pub async fn file_details(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<FileDetails>, ApiError> {
    let store = owned_store(&state, caller.org_id, &id).await?;
    let data = details(&state, &store).await?;
    Ok(axum::Json(FileDetails {
        object: "list",
        vector_store_id: store_id(store.id),
        data,
    }))
}

/// A vector store in brief.
#[derive(Serialize, ToSchema)]
pub struct StoreBrief {
    id: String,
    name: String,
    /// As the store's.
    status: &'static str,
    file_counts: FileCounts,
    usage_bytes: i64,
    embedding_model: Option<String>,
    dimensions: Option<i32>,
}

/// The account's vector stores in brief, as the seed's collections.
#[utoipa::path(get, path = "/v1/user-collections", tag = "knowledge",
    responses((status = 200, body = List<StoreBrief>), (status = 401)))]
pub async fn user_collections(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
) -> Result<axum::Json<List<StoreBrief>>, ApiError> {
    let stores = kb::all_stores(state.db(), caller.org_id).await?;
    let mut data = Vec::with_capacity(stores.len());
    for s in stores {
        let v = view(&state, s).await?;
        data.push(StoreBrief {
            id: v.id,
            name: v.name,
            status: v.status,
            file_counts: v.file_counts,
            usage_bytes: v.usage_bytes,
            embedding_model: v.embedding_model,
            dimensions: v.dimensions,
        });
    }
    Ok(list(data))
}

#[derive(Deserialize, ToSchema)]
pub struct SearchRequest {
    #[schema(value_type = Queries)]
    query: Value,
    #[schema(minimum = 1, maximum = 50)]
    max_num_results: Option<u64>,
    /// An attribute filter: `{"type": "eq", "key", "value"}` (eq, ne, gt, gte, lt, lte, in,
    /// nin) or `{"type": "and"|"or", "filters": [...]}`.
    #[schema(value_type = Option<Object>)]
    filters: Option<Value>,
    #[schema(value_type = Option<RankingOptions>)]
    ranking_options: Option<Value>,
}

/// `{"score_threshold": 0 to 1}`: hits scoring lower are left out.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RankingOptions {
    #[schema(minimum = 0.0, maximum = 1.0)]
    score_threshold: Option<f64>,
}

/// OpenAI's search results page (one page: every hit that made the cut).
#[derive(Serialize, ToSchema)]
pub struct SearchResults {
    /// Always `vector_store.search_results.page`.
    object: &'static str,
    search_query: Vec<String>,
    data: Vec<SearchHit>,
    has_more: bool,
    next_page: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchHit {
    file_id: String,
    filename: String,
    score: f32,
    #[schema(value_type = Object)]
    attributes: Value,
    content: Vec<TextContent>,
}

#[derive(Serialize, ToSchema)]
pub struct TextContent {
    /// Always `text`.
    r#type: &'static str,
    text: String,
}

/// A search hit, with what OpenAI reports for it.
pub struct Found {
    pub file_id: Uuid,
    pub filename: String,
    pub score: f32,
    pub text: String,
    pub attributes: Value,
}

/// The store's best chunks for `queries` among its completed files that pass `filter`;
/// each chunk once, with its best score over the queries.
pub async fn search_store(
    state: &AppState,
    store: &vector_store::Model,
    queries: Vec<String>,
    limit: usize,
    filter: Option<&Filter>,
    threshold: f32,
) -> Result<Vec<Found>, ApiError> {
    usable(store)?;
    let model = gateway::model_by_id(state.db(), store.org_id, store.model_id)
        .await?
        .ok_or_else(|| ApiError::Conflict("the store's embedding model was deleted".into()))?;
    let all = kb::all_store_files(state.db(), store.id).await?;
    let total = all.len();
    let entries: HashMap<Uuid, vector_store_file::Model> = all
        .into_iter()
        .filter(|e| e.status == "completed")
        .filter(|e| filter.is_none_or(|f| f.matches(&e.attributes)))
        .map(|e| (e.file_id, e))
        .collect();
    // When every file qualifies, the search needs no list of files: on PostgreSQL a long
    // `file_id = ANY(...)` list can steer the planner off the vector index.
    let allowed: Option<Vec<Uuid>> =
        (entries.len() < total).then(|| entries.keys().copied().collect());
    let vectors = state
        .gateway
        .embed_texts(store.org_id, &model, queries)
        .await?;
    let mut best: HashMap<(Uuid, i32), Hit> = HashMap::new();
    for vector in &vectors {
        for hit in state
            .vectors()
            .nearest(state.db(), store.id, vector, limit, allowed.as_deref())
            .await?
        {
            let key = (hit.file_id, hit.seq);
            if best.get(&key).is_none_or(|b| b.score < hit.score) {
                best.insert(key, hit);
            }
        }
    }
    kb::touch_store(state.db(), store).await?;
    let mut hits: Vec<Hit> = best
        .into_values()
        .filter(|h| h.score >= threshold)
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    hits.truncate(limit);
    let mut names: HashMap<Uuid, String> = HashMap::new();
    let mut found = Vec::with_capacity(hits.len());
    for hit in hits {
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(hit.file_id) {
            let name = kb::file(state.db(), store.org_id, hit.file_id)
                .await?
                .map(|f| f.filename)
                .unwrap_or_default();
            slot.insert(name);
        }
        found.push(Found {
            file_id: hit.file_id,
            filename: names[&hit.file_id].clone(),
            score: hit.score,
            text: hit.text,
            attributes: entries
                .get(&hit.file_id)
                .map_or(json!({}), |e| e.attributes.clone()),
        });
    }
    Ok(found)
}

/// The query strings of a search request: one string or a non-empty array of them.
pub fn queries(query: &Value) -> Result<Vec<String>, ApiError> {
    let bad =
        || ApiError::Validation("query must be a non-empty string or array of strings".into());
    let list: Vec<String> = match query {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    if list.is_empty() || list.iter().any(|q| q.trim().is_empty()) || list.len() > 10 {
        return Err(bad());
    }
    Ok(list)
}

/// Search a vector store (OpenAI's shape: query, max_num_results, filters, ranking_options).
#[utoipa::path(post, path = "/v1/vector_stores/{id}/search", tag = "knowledge", request_body = SearchRequest,
    responses((status = 200, body = SearchResults), (status = 400), (status = 401), (status = 404)))]
pub async fn search(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<String>,
    Json(body): Json<SearchRequest>,
) -> Result<axum::Json<SearchResults>, ApiError> {
    let store = owned_store(&state, caller.org_id, &id).await?;
    let queries = queries(&body.query)?;
    let limit = body.max_num_results.unwrap_or(10);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::Validation(
            "max_num_results must be between 1 and 50".into(),
        ));
    }
    let filter = Filter::optional(body.filters.as_ref())?;
    let threshold = match body.ranking_options.as_ref().map(|r| &r["score_threshold"]) {
        None | Some(Value::Null) => 0.0,
        Some(t) => t
            .as_f64()
            .filter(|t| (0.0..=1.0).contains(t))
            .ok_or_else(|| {
                ApiError::Validation(
                    "ranking_options.score_threshold must be between 0 and 1".into(),
                )
            })? as f32,
    };
    let started = std::time::Instant::now();
    let found = search_store(
        &state,
        &store,
        queries.clone(),
        limit as usize,
        filter.as_ref(),
        threshold,
    )
    .await?;
    metrics::histogram!("squadron_search_seconds").record(started.elapsed().as_secs_f64());
    let data = found
        .into_iter()
        .map(|f| SearchHit {
            file_id: file_id(f.file_id),
            filename: f.filename,
            score: f.score,
            attributes: f.attributes,
            content: vec![TextContent {
                r#type: "text",
                text: f.text,
            }],
        })
        .collect();
    Ok(axum::Json(SearchResults {
        object: "vector_store.search_results.page",
        search_query: queries,
        data,
        has_more: false,
        next_page: None,
    }))
}
