//! The `{"data": ..., "meta": {...}}` envelope of Mission Control and SquadOS responses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use squadron_actors::store::Window;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

#[derive(Serialize, ToSchema)]
pub struct Meta {
    pub timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// For paginated lists: how many there are in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// For paginated lists: whether items follow this page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_more: Option<bool>,
    /// For lists of lists (the board's columns): how many each holds in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totals: Option<std::collections::BTreeMap<String, u64>>,
}

/// `{"data": ..., "meta": {...}}`.
#[derive(Serialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
    pub meta: Meta,
}

pub fn data<T>(data: T) -> axum::Json<Data<T>> {
    axum::Json(Data {
        data,
        meta: Meta {
            timestamp: Utc::now(),
            count: None,
            total: None,
            has_more: None,
            totals: None,
        },
    })
}

pub fn list<T>(items: Vec<T>) -> axum::Json<Data<Vec<T>>> {
    let count = Some(items.len());
    axum::Json(Data {
        data: items,
        meta: Meta {
            timestamp: Utc::now(),
            count,
            total: None,
            has_more: None,
            totals: None,
        },
    })
}

/// A page of a longer list: `meta.count` on the page, `meta.total` in all, `meta.has_more`
/// whether a next page (at `offset + count`) holds more.
pub fn page<T>(items: Vec<T>, total: u64, window: Window) -> axum::Json<Data<Vec<T>>> {
    let axum::Json(mut data) = list(items);
    let seen = window.offset.saturating_add(data.data.len() as u64);
    data.meta.total = Some(total);
    data.meta.has_more = Some(seen < total);
    axum::Json(data)
}

/// `limit` and `offset` of a paged list. Each list route states its default and maximum
/// page size; `offset` may be anything the database can count to.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items to return (the route's default and maximum apply).
    pub limit: Option<u64>,
    /// How many items to skip (default 0).
    pub offset: Option<u64>,
}

impl PageQuery {
    /// The window this query asks for, or a 400 naming the parameter that is out of range.
    pub fn window(&self, default: u64, max: u64) -> Result<Window, ApiError> {
        let limit = self.limit.unwrap_or(default);
        if !(1..=max).contains(&limit) {
            return Err(ApiError::Validation(format!(
                "limit must be 1 to {max}, not {limit}"
            )));
        }
        let offset = self.offset.unwrap_or(0);
        if offset > i64::MAX as u64 {
            return Err(ApiError::Validation(format!(
                "offset must be at most {}, not {offset}",
                i64::MAX
            )));
        }
        Ok(Window { limit, offset })
    }
}
