//! The seed's collections (`/v1/core/collections`): the account's vector stores by name, with
//! search, diagnostics (chunks, dimensions, index, failed or stuck files, orphaned chunks) and
//! recovery (failed and stuck ingests run again, orphans removed, the index rebuilt).

use std::time::Duration;

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};
use squadron_actors::knowledge::KnowledgeMsg;
use squadron_actors::store::entity::vector_store;
use squadron_actors::store::knowledge as kb;
use utoipa::ToSchema;
use uuid::Uuid;

use super::filters::Filter;
use super::vector_stores::{queries, search_store, view};
use super::{file_id, store_by_ref, store_id};
use crate::api::extract::{Json, Path};
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::state::AppState;

/// List the account's collections (its vector stores).
#[utoipa::path(get, path = "/v1/core/collections", tag = "knowledge",
    responses((status = 200, description = "the account's collections"), (status = 401)))]
pub async fn index(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
) -> Result<axum::Json<Value>, ApiError> {
    let mut data = Vec::new();
    for store in kb::all_stores(state.db(), caller.org_id)
        .await?
        .into_iter()
        .rev()
    {
        let chunks: i64 = kb::chunk_counts(state.db(), store.id).await?.values().sum();
        let mut v = view(&state, store).await?;
        v["chunks"] = json!(chunks);
        data.push(v);
    }
    Ok(axum::Json(json!({ "object": "list", "data": data })))
}

#[derive(Deserialize, ToSchema)]
pub struct CollectionSearch {
    /// A string, or an array of them.
    #[schema(value_type = Object)]
    query: Value,
    /// 1 to 50 (default 10).
    limit: Option<usize>,
    #[schema(value_type = Object)]
    filters: Option<Value>,
}

/// Search a collection.
#[utoipa::path(post, path = "/v1/core/collections/{name}/search", tag = "knowledge", request_body = CollectionSearch,
    responses((status = 200, description = "the best chunks"), (status = 400), (status = 401), (status = 404)))]
pub async fn search(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(name): Path<String>,
    Json(body): Json<CollectionSearch>,
) -> Result<axum::Json<Value>, ApiError> {
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
    let data: Vec<Value> = found
        .into_iter()
        .map(|f| {
            json!({ "file_id": file_id(f.file_id), "filename": f.filename, "score": f.score,
                    "text": f.text, "attributes": f.attributes })
        })
        .collect();
    Ok(axum::Json(
        json!({ "object": "list", "collection": store.name, "data": data }),
    ))
}

/// An ingest row counts as stuck when no job runs for it and it has not moved for this long.
const STUCK_AFTER: Duration = Duration::from_secs(60);

/// What is wrong with a collection, if anything.
struct Findings {
    store: vector_store::Model,
    failed: Vec<Value>,
    stuck: Vec<Uuid>,
    stuck_files: Vec<Value>,
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
            findings.failed.push(json!({ "file_id": file_id(e.file_id), "title": e.title, "last_error": e.last_error }));
        }
        if e.status == "in_progress" && !running.contains(&e.id) && e.updated_at < quiet_since {
            findings.stuck.push(e.id);
            findings
                .stuck_files
                .push(json!({ "file_id": file_id(e.file_id), "since": e.updated_at.timestamp() }));
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

async fn index_state(state: &AppState, dims: Option<i32>) -> Result<Value, ApiError> {
    let on_pg = state.db().get_database_backend() == sea_orm::DatabaseBackend::Postgres;
    Ok(match dims {
        None => {
            json!({ "kind": if on_pg { "hnsw" } else { "exact" }, "present": false, "note": "no vectors yet" })
        }
        Some(d) if on_pg => {
            json!({ "kind": "hnsw", "metric": "cosine", "present": kb::index_exists(state.db(), d as usize).await? })
        }
        Some(_) => json!({ "kind": "exact", "metric": "cosine", "present": true }),
    })
}

/// A collection's health: chunks, dimensions, index, failed and stuck files, orphaned chunks.
#[utoipa::path(get, path = "/v1/core/collections/{name}/diagnostics", tag = "knowledge",
    responses((status = 200, description = "the collection's health"), (status = 401), (status = 404)))]
pub async fn diagnostics(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(name): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let store = store_by_ref(&state, caller.org_id, &name).await?;
    let f = examine(&state, store).await?;
    let index = index_state(&state, f.store.dimensions).await?;
    let counts = kb::counts(state.db(), f.store.id).await?;
    let orphan_chunks: i64 = f.orphans.iter().map(|(_, n)| n).sum();
    Ok(axum::Json(json!({
        "collection": f.store.name,
        "id": store_id(f.store.id),
        "chunks": f.chunks,
        "dimensions": f.store.dimensions,
        "index": index,
        "files": {
            "in_progress": counts.in_progress, "completed": counts.completed,
            "failed": counts.failed, "cancelled": counts.cancelled, "total": counts.total(),
        },
        "failed": f.failed,
        "stuck": f.stuck_files,
        "orphans": {
            "chunks": orphan_chunks,
            "files": f.orphans.iter().map(|(id, _)| file_id(*id)).collect::<Vec<_>>(),
        },
        "healthy": f.failed.is_empty() && f.stuck.is_empty() && f.orphans.is_empty()
            && index["present"] != false,
    })))
}

/// Run failed and stuck ingests again, remove orphaned chunks and rebuild the index.
#[utoipa::path(post, path = "/v1/core/collections/{name}/recover", tag = "knowledge",
    responses((status = 200, description = "what was done"), (status = 401), (status = 404)))]
pub async fn recover(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(name): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
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
        kb::clear_chunks(state.db(), f.store.id, *file).await?;
        removed += n;
    }
    let rebuilt = match f.store.dimensions {
        Some(d) => kb::rebuild_index(state.db(), d as usize).await?,
        None => false,
    };
    Ok(axum::Json(json!({
        "collection": f.store.name,
        "restarted": restarted,
        "orphan_chunks_removed": removed,
        "index_rebuilt": rebuilt,
    })))
}
