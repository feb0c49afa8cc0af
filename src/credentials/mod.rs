//! Credentials and who holds them. A credential comes as `x-api-key: ...` or
//! `Authorization: Bearer ...` ([`presented`]) and resolves to a [`Principal`]: organization
//! tokens (`pk_`, `msq-`) act for their organization, as a person; squad keys (`mc_`) act as
//! one agent of their squad. [`TokenAuth`] caches active credentials by hash, so a request
//! costs no look-up; [`tickets`] are the browser's single-use way onto the live WebSocket.
//!
//! A credential that is not cached as valid is looked up only if its client address has not
//! failed too often ([`throttle`]) and it was not recently found unknown ([`unknown`]). A
//! look-up that fails is the database's fault, never the caller's: 503, not 401.
//!
//! Nothing here knows the server's state: the caches are held in [`crate::caches`], and
//! the middleware that applies them to requests is [`crate::auth`].

mod throttle;
pub mod tickets;
mod unknown;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use dashmap::DashMap;
use sea_orm::DatabaseConnection;
use squadron_actors::store::{self, tokens::Role};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::config::Config;
use crate::error::ApiError;
use throttle::FailureThrottle;
use unknown::{RecentUnknown, Refusal};

/// A caller holding an organization API token.
#[derive(Clone, Copy, Debug)]
pub struct OrgPrincipal {
    pub token_id: Uuid,
    pub org_id: Uuid,
    pub role: Role,
}

/// A caller holding a squad key: the squad's own, or one agent's.
#[derive(Clone, Copy, Debug)]
pub struct KeyPrincipal {
    pub key_id: Uuid,
    pub org_id: Uuid,
    pub squad_id: Uuid,
    /// Set for a per-agent key, which may act only as that agent.
    pub agent_id: Option<Uuid>,
}

#[derive(Clone, Copy, Debug)]
pub enum Principal {
    Org(OrgPrincipal),
    Key(KeyPrincipal),
}

impl Principal {
    pub fn org_id(&self) -> Uuid {
        match self {
            Principal::Org(p) => p.org_id,
            Principal::Key(k) => k.org_id,
        }
    }

    /// The id of the token or key presented.
    pub fn credential(&self) -> Uuid {
        match self {
            Principal::Org(p) => p.token_id,
            Principal::Key(k) => k.key_id,
        }
    }

    /// The one squad a squad key may see; `None` for an organization token (all of its own).
    pub fn only_squad(&self) -> Option<Uuid> {
        match self {
            Principal::Org(_) => None,
            Principal::Key(k) => Some(k.squad_id),
        }
    }
}

/// Resolves presented tokens and keys, caching active ones by hash so a request costs no
/// lookup. Revoking or deleting one evicts it at once.
pub struct TokenAuth {
    active: DashMap<String, Principal>,
    unknown: RecentUnknown,
    throttle: Option<FailureThrottle>,
}

impl TokenAuth {
    pub fn new(config: &Config) -> TokenAuth {
        TokenAuth {
            active: DashMap::new(),
            unknown: RecentUnknown::default(),
            throttle: FailureThrottle::new(config.auth_fail_burst, config.auth_fail_per_minute),
        }
    }

