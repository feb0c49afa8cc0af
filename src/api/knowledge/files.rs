//! `/v1/files`: uploads streamed into the object store (never held whole in memory), their
//! listing, metadata, content and deletion.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, WriteMultipart};
use serde::{Deserialize, Serialize};
use squadron_actors::knowledge::KnowledgeMsg;
use squadron_actors::store::entity::file;
use squadron_actors::store::knowledge as kb;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{file_id, list_of, parse_id, ListQuery};
use crate::api::extract::{Multipart, Path, Query};
use crate::api::openai::{CursorPage, Deleted, Identified};
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::state::AppState;

const PURPOSES: [&str; 6] = [
    "assistants",
    "batch",
    "fine-tune",
    "vision",
    "user_data",
    "evals",
];

/// OpenAI's file object.
#[derive(Serialize, ToSchema)]
pub struct FileObject {
    id: String,
    /// Always `file`.
    object: &'static str,
    bytes: i64,
    created_at: i64,
    filename: String,
    purpose: String,
    /// Always `processed`: a file is stored whole before its reply.
    status: &'static str,
    /// Files do not expire.
    expires_at: Option<i64>,
}

impl Identified for FileObject {
    fn id(&self) -> &str {
        &self.id
    }
}

pub fn view(f: file::Model) -> FileObject {
    FileObject {
        id: file_id(f.id),
        object: "file",
        bytes: f.bytes,
        created_at: f.created_at.timestamp(),
        filename: f.filename,
        purpose: f.purpose,
        status: "processed",
        expires_at: None,
    }
}

/// The multipart form of an upload.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Upload {
    /// The file's bytes; its name in the part's `filename`.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    purpose: Purpose,
}

/// What a file is for (OpenAI's purposes).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub enum Purpose {
    #[serde(rename = "assistants")]
    Assistants,
    #[serde(rename = "batch")]
    Batch,
    #[serde(rename = "fine-tune")]
    FineTune,
    #[serde(rename = "vision")]
    Vision,
    #[serde(rename = "user_data")]
    UserData,
    #[serde(rename = "evals")]
    Evals,
}

/// The account's file `id`, or a 404.
pub async fn owned_file(state: &AppState, org_id: Uuid, id: &str) -> Result<file::Model, ApiError> {
    let id = parse_id(id, "file-", "file")?;
    kb::file(state.db(), org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))
}

/// Where a file's bytes live in the object store.
fn object_key(org_id: Uuid, id: Uuid) -> String {
    format!("files/{}/{}", org_id, id.simple())
}

/// Stores a small file given whole (a knowledge base item's text): its bytes, then its row.
pub async fn put_file(
    state: &AppState,
    org_id: Uuid,
    filename: &str,
    bytes: Vec<u8>,
) -> Result<file::Model, ApiError> {
    let id = Uuid::new_v4();
    let key = object_key(org_id, id);
    let size = bytes.len() as i64;
    state
        .objects
        .put(&ObjectPath::from(key.as_str()), bytes.into())
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let row = file::Model {
        id,
        org_id,
        filename: filename.to_owned(),
        purpose: "assistants".into(),
        bytes: size,
        object_key: key,
        created_at: Utc::now(),
    };
    Ok(kb::insert_file(state.db(), row).await?)
}

/// Replaces a small file's bytes (a knowledge base item's new text).
pub async fn replace_file(
    state: &AppState,
    f: &file::Model,
    bytes: Vec<u8>,
) -> Result<(), ApiError> {
    let size = bytes.len() as i64;
    state
        .objects
        .put(&ObjectPath::from(f.object_key.as_str()), bytes.into())
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    kb::set_file_bytes(state.db(), f.id, size).await?;
    Ok(())
}

/// Deletes a file's row (and its places in stores, their jobs stopped), then its bytes.
pub async fn remove_file(state: &AppState, f: &file::Model) -> Result<(), ApiError> {
    for entry in kb::entries_of_file(state.db(), f.id).await? {
        let _ = state.knowledge.cast(KnowledgeMsg::Cancel(entry.id));
    }
    kb::delete_file(state.db(), state.vectors(), f.id).await?;
    if let Err(err) = state
        .objects
        .delete(&ObjectPath::from(f.object_key.as_str()))
        .await
    {
        tracing::warn!(file = %f.id, error = %err, "a deleted file's bytes stayed in the object store");
    }
    Ok(())
}

fn bad_form(err: axum::extract::multipart::MultipartError) -> ApiError {
    if err.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge("the upload is larger than this server's file limit".into());
    }
    ApiError::Validation(format!("malformed multipart body: {}", err.body_text()))
}

/// Upload a file (multipart: `file` and `purpose`).
#[utoipa::path(post, path = "/v1/files", tag = "knowledge",
    request_body(content = Upload, content_type = "multipart/form-data"),
    responses((status = 200, body = FileObject), (status = 400), (status = 401), (status = 413)))]
