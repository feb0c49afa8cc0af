//! The seed's collections (`/v1/core/collections`): the account's vector stores by name, with
//! search, diagnostics (chunks, dimensions, index, failed or stuck files, orphaned chunks) and
//! recovery (failed and stuck ingests run again, orphans removed, the index rebuilt).

use std::time::Duration;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use squadron_actors::knowledge::KnowledgeMsg;
use squadron_actors::store::entity::vector_store;
use squadron_actors::store::knowledge as kb;
use utoipa::ToSchema;
use uuid::Uuid;

use super::filters::Filter;
use super::vector_stores::{queries, search_store, view, VectorStore};
use super::{file_id, store_by_ref, store_id, FileCounts, LastError, Queries};
use crate::api::extract::{Json, Path};
use crate::api::openai::{list, List};
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::state::AppState;

/// A collection: a vector store and how many chunks it holds.
#[derive(Serialize, ToSchema)]
pub struct Collection {
    #[serde(flatten)]
    store: VectorStore,
    chunks: i64,
}

/// List the account's collections (its vector stores).
#[utoipa::path(get, path = "/v1/core/collections", tag = "knowledge",
    responses((status = 200, body = List<Collection>), (status = 401)))]
pub async fn index(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
) -> Result<axum::Json<List<Collection>>, ApiError> {
    let mut data = Vec::new();
    for store in kb::all_stores(state.db(), caller.org_id)
        .await?
        .into_iter()
        .rev()
    {
        let chunks: i64 = kb::chunk_counts(state.db(), store.id).await?.values().sum();
        data.push(Collection {
            store: view(&state, store).await?,
            chunks,
        });
    }
    Ok(list(data))
}

#[derive(Deserialize, ToSchema)]
pub struct CollectionSearch {
    #[schema(value_type = Queries)]
    query: Value,
    /// Default 10.
    #[schema(minimum = 1, maximum = 50)]
    limit: Option<usize>,
    /// An attribute filter, as for a vector store's search.
    #[schema(value_type = Option<Object>)]
    filters: Option<Value>,
}

/// A collection's best chunks.
#[derive(Serialize, ToSchema)]
pub struct Hits {
    /// Always `list`.
    object: &'static str,
    collection: String,
    data: Vec<Hit>,
}

#[derive(Serialize, ToSchema)]
pub struct Hit {
    file_id: String,
    filename: String,
    score: f32,
    text: String,
    #[schema(value_type = Object)]
    attributes: Value,
}

/// Search a collection.
#[utoipa::path(post, path = "/v1/core/collections/{name}/search", tag = "knowledge", request_body = CollectionSearch,
    responses((status = 200, body = Hits), (status = 400), (status = 401), (status = 404)))]
pub async fn search(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(name): Path<String>,
    Json(body): Json<CollectionSearch>,
) -> Result<axum::Json<Hits>, ApiError> {
    let store = store_by_ref(&state, caller.org_id, &name).await?;
    let limit = body.limit.unwrap_or(10);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::Validation(
            "limit must be between 1 and 50".into(),
        ));
    }
    let filter = Filter::optional(body.filters.as_ref())?;
    let found = search_store(
        &state,
        &store,
        queries(&body.query)?,
        limit,
        filter.as_ref(),
        0.0,
    )
    .await?;
    let data = found
        .into_iter()
        .map(|f| Hit {
            file_id: file_id(f.file_id),
            filename: f.filename,
            score: f.score,
            text: f.text,
            attributes: f.attributes,
        })
        .collect();
    Ok(axum::Json(Hits {
        object: "list",
        collection: store.name,
        data,
    }))
}

/// An ingest row counts as stuck when no job runs for it and it has not moved for this long.
const STUCK_AFTER: Duration = Duration::from_secs(60);

/// A file whose ingest failed.
#[derive(Serialize, ToSchema)]
pub struct FailedFile {
    file_id: String,
    title: String,
    #[schema(value_type = Option<LastError>)]
    last_error: Option<Value>,
}

/// A file whose ingest has not moved for a minute with no job running for it.
#[derive(Serialize, ToSchema)]
pub struct StuckFile {
    file_id: String,
    /// When it last moved (Unix seconds).
    since: i64,
}

/// What is wrong with a collection, if anything.
struct Findings {
    store: vector_store::Model,
    failed: Vec<FailedFile>,
    stuck: Vec<Uuid>,
    stuck_files: Vec<StuckFile>,
    /// Files whose chunks are in the store without a place in it (or after a failure or a
    /// cancellation), with their chunk counts.
    orphans: Vec<(Uuid, i64)>,
    chunks: i64,
}

