//! Knowledge in OpenAI's shapes (`/v1/files`, `/v1/vector_stores`) and the seed's extras
//! (`cancel`, `file-details`, `user-collections`). Ids are OpenAI-style: `file-…` and `vs_…`
//! around our UUIDs.

pub mod batches;
pub mod collections;
pub mod consult;
pub mod files;
pub mod filters;
pub mod vector_stores;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use squadron_actors::store::knowledge::{Counts, Page};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::openai::{CursorPage, Identified};
use crate::error::ApiError;

pub use squadron_actors::knowledge::{file_id, store_id};

/// Our UUID in an OpenAI-style id (the bare UUID works too); anything else is a 404 of `what`.
pub fn parse_id(id: &str, prefix: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(id.strip_prefix(prefix).unwrap_or(id)).map_err(|_| ApiError::not_found(what))
}

/// The account's vector store called `reference` (the oldest of that name), or with that id.
pub async fn store_by_ref(
    state: &crate::state::AppState,
    org_id: Uuid,
    reference: &str,
) -> Result<squadron_actors::store::entity::vector_store::Model, ApiError> {
    use squadron_actors::store::knowledge as kb;
    if let Some(store) = kb::store_by_name(state.db(), org_id, reference).await? {
        return Ok(store);
    }
    let id = parse_id(reference, "vs_", "vector store")?;
    kb::store(state.db(), org_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no vector store {reference:?} in this account")))
}

/// OpenAI's list parameters.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 100 (default 20).
    pub limit: Option<u64>,
    /// `asc` or `desc` (default) by creation time.
    pub order: Option<String>,
    /// The id of the item to continue after.
    pub after: Option<String>,
    /// Files only: their purpose.
    pub purpose: Option<String>,
    /// Files in a store only: `in_progress`, `completed`, `failed` or `cancelled`.
    pub filter: Option<String>,
}

impl ListQuery {
    /// The page, given where `after` sits (looked up by the caller).
    pub fn page(
        &self,
        after: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
    ) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::Validation(
                "limit must be between 1 and 100".into(),
            ));
        }
        let desc = match self.order.as_deref() {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(other) => {
                return Err(ApiError::Validation(format!(
                    "order must be asc or desc, not {other:?}"
                )))
            }
        };
        Ok(Page { after, limit, desc })
    }
}

/// OpenAI's list object from one more item than the page holds.
pub fn list_of<M, T: Identified>(
    mut items: Vec<M>,
    page: &Page,
    view: impl Fn(M) -> T,
) -> axum::Json<CursorPage<T>> {
    let has_more = items.len() as u64 > page.limit;
    items.truncate(page.limit as usize);
    axum::Json(CursorPage::new(
        items.into_iter().map(view).collect(),
        has_more,
    ))
}

/// How many of a store's (or a batch's) files are at each stage of their ingest.
#[derive(Serialize, ToSchema, Clone, Copy)]
pub struct FileCounts {
    pub in_progress: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub total: i64,
}

impl From<&Counts> for FileCounts {
    fn from(c: &Counts) -> FileCounts {
        FileCounts {
            in_progress: c.in_progress,
            completed: c.completed,
            failed: c.failed,
            cancelled: c.cancelled,
            total: c.total(),
        }
    }
}

// What the requests' and replies' free-form JSON fields hold, for the OpenAPI document: the
// handlers read these fields as JSON and check them (with errors that name the field).

/// `{"type": "auto"}`, or `{"type": "static", "static": {...}}` with both sizes in tokens.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ChunkingStrategy {
    Auto,
    Static { r#static: StaticChunking },
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct StaticChunking {
    #[schema(minimum = 100, maximum = 4096)]
    max_chunk_size_tokens: u32,
    /// At most half the chunk size.
    #[schema(minimum = 0)]
    chunk_overlap_tokens: u32,
}

/// When a store expires: `days` after it was last active.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ExpiresAfter {
    /// `last_active_at`.
    anchor: String,
    #[schema(minimum = 1, maximum = 365)]
    days: u32,
}

/// OpenAI's `metadata`: up to 16 pairs, keys up to 64 characters, values up to 512.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Metadata(std::collections::HashMap<String, String>);

/// A search query: one string or 1 to 10 of them.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum Queries {
    One(String),
    Many(Vec<String>),
}

/// Why an ingest failed.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct LastError {
    code: String,
    message: String,
}

/// OpenAI's `metadata`: up to 16 string pairs, keys up to 64 characters, values up to 512.
pub fn check_metadata(metadata: &Value) -> Result<(), ApiError> {
    let bad = |m: &str| Err(ApiError::Validation(format!("metadata {m}")));
    let Some(map) = metadata.as_object() else {
        return bad("must be an object");
    };
    if map.len() > 16 {
        return bad("may hold at most 16 pairs");
    }
    for (key, value) in map {
        if key.chars().count() > 64 {
            return bad("keys may be at most 64 characters");
        }
        match value.as_str() {
            Some(v) if v.chars().count() <= 512 => {}
            Some(_) => return bad("values may be at most 512 characters"),
            None => return bad("values must be strings"),
        }
    }
    Ok(())
}
