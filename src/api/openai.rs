//! The envelopes of OpenAI-style replies (`/v1`): lists, cursor pages and deletions. Their
//! items are typed by the routes that return them, so the OpenAPI document names every field.

use serde::Serialize;
use utoipa::ToSchema;

/// `{"object": "list", "data": [...]}`.
#[derive(Serialize, ToSchema)]
pub struct List<T> {
    /// Always `list`.
    object: &'static str,
    data: Vec<T>,
}

pub fn list<T>(data: Vec<T>) -> axum::Json<List<T>> {
    axum::Json(List {
        object: "list",
        data,
    })
}

/// An item of a cursor page: its id is where the next page starts (`after`).
pub trait Identified {
    fn id(&self) -> &str;
}

/// One page of a cursor-paged list: `{"object": "list", "data", "first_id", "last_id", "has_more"}`.
#[derive(Serialize, ToSchema)]
pub struct CursorPage<T> {
    /// Always `list`.
    object: &'static str,
    data: Vec<T>,
    first_id: Option<String>,
    last_id: Option<String>,
    /// Whether items follow `last_id`.
    has_more: bool,
}

impl<T: Identified> CursorPage<T> {
    pub fn new(items: Vec<T>, has_more: bool) -> CursorPage<T> {
        CursorPage {
            object: "list",
            first_id: items.first().map(|i| i.id().to_owned()),
            last_id: items.last().map(|i| i.id().to_owned()),
            has_more,
            data: items,
        }
    }
}

/// `{"id", "object": "<kind>.deleted", "deleted": true}`.
#[derive(Serialize, ToSchema)]
pub struct Deleted {
    id: String,
    /// What was deleted, e.g. `file` or `vector_store.deleted`.
    object: &'static str,
    deleted: bool,
}

impl Deleted {
    pub fn new(id: String, object: &'static str) -> axum::Json<Deleted> {
        axum::Json(Deleted {
            id,
            object,
            deleted: true,
        })
    }
}
