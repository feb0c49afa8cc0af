//! SquadOS organization API tokens: generate (shown once), list, revoke, delete. Admins only.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use squadron_actors::store::entity::api_token;
use squadron_actors::store::tokens::{self, Role, TokenFormat};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::envelope::{data, list, Data};
use crate::api::extract::{Json, Path};
use crate::auth::AdminAuth;
use crate::caches::Change;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A descriptive label, e.g. "Marketing site integration".
    name: String,
    /// `member` (default) or `admin`.
    #[serde(default)]
    role: Option<String>,
    /// `pk` (default) for `pk_<hex>`, or `msq` for `msq-<hex>`.
    #[serde(default)]
    format: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    id: Uuid,
    name: String,
    /// The first characters and `...`, e.g. `pk_99fa646d...`.
    prefix: String,
    role: String,
    /// `active` or `revoked`.
    status: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    calls: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TokenCreated {
    #[serde(flatten)]
    view: TokenView,
    /// The full token. It is shown only this once.
    token: String,
}

impl TokenView {
    /// The stored record plus usage counted since the last flush.
    fn new(state: &AppState, t: api_token::Model) -> TokenView {
        let pending = state.usage.pending(t.id);
        TokenView {
            id: t.id,
            name: t.name,
            prefix: format!("{}...", t.prefix),
            role: t.role,
            status: t.status,
            created_at: t.created_at,
            revoked_at: t.revoked_at,
            last_used_at: pending.map(|p| p.last_used_at).or(t.last_used_at),
            calls: t.calls + pending.map_or(0, |p| p.calls),
        }
    }
}

/// Generate a token for the organization. The full token is in the response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = Data<TokenCreated>), (status = 400), (status = 401), (status = 403)))]
pub async fn create(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    Json(body): Json<CreateToken>,
) -> Result<(StatusCode, axum::Json<Data<TokenCreated>>), ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::Validation(
            "name must be 1 to 100 characters".into(),
        ));
    }
    let role = match body.role.as_deref() {
        None => Role::Member,
        Some(r) => Role::parse(r).ok_or_else(|| {
            ApiError::Validation(format!("role must be admin or member, not {r:?}"))
        })?,
    };
    let format = match body.format.as_deref() {
        None | Some("pk") => TokenFormat::Pk,
        Some("msq") => TokenFormat::Msq,
        Some(f) => {
            return Err(ApiError::Validation(format!(
                "format must be pk or msq, not {f:?}"
            )))
        }
    };
    let minted = tokens::create(state.db(), admin.org_id, name, role, format).await?;
    let view = TokenView::new(&state, minted.record);
    Ok((
        StatusCode::CREATED,
        data(TokenCreated {
            view,
            token: minted.secret,
        }),
    ))
}

/// List the organization's tokens, newest last, with their usage.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Data<Vec<TokenView>>), (status = 401), (status = 403)))]
pub async fn index(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
) -> Result<axum::Json<Data<Vec<TokenView>>>, ApiError> {
    let records = tokens::list(state.db(), admin.org_id).await?;
    Ok(list(
        records
            .into_iter()
            .map(|t| TokenView::new(&state, t))
            .collect(),
    ))
}

/// Revoke a token: it stops working at once, for good; its record and history stay.
#[utoipa::path(post, path = "/api/v1/tokens/{id}/revoke", tag = "tokens",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Data<TokenView>), (status = 401), (status = 403), (status = 404)))]
pub async fn revoke(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Data<TokenView>>, ApiError> {
    let token = tokens::revoke(state.db(), admin.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("token"))?;
    state.caches.invalidate(&Change::Credential {
        id: token.id,
        hash: token.token_hash.clone(),
    });
    Ok(data(TokenView::new(&state, token)))
}

/// Delete a token and its record.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let token = tokens::delete(state.db(), admin.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("token"))?;
    state.caches.invalidate(&Change::Credential {
        id: token.id,
        hash: token.token_hash.clone(),
    });
    Ok(StatusCode::NO_CONTENT)
}
