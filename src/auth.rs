//! Who is calling. A credential comes as `x-api-key: ...` or `Authorization: Bearer ...`;
//! it resolves to a [`Principal`] once per request, in the middleware that also applies the
//! rate limit and counts the call.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use sea_orm::DatabaseConnection;
use squadron_actors::store::{self, tokens::Role};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::ApiError;
use crate::ratelimit::{RateKey, RouteClass};
use crate::state::AppState;

/// A caller holding an organization API token.
#[derive(Clone, Copy, Debug)]
pub struct OrgPrincipal {
    pub token_id: Uuid,
    pub org_id: Uuid,
    pub role: Role,
}

#[derive(Clone, Debug)]
pub enum Principal {
    Org(OrgPrincipal),
}

impl Principal {
    pub fn org_id(&self) -> Uuid {
        match self {
            Principal::Org(p) => p.org_id,
        }
    }

    fn token_id(&self) -> Uuid {
        match self {
            Principal::Org(p) => p.token_id,
        }
    }

    fn rate_key(&self) -> RateKey {
        RateKey {
            credential: self.token_id(),
            agent: None,
        }
    }
}

/// Resolves presented tokens, caching active ones by hash so a request costs no lookup.
/// Revoking or deleting a token evicts it at once.
#[derive(Default)]
pub struct TokenAuth {
    active: DashMap<String, OrgPrincipal>,
}

impl TokenAuth {
    pub async fn resolve(
        &self,
        db: &DatabaseConnection,
        presented: &str,
    ) -> Result<Principal, ApiError> {
        let hash = store::tokens::hash(presented);
        if let Some(p) = self.active.get(&hash) {
            return Ok(Principal::Org(*p));
        }
        let Some(token) = store::tokens::find_by_hash(db, &hash).await? else {
            return Err(unauthorized("invalid", "invalid API token"));
        };
        // The lookup was by hash; compare in constant time all the same.
        if !bool::from(token.token_hash.as_bytes().ct_eq(hash.as_bytes())) {
            return Err(unauthorized("invalid", "invalid API token"));
        }
        if token.status != store::tokens::ACTIVE {
            return Err(unauthorized("revoked", "this API token has been revoked"));
        }
        let principal = OrgPrincipal {
            token_id: token.id,
            org_id: token.org_id,
            role: Role::parse(&token.role).unwrap_or(Role::Member),
        };
        self.active.insert(hash, principal);
        Ok(Principal::Org(principal))
    }

    pub fn evict(&self, token_hash: &str) {
        self.active.remove(token_hash);
    }
}

fn unauthorized(reason: &'static str, message: &str) -> ApiError {
    metrics::counter!("squadron_auth_failures_total", "reason" => reason).increment(1);
    ApiError::Unauthorized(message.to_owned())
}

/// The credential in `x-api-key`, or else in `Authorization: Bearer`.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key") {
        return key.to_str().ok().map(str::trim);
    }
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let Some(token) = presented(headers).filter(|t| !t.is_empty()) else {
        return Err(unauthorized(
            "missing",
            "missing API key: send `Authorization: Bearer <token>` or `x-api-key: <token>`",
        ));
    };
    let principal = state.tokens.resolve(state.db(), token).await?;
    state.usage.record(principal.token_id());
    Ok(principal)
}

/// Middleware for every authenticated route: who, then how often, then the handler.
pub async fn require_auth(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let principal = match authenticate(&state, request.headers()).await {
        Ok(p) => p,
        Err(err) => return err.into_response(),
    };
    let class = RouteClass::of(request.uri().path());
    let allowed = match state.limits.check(class, &principal.rate_key()) {
        Ok(allowed) => allowed,
        Err(err) => return err.into_response(),
    };
    request.extensions_mut().insert(principal);
    let mut response = next.run(request).await;
    if let Some(allowed) = allowed {
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", HeaderValue::from(allowed.limit));
        headers.insert(
            "x-ratelimit-remaining",
            HeaderValue::from(allowed.remaining),
        );
    }
    response
}

/// A handler argument: the caller, who must hold an organization token.
pub struct OrgAuth(pub OrgPrincipal);

impl<S: Send + Sync> FromRequestParts<S> for OrgAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.extensions.get::<Principal>() {
            Some(Principal::Org(p)) => Ok(OrgAuth(*p)),
            None => Err(ApiError::Unauthorized("authentication required".into())),
        }
    }
}

/// A handler argument: an organization admin.
pub struct AdminAuth(pub OrgPrincipal);

impl<S: Send + Sync> FromRequestParts<S> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let OrgAuth(p) = OrgAuth::from_request_parts(parts, state).await?;
        if p.role != Role::Admin {
            return Err(ApiError::Forbidden(
                "only organization admins may do this".into(),
            ));
        }
        Ok(AdminAuth(p))
    }
}