    /// Who `presented` is, for a request from `client`.
    pub async fn resolve(
        &self,
        db: &DatabaseConnection,
        presented: &str,
        client: ClientAddr,
    ) -> Result<Principal, ApiError> {
        let hash = store::tokens::hash(presented);
        if let Some(p) = self.active.get(&hash) {
            return Ok(*p);
        }
        let throttle = self.throttle.as_ref().zip(client.0);
        if let Some(wait) = throttle.and_then(|(t, addr)| t.wait(addr)) {
            metrics::counter!("squadron_auth_failures_total", "reason" => "throttled").increment(1);
            return Err(ApiError::AuthThrottled {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        let refusal = match self.unknown.get(&hash) {
            Some(refusal) => refusal,
            None => match look_up(db, presented, &hash).await {
                Ok(Ok(principal)) => {
                    self.active.insert(hash, principal);
                    return Ok(principal);
                }
                Ok(Err(refusal)) => {
                    self.unknown.insert(hash, refusal);
                    refusal
                }
                Err(err) => {
                    // Whatever went wrong, the credential may be valid: never a 401.
                    tracing::warn!(error = %err, "could not look a credential up");
                    metrics::counter!("squadron_auth_failures_total", "reason" => "unavailable")
                        .increment(1);
                    return Err(ApiError::Unavailable(
                        "the credential could not be checked; try again".into(),
                    ));
                }
            },
        };
        if let Some((throttle, addr)) = throttle {
            throttle.failed(addr);
        }
        Err(match refusal {
            Refusal::UnknownToken => unauthorized("invalid", "invalid API token"),
            Refusal::UnknownKey => unauthorized("invalid", "invalid squad key"),
            Refusal::Revoked => unauthorized("revoked", "this API token has been revoked"),
        })
    }

    pub fn evict(&self, token_hash: &str) {
        self.active.remove(token_hash);
    }

    /// Forgets client addresses whose failures are all forgiven.
    pub fn forget_idle(&self) {
        if let Some(throttle) = &self.throttle {
            throttle.forget_idle();
        }
    }
}

/// The database's answer for a credential not in memory.
async fn look_up(
    db: &DatabaseConnection,
    presented: &str,
    hash: &str,
) -> Result<Result<Principal, Refusal>, sea_orm::DbErr> {
    metrics::counter!("squadron_auth_lookups_total").increment(1);
    if presented.starts_with(store::keys::LEAD) {
        let Some(key) = store::keys::find_by_hash(db, hash).await? else {
            return Ok(Err(Refusal::UnknownKey));
        };
        return Ok(Ok(Principal::Key(KeyPrincipal {
            key_id: key.id,
            org_id: key.org_id,
            squad_id: key.squad_id,
            agent_id: key.agent_id,
        })));
    }
    let Some(token) = store::tokens::find_by_hash(db, hash).await? else {
        return Ok(Err(Refusal::UnknownToken));
    };
    // The lookup was by hash; compare in constant time all the same.
    if !bool::from(token.token_hash.as_bytes().ct_eq(hash.as_bytes())) {
        return Ok(Err(Refusal::UnknownToken));
    }
    if token.status != store::tokens::ACTIVE {
        return Ok(Err(Refusal::Revoked));
    }
    Ok(Ok(Principal::Org(OrgPrincipal {
        token_id: token.id,
        org_id: token.org_id,
        role: Role::parse(&token.role).unwrap_or(Role::Member),
    })))
}

pub(crate) fn unauthorized(reason: &'static str, message: &str) -> ApiError {
    metrics::counter!("squadron_auth_failures_total", "reason" => reason).increment(1);
    ApiError::Unauthorized(message.to_owned())
}

/// The one credential a request presents, in `x-api-key` or `Authorization: Bearer`. An
/// empty header counts as absent; the same credential twice is one, two different ones are a
/// 400 (which one was meant is not ours to guess).
pub fn presented(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let keys = headers
        .get_all("x-api-key")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let bearers = headers
        .get_all(axum::http::header::AUTHORIZATION)
        .iter()
        .filter_map(|v| {
            let (scheme, token) = v.to_str().ok()?.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        });
    let mut found = None;
    for credential in keys.chain(bearers).map(str::trim).filter(|c| !c.is_empty()) {
        match found {
            Some(seen) if seen != credential => {
                return Err(ApiError::Validation(
                    "two different credentials in one request: send one, as `Authorization: Bearer <token>` or `x-api-key: <token>`".into(),
                ))
            }
            _ => found = Some(credential),
        }
    }
    Ok(found)
}

/// The address a request comes from: its connection's peer, never a header a client writes.
/// `None` when the server was not served with connect info.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    pub fn of(extensions: &Extensions) -> ClientAddr {
        ClientAddr(
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientAddr::of(&parts.extensions))
    }
}
