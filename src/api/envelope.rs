//! The `{"data": ..., "meta": {...}}` envelope of Mission Control and SquadOS responses.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Meta {
    pub timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
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
        },
    })
}
