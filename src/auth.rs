//! Who is calling, applied to requests: the middleware resolves the credential once per
//! request (see [`crate::credentials`]), applies the rate limit and counts the call. Handlers
//! take what they need as an extractor: [`OrgAuth`], [`AdminAuth`], [`SquadCaller`] or
//! [`AgentCaller`].

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use squadron_actors::squad::{AgentRef, Author};
use squadron_actors::store::{self, tokens::Role};
use uuid::Uuid;

use crate::credentials::{presented, unauthorized};
pub use crate::credentials::{ClientAddr, KeyPrincipal, OrgPrincipal, Principal};
use crate::error::ApiError;
use crate::ratelimit::{RateKey, RouteClass};
use crate::state::AppState;

pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    client: ClientAddr,
) -> Result<Principal, ApiError> {
    let Some(token) = presented(headers)? else {
        return Err(unauthorized(
            "missing",
            "missing API key: send `Authorization: Bearer <token>` or `x-api-key: <token>`",
        ));
    };
    let principal = state
        .caches
        .tokens
        .resolve(state.db(), token, client)
        .await?;
    if let Principal::Org(p) = principal {
        state.usage.record(p.token_id);
    }
    Ok(principal)
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The agent a squad key acts as: its own for a per-agent key (`X-Agent-Name`, if given,
/// must name it), or the one `X-Agent-Name` names for the squad's key.
pub async fn key_agent(
    state: &AppState,
    key: &KeyPrincipal,
    headers: &HeaderMap,
) -> Result<AgentRef, ApiError> {
    let named = header(headers, "x-agent-name");
    let db = state.db();
    match key.agent_id {
        Some(agent_id) => {
            let (_, agent) = state.directory.by_id(db, agent_id).await?.ok_or_else(|| {
                ApiError::Unauthorized("this key's agent no longer exists".into())
            })?;
            match named {
                Some(name) if !name.eq_ignore_ascii_case(&agent.name) => {
                    Err(ApiError::Forbidden(format!(
                        "this key belongs to {}; it cannot act as {name:?}",
                        agent.name
                    )))
                }
                _ => Ok(agent),
            }
        }
        None => {
            let name = named.ok_or_else(|| {
                ApiError::Validation("X-Agent-Name is required with a squad key".into())
            })?;
            state
                .directory
                .by_name(db, key.squad_id, name)
                .await?
                .ok_or_else(|| {
                    ApiError::Forbidden(format!("no agent named {name:?} in this squad"))
                })
        }
    }
}

/// Middleware for every authenticated route: who, then how often, then the handler. A squad
/// key's agent is resolved here, so agents sharing one key each get their own rate bucket.
pub async fn require_auth(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = ClientAddr::of(request.extensions());
    let principal = match authenticate(&state, request.headers(), client).await {
        Ok(p) => p,
        Err(err) => return err.into_response(),
    };
    let mut rate_key = RateKey {
        credential: principal.credential(),
        agent: None,
    };
    if let Principal::Key(key) = &principal {
        match key_agent(&state, key, request.headers()).await {
            Ok(agent) => {
                rate_key.agent = Some(agent.id);
                request.extensions_mut().insert(Caller {
                    org_id: key.org_id,
                    squad_id: key.squad_id,
                    author: Author::Agent(agent),
                });
            }
            Err(err) => return err.into_response(),
        }
    }
    let class = RouteClass::of(request.uri().path());
    let allowed = match state.limits.check(class, &rate_key) {
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
            Some(Principal::Key(_)) => Err(ApiError::Forbidden(
                "this route needs an organization token, not a squad key".into(),
            )),
            None => Err(ApiError::Unauthorized("authentication required".into())),
        }
    }
}

/// Who acts on a squad's Mission Control routes: an agent (squad key and `X-Agent-Name`), or
/// a person with an organization token naming the squad in `X-Squad-Id`.
#[derive(Clone, Debug)]
pub struct Caller {
    pub org_id: Uuid,
    pub squad_id: Uuid,
    pub author: Author,
}

/// A handler argument: a [`Caller`] of a squad.
pub struct SquadCaller(pub Caller);

impl FromRequestParts<AppState> for SquadCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(SquadCaller(caller.clone()));
        }
        let OrgAuth(org) = OrgAuth::from_request_parts(parts, state).await?;
        let raw = header(&parts.headers, "x-squad-id").ok_or_else(|| {
            ApiError::Validation("X-Squad-Id is required with an organization token".into())
        })?;
        let squad_id = Uuid::parse_str(raw)
            .map_err(|_| ApiError::Validation("X-Squad-Id must be a UUID".into()))?;
        store::squads::get(state.db(), org.org_id, squad_id)
            .await?
            .ok_or_else(|| ApiError::not_found("squad"))?;
        let caller = Caller {
            org_id: org.org_id,
            squad_id,
            author: Author::Human,
        };
        parts.extensions.insert(caller.clone());
        Ok(SquadCaller(caller))
    }
}

/// A handler argument: a [`Caller`] who is one of the squad's agents.
pub struct AgentCaller(pub Caller, pub AgentRef);

impl FromRequestParts<AppState> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let SquadCaller(caller) = SquadCaller::from_request_parts(parts, state).await?;
        match &caller.author {
            Author::Agent(agent) => {
                let agent = agent.clone();
                Ok(AgentCaller(caller, agent))
            }
            Author::Human => Err(ApiError::Forbidden(
                "this route is for agents: use a squad key (mc_...) with X-Agent-Name".into(),
            )),
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
