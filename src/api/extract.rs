//! Extractors whose rejections are our errors: a malformed body or path is a 400 in the
//! family's shape, never axum's plain-text default.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;

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

/// Like `axum::extract::Multipart`, but a request that is not a multipart form (no boundary,
/// another content type) is a 400 in our shape.
pub struct Multipart(pub axum::extract::Multipart);

impl<S: Send + Sync> FromRequest<S> for Multipart {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Multipart::from_request(req, state).await {
            Ok(form) => Ok(Multipart(form)),
            Err(rejection) => Err(ApiError::Validation(format!(
                "expected a multipart/form-data body: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// Like `axum::extract::Path`, but a malformed id is a 400 in our shape.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(ApiError::Validation(rejection.body_text())),
        }
    }
}

/// Like `axum::extract::Query`, but a malformed query string is a 400 in our shape.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(ApiError::Validation(rejection.body_text())),
        }
    }
}

/// For `#[serde(default, deserialize_with = "double_option")]`: tells an absent field
/// (`None`) from an explicit `null` (`Some(None)`), so a PATCH can clear a value.
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