async fn examine(state: &AppState, store: vector_store::Model) -> Result<Findings, ApiError> {
    let entries = kb::all_store_files(state.db(), store.id).await?;
    let counts = kb::chunk_counts(state.db(), store.id).await?;
    let running: Vec<Uuid> = state
        .knowledge
        .call(KnowledgeMsg::Running, Some(Duration::from_secs(5)))
        .await
        .ok()
        .and_then(|r| r.success_or(()).ok())
        .unwrap_or_default();
    let quiet_since = chrono::Utc::now() - STUCK_AFTER;
    let mut findings = Findings {
        failed: Vec::new(),
        stuck: Vec::new(),
        stuck_files: Vec::new(),
        orphans: Vec::new(),
        chunks: counts.values().sum(),
        store,
    };
    for e in &entries {
        if e.status == "failed" {
            findings.failed.push(FailedFile {
                file_id: file_id(e.file_id),
                title: e.title.clone(),
                last_error: e.last_error.clone(),
            });
        }
        if e.status == "in_progress" && !running.contains(&e.id) && e.updated_at < quiet_since {
            findings.stuck.push(e.id);
            findings.stuck_files.push(StuckFile {
                file_id: file_id(e.file_id),
                since: e.updated_at.timestamp(),
            });
        }
    }
    for (file, n) in counts {
        let kept = entries
            .iter()
            .any(|e| e.file_id == file && matches!(e.status.as_str(), "completed" | "in_progress"));
        if !kept {
            findings.orphans.push((file, n));
        }
    }
    Ok(findings)
}

/// The vector index a collection's searches use.
#[derive(Serialize, ToSchema)]
pub struct IndexState {
    /// `hnsw` (pgvector) or `exact` (the embedded index).
    kind: &'static str,
    /// `cosine`, once there are vectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    metric: Option<&'static str>,
    present: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
}

async fn index_state(state: &AppState, dims: Option<i32>) -> Result<IndexState, ApiError> {
    let on_pg = state.db().get_database_backend() == sea_orm::DatabaseBackend::Postgres;
    let kind = if on_pg { "hnsw" } else { "exact" };
    Ok(match dims {
        None => IndexState {
            kind,
            metric: None,
            present: false,
            note: Some("no vectors yet"),
        },
        Some(d) => IndexState {
            kind,
            metric: Some("cosine"),
            present: !on_pg || kb::index_exists(state.db(), d as usize).await?,
            note: None,
        },
    })
}

/// A collection's health.
#[derive(Serialize, ToSchema)]
pub struct Health {
    collection: String,
    id: String,
    chunks: i64,
    dimensions: Option<i32>,
    index: IndexState,
    files: FileCounts,
    failed: Vec<FailedFile>,
    stuck: Vec<StuckFile>,
    orphans: Orphans,
    /// No failed, stuck or orphaned files, and an index with vectors.
    healthy: bool,
}

/// Chunks in the store of files that are not (or no longer) in it.
#[derive(Serialize, ToSchema)]
pub struct Orphans {
    chunks: i64,
    files: Vec<String>,
}

/// A collection's health: chunks, dimensions, index, failed and stuck files, orphaned chunks.
#[utoipa::path(get, path = "/v1/core/collections/{name}/diagnostics", tag = "knowledge",
    responses((status = 200, body = Health), (status = 401), (status = 404)))]
pub async fn diagnostics(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(name): Path<String>,
) -> Result<axum::Json<Health>, ApiError> {
    let store = store_by_ref(&state, caller.org_id, &name).await?;
    let f = examine(&state, store).await?;
    let index = index_state(&state, f.store.dimensions).await?;
    let counts = kb::counts(state.db(), f.store.id).await?;
    let orphan_chunks: i64 = f.orphans.iter().map(|(_, n)| n).sum();
    let healthy = f.failed.is_empty() && f.stuck.is_empty() && f.orphans.is_empty();
    Ok(axum::Json(Health {
        collection: f.store.name,
        id: store_id(f.store.id),
        chunks: f.chunks,
        dimensions: f.store.dimensions,
        healthy: healthy && index.present,
        index,
        files: FileCounts::from(&counts),
        failed: f.failed,
        stuck: f.stuck_files,
        orphans: Orphans {
            chunks: orphan_chunks,
            files: f.orphans.iter().map(|(id, _)| file_id(*id)).collect(),
        },
    }))
}

/// What a recovery did.
#[derive(Serialize, ToSchema)]
pub struct Recovery {
    collection: String,
    /// Failed and stuck ingests started again.
    restarted: u64,
    orphan_chunks_removed: i64,
    index_rebuilt: bool,
}

/// Run failed and stuck ingests again, remove orphaned chunks and rebuild the index.
#[utoipa::path(post, path = "/v1/core/collections/{name}/recover", tag = "knowledge",
    responses((status = 200, body = Recovery), (status = 401), (status = 404)))]
pub async fn recover(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(name): Path<String>,
) -> Result<axum::Json<Recovery>, ApiError> {
    let store = store_by_ref(&state, caller.org_id, &name).await?;
    let f = examine(&state, store).await?;
    let mut restarted = 0;
    let failed = kb::all_store_files(state.db(), f.store.id)
        .await?
        .into_iter()
        .filter(|e| e.status == "failed")
        .map(|e| e.id);
    for id in failed.chain(f.stuck.iter().copied()) {
        kb::restart_store_file(state.db(), id).await?;
        state
            .knowledge
            .cast(KnowledgeMsg::Ingest(id))
            .map_err(|_| ApiError::Unavailable("the server is shutting down".into()))?;
        restarted += 1;
    }
    let mut removed = 0;
    for (file, n) in &f.orphans {
        kb::clear_chunks(state.db(), state.vectors(), f.store.id, *file).await?;
        removed += n;
    }
    let rebuilt = match f.store.dimensions {
        Some(d) => kb::rebuild_index(state.db(), d as usize).await?,
        None => false,
    };
    Ok(axum::Json(Recovery {
        collection: f.store.name,
        restarted,
        orphan_chunks_removed: removed,
        index_rebuilt: rebuilt,
    }))
}
