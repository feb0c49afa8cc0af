//! Knowledge in OpenAI's shapes (`/v1/files`, `/v1/vector_stores`) and the seed's extras
//! (`cancel`, `file-details`, `user-collections`). Ids are OpenAI-style: `file-…` and `vs_…`
//! around our UUIDs.

pub mod batches;
pub mod collections;
pub mod consult;
pub mod files;
pub mod filters;
pub mod vector_stores;

use serde::Deserialize;
use serde_json::{json, Value};
use squadron_actors::store::knowledge::Page;
use utoipa::IntoParams;
use uuid::Uuid;

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
pub fn list_of<T>(mut items: Vec<T>, page: &Page, view: impl Fn(T) -> Value) -> Value {
    let has_more = items.len() as u64 > page.limit;
    items.truncate(page.limit as usize);
    let data: Vec<Value> = items.into_iter().map(view).collect();
    json!({
        "object": "list",
        "first_id": data.first().map(|v| v["id"].clone()),
        "last_id": data.last().map(|v| v["id"].clone()),
        "has_more": has_more,
        "data": data,
    })
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
