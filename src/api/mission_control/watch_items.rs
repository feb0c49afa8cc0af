//! Watch items: things outside the squad that it keeps an eye on.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use squadron_actors::domain::{self, WatchStatus};
use squadron_actors::squad::{SquadMsg, WatchFields};
use squadron_actors::store;
use utoipa::ToSchema;
use uuid::Uuid;

use super::views::WatchItemView;
use crate::api::envelope::{self, data, Data, PageQuery};
use crate::api::extract::{double_option, Json, Path, Query};
use crate::auth::SquadCaller;
use crate::error::ApiError;
use crate::state::AppState;

/// The squad's watch items, newest first: 100 a page by default, at most 500.
#[utoipa::path(get, path = "/api/watch-items", tag = "watch items", params(PageQuery),
    responses((status = 200, body = Data<Vec<WatchItemView>>), (status = 400), (status = 401)))]
pub async fn index(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<Data<Vec<WatchItemView>>>, ApiError> {
    let window = page.window(100, 500)?;
    let (items, total) = store::content::watch_items(state.db(), caller.squad_id, window).await?;
    Ok(envelope::page(
        items.into_iter().map(WatchItemView::from).collect(),
        total,
        window,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchItemInput {
    title: Option<String>,
    description: Option<String>,
    /// watching (default), triggered or resolved
    status: Option<String>,
    /// An http(s) URL; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    url: Option<Option<String>>,
}

fn url(raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    let ok = (raw.starts_with("https://") || raw.starts_with("http://"))
        && raw.len() <= 2_000
        && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(ApiError::Validation(
            "url must be an http(s) URL of at most 2000 characters".into(),
        ));
    }
    Ok(raw.to_owned())
}

impl WatchItemInput {
    fn parse(self) -> Result<WatchFields, ApiError> {
        Ok(WatchFields {
            title: self
                .title
                .as_deref()
                .map(|t| domain::title("title", t, 200))
                .transpose()?,
            description: self
                .description
                .as_deref()
                .map(|d| domain::text("description", d, 5_000))
                .transpose()?,
            status: self.status.as_deref().map(WatchStatus::parse).transpose()?,
            url: self
                .url
                .map(|u| u.as_deref().map(url).transpose())
                .transpose()?,
        })
    }
}

/// Start watching something (`title` required).
#[utoipa::path(post, path = "/api/watch-items", tag = "watch items", request_body = WatchItemInput,
    responses((status = 201, body = Data<WatchItemView>), (status = 400), (status = 401)))]
pub async fn create(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Json(body): Json<WatchItemInput>,
) -> Result<(StatusCode, axum::Json<Data<WatchItemView>>), ApiError> {
    let fields = body.parse()?;
    if fields.title.is_none() {
        return Err(ApiError::Validation("title is required".into()));
    }
    let by = caller.author.clone();
    let item = state
        .core
        .call_squad(caller.squad_id, |reply| {
            SquadMsg::SaveWatchItem(by.clone(), None, fields.clone(), reply)
        })
        .await??;
    Ok((StatusCode::CREATED, data(WatchItemView::from(item))))
}

/// A watch item.
#[utoipa::path(get, path = "/api/watch-items/{id}", tag = "watch items", params(("id" = Uuid, Path)),
    responses((status = 200, body = Data<WatchItemView>), (status = 401), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Data<WatchItemView>>, ApiError> {
    let item = store::content::watch_item(state.db(), caller.squad_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("watch item"))?;
    Ok(data(WatchItemView::from(item)))
}

/// Change a watch item; fields left out stay as they are.
#[utoipa::path(patch, path = "/api/watch-items/{id}", tag = "watch items", params(("id" = Uuid, Path)),
    request_body = WatchItemInput,
    responses((status = 200, body = Data<WatchItemView>), (status = 400), (status = 401), (status = 404)))]
pub async fn update(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Path(id): Path<Uuid>,
    Json(body): Json<WatchItemInput>,
) -> Result<axum::Json<Data<WatchItemView>>, ApiError> {
    let fields = body.parse()?;
    let by = caller.author.clone();
    let item = state
        .core
        .call_squad(caller.squad_id, |reply| {
            SquadMsg::SaveWatchItem(by.clone(), Some(id), fields.clone(), reply)
        })
        .await??;
    Ok(data(WatchItemView::from(item)))
}

/// Stop watching.
#[utoipa::path(delete, path = "/api/watch-items/{id}", tag = "watch items", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    SquadCaller(caller): SquadCaller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let by = caller.author.clone();
    state
        .core
        .call_squad(caller.squad_id, |reply| {
            SquadMsg::DeleteWatchItem(by.clone(), id, reply)
        })
        .await??;
    Ok(StatusCode::NO_CONTENT)
}
