//! Request and response JSON: an extractor whose rejections are our errors, and the
//! `{data, meta}` envelope of Mission Control and SquadOS.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;

/// The body limit of the route's family, for error messages (set beside `DefaultBodyLimit`).
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Like `axum::Json`, but malformed, mistyped or oversized bodies become a 400 in our shape,
/// with a message that names the problem.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let limit = req.extensions().get::<BodyLimit>().copied();
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(ApiError::Validation(describe(&rejection, limit))),
        }
    }
}

fn describe(rejection: &JsonRejection, limit: Option<BodyLimit>) -> String {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "expected a JSON body with `Content-Type: application/json`".into()
        }
        r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => match limit {
            Some(BodyLimit(bytes)) => {
                format!("request body is larger than this route's limit of {bytes} bytes")
            }
            None => "request body is larger than this route's limit".into(),
        },
        JsonRejection::JsonDataError(e) => format!("invalid request body: {}", e.body_text()),
        JsonRejection::JsonSyntaxError(e) => format!("malformed JSON: {}", e.body_text()),
        other => other.body_text(),
    }
}

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