pub async fn upload(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Multipart(mut form): Multipart,
) -> Result<axum::Json<FileObject>, ApiError> {
    let id = Uuid::new_v4();
    let key = object_key(caller.org_id, id);
    let path = ObjectPath::from(key.as_str());
    let mut purpose = None;
    let mut stored: Option<(String, i64)> = None;
    let result: Result<(), ApiError> = async {
        while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
            match field.name() {
                Some("purpose") => purpose = Some(field.text().await.map_err(bad_form)?),
                Some("file") if stored.is_none() => {
                    let filename = field
                        .file_name()
                        .map(str::to_owned)
                        .filter(|n| !n.trim().is_empty())
                        .unwrap_or_else(|| "upload".into());
                    let upload = state
                        .objects
                        .put_multipart(&path)
                        .await
                        .map_err(|e| ApiError::Internal(e.into()))?;
                    let mut writer = WriteMultipart::new(upload);
                    let mut bytes = 0i64;
                    let copied: Result<(), ApiError> = async {
                        while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                            bytes += chunk.len() as i64;
                            if bytes as u64 > state.config.max_file_bytes {
                                return Err(ApiError::TooLarge(format!(
                                    "files may be at most {} bytes",
                                    state.config.max_file_bytes
                                )));
                            }
                            writer
                                .wait_for_capacity(4)
                                .await
                                .map_err(|e| ApiError::Internal(e.into()))?;
                            writer.write(&chunk);
                        }
                        Ok(())
                    }
                    .await;
                    match copied {
                        Ok(()) => {
                            writer
                                .finish()
                                .await
                                .map_err(|e| ApiError::Internal(e.into()))?;
                        }
                        Err(err) => {
                            let _ = writer.abort().await;
                            return Err(err);
                        }
                    }
                    stored = Some((filename, bytes));
                }
                _ => {}
            }
        }
        Ok(())
    }
    .await;
    let forget = || async {
        let _ = state.objects.delete(&path).await;
    };
    if let Err(err) = result {
        forget().await;
        return Err(err);
    }
    let Some((filename, bytes)) = stored else {
        return Err(ApiError::Validation("the form has no `file` field".into()));
    };
    let purpose = match purpose.as_deref().map(str::trim) {
        Some(p) if PURPOSES.contains(&p) => p.to_owned(),
        other => {
            forget().await;
            return Err(ApiError::Validation(match other {
                None => "purpose is required".into(),
                Some(p) => format!("purpose must be one of {}, not {p:?}", PURPOSES.join(", ")),
            }));
        }
    };
    let row = file::Model {
        id,
        org_id: caller.org_id,
        filename,
        purpose,
        bytes,
        object_key: key,
        created_at: Utc::now(),
    };
    match kb::insert_file(state.db(), row).await {
        Ok(row) => {
            metrics::counter!("squadron_files_uploaded_bytes_total").increment(bytes as u64);
            Ok(axum::Json(view(row)))
        }
        Err(err) => {
            forget().await;
            Err(err.into())
        }
    }
}

/// List the account's files.
#[utoipa::path(get, path = "/v1/files", tag = "knowledge", params(ListQuery),
    responses((status = 200, body = CursorPage<FileObject>), (status = 400), (status = 401), (status = 404, description = "The `after` cursor names no file")))]
pub async fn index(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<CursorPage<FileObject>>, ApiError> {
    let after = match &query.after {
        Some(after) => {
            let f = owned_file(&state, caller.org_id, after).await?;
            Some((f.created_at, f.id))
        }
        None => None,
    };
    let page = query.page(after)?;
    let files = kb::files(state.db(), caller.org_id, query.purpose.as_deref(), &page).await?;
    Ok(list_of(files, &page, view))
}

/// A file's metadata.
#[utoipa::path(get, path = "/v1/files/{id}", tag = "knowledge",
    responses((status = 200, body = FileObject), (status = 401), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<FileObject>, ApiError> {
    Ok(axum::Json(view(
        owned_file(&state, caller.org_id, &id).await?,
    )))
}

/// Delete a file: from every vector store too, its chunks with it.
#[utoipa::path(delete, path = "/v1/files/{id}", tag = "knowledge",
    responses((status = 200, body = Deleted), (status = 401), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<Deleted>, ApiError> {
    let f = owned_file(&state, caller.org_id, &id).await?;
    remove_file(&state, &f).await?;
    Ok(Deleted::new(file_id(f.id), "file"))
}

/// A file's bytes, streamed from the object store.
#[utoipa::path(get, path = "/v1/files/{id}/content", tag = "knowledge",
    responses((status = 200, description = "the file's bytes", content_type = "application/octet-stream"), (status = 401), (status = 404)))]
pub async fn content(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let f = owned_file(&state, caller.org_id, &id).await?;
    let got = state
        .objects
        .get(&ObjectPath::from(f.object_key.as_str()))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let stream = got.into_stream().map_err(std::io::Error::other);
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, f.bytes.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
