//! OpenAI's file batches: several files added to a vector store at once, followed and
//! cancelled together. A batch's status and counts are its files'.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use squadron_actors::store::entity::{file_batch, vector_store, vector_store_file};
use squadron_actors::store::knowledge as kb;
use utoipa::ToSchema;
use uuid::Uuid;

use super::files::owned_file;
use super::vector_stores::{
    add_file, cancel, chunking, file_view, owned_store, NewEntry, VectorStoreFile,
};
use super::{parse_id, store_id, ChunkingStrategy, FileCounts, ListQuery};
use crate::api::extract::{Json, Path, Query};
use crate::api::openai::CursorPage;
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::state::AppState;

fn batch_id(id: Uuid) -> String {
    format!("vsfb_{}", id.simple())
}

/// OpenAI's file batch object.
#[derive(Serialize, ToSchema)]
pub struct FileBatch {
    id: String,
    /// Always `vector_store.files_batch`.
    object: &'static str,
    created_at: i64,
    vector_store_id: String,
    /// `in_progress` while any file is; then `cancelled`, `failed` or `completed`.
    status: &'static str,
    file_counts: FileCounts,
}

fn view(batch: &file_batch::Model, entries: &[vector_store_file::Model]) -> FileBatch {
    let count = |status: &str| entries.iter().filter(|e| e.status == status).count() as i64;
    let (in_progress, completed, failed, cancelled) = (
        count("in_progress"),
        count("completed"),
        count("failed"),
        count("cancelled"),
    );
    let status = if in_progress > 0 {
        "in_progress"
    } else if cancelled > 0 {
        "cancelled"
    } else if failed > 0 {
        "failed"
    } else {
        "completed"
    };
    FileBatch {
        id: batch_id(batch.id),
        object: "vector_store.files_batch",
        created_at: batch.created_at.timestamp(),
        vector_store_id: store_id(batch.vector_store_id),
        status,
        file_counts: FileCounts {
            in_progress,
            completed,
            failed,
            cancelled,
            total: entries.len() as i64,
        },
    }
}

async fn owned_batch(
    state: &AppState,
    org_id: Uuid,
    store: &str,
    batch: &str,
) -> Result<(vector_store::Model, file_batch::Model), ApiError> {
    let store = owned_store(state, org_id, store).await?;
    let id = parse_id(batch, "vsfb_", "file batch")?;
    let batch = kb::batch(state.db(), store.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("file batch"))?;
    Ok((store, batch))
}

#[derive(Deserialize, ToSchema)]
pub struct NewBatch {
    #[schema(min_items = 1, max_items = 500)]
    file_ids: Vec<String>,
    /// Up to 16 keys; strings, numbers or booleans.
    #[schema(value_type = Option<Object>)]
    attributes: Option<Value>,
    #[schema(value_type = Option<ChunkingStrategy>)]
    chunking_strategy: Option<Value>,
}

/// Most files a batch may name.
const MAX_BATCH: usize = 500;

/// Add files to a vector store at once (files already there stay as they are).
#[utoipa::path(post, path = "/v1/vector_stores/{id}/file_batches", tag = "knowledge", request_body = NewBatch,
    responses((status = 200, body = FileBatch), (status = 400), (status = 401), (status = 404)))]
pub async fn create(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<String>,
    Json(body): Json<NewBatch>,
) -> Result<axum::Json<FileBatch>, ApiError> {
    let store = owned_store(&state, caller.org_id, &id).await?;
    if body.file_ids.is_empty() || body.file_ids.len() > MAX_BATCH {
        return Err(ApiError::Validation(format!(
            "file_ids must name 1 to {MAX_BATCH} files"
        )));
    }
    let strategy = chunking(body.chunking_strategy.as_ref())?;
    let attributes = body
        .attributes
        .filter(|a| !a.is_null())
        .unwrap_or_else(|| json!({}));
    let mut files = Vec::new();
    for id in &body.file_ids {
        let f = owned_file(&state, caller.org_id, id).await?;
        if !files
            .iter()
            .any(|known: &squadron_actors::store::entity::file::Model| known.id == f.id)
        {
            files.push(f);
        }
    }
    let ids: Vec<Uuid> = files.iter().map(|f| f.id).collect();
    let batch = kb::insert_batch(state.db(), store.id, &ids).await?;
    for file in files {
        if kb::store_file(state.db(), store.id, file.id)
            .await?
            .is_some()
        {
            continue;
        }
        let new = NewEntry {
            strategy,
            attributes: attributes.clone(),
            ..NewEntry::file(file)
        };
        add_file(&state, &store, new).await?;
    }
    let entries = kb::batch_entries(state.db(), &batch).await?;
    Ok(axum::Json(view(&batch, &entries)))
}

/// A file batch, with its files' counts.
#[utoipa::path(get, path = "/v1/vector_stores/{id}/file_batches/{batch_id}", tag = "knowledge",
    responses((status = 200, body = FileBatch), (status = 401), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path((id, batch)): Path<(String, String)>,
) -> Result<axum::Json<FileBatch>, ApiError> {
    let (_, batch) = owned_batch(&state, caller.org_id, &id, &batch).await?;
    let entries = kb::batch_entries(state.db(), &batch).await?;
    Ok(axum::Json(view(&batch, &entries)))
}

/// Cancel a batch: its files still being ingested stop.
#[utoipa::path(post, path = "/v1/vector_stores/{id}/file_batches/{batch_id}/cancel", tag = "knowledge",
    responses((status = 200, body = FileBatch), (status = 401), (status = 404)))]
pub async fn cancel_batch(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path((id, batch)): Path<(String, String)>,
) -> Result<axum::Json<FileBatch>, ApiError> {
    let (_, batch) = owned_batch(&state, caller.org_id, &id, &batch).await?;
    for entry in kb::batch_entries(state.db(), &batch).await? {
        if entry.status == "in_progress" {
            cancel(&state, &entry).await?;
        }
    }
    let entries = kb::batch_entries(state.db(), &batch).await?;
    Ok(axum::Json(view(&batch, &entries)))
}

/// The files of a batch (`filter` by status).
#[utoipa::path(get, path = "/v1/vector_stores/{id}/file_batches/{batch_id}/files", tag = "knowledge", params(ListQuery),
    responses((status = 200, body = CursorPage<VectorStoreFile>), (status = 400), (status = 401), (status = 404)))]
pub async fn files(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path((id, batch)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<CursorPage<VectorStoreFile>>, ApiError> {
    let (_, batch) = owned_batch(&state, caller.org_id, &id, &batch).await?;
    let page = query.page(None)?;
    let mut entries: Vec<vector_store_file::Model> = kb::batch_entries(state.db(), &batch)
        .await?
        .into_iter()
        .filter(|e| query.filter.as_deref().is_none_or(|s| e.status == s))
        .collect();
    if page.desc {
        entries.reverse();
    }
    if let Some(after) = &query.after {
        let after = parse_id(after, "file-", "file")?;
        if let Some(at) = entries.iter().position(|e| e.file_id == after) {
            entries.drain(..=at);
        }
    }
    entries.truncate(page.limit as usize + 1);
    Ok(super::list_of(entries, &page, file_view))
}
