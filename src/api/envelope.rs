//! The `{"data": ..., "meta": {...}}` envelope of Mission Control and SquadOS responses.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Meta {
    pub timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// For paginated lists: how many there are in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
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
        },
    })
}

/// A page of a longer list: `meta.count` on the page, `meta.total` in all.
pub fn page<T>(items: Vec<T>, total: u64) -> axum::Json<Data<Vec<T>>> {
    let axum::Json(mut data) = list(items);
    data.meta.total = Some(total);
    axum::Json(data)
}
