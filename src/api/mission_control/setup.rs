//! `GET /api/setup/{squad_id}`: an agent runner redeems the squad's one-time setup token for
//! the agents' SOUL.md files and keys. Everything secret in the reply is shown only this once.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use squadron_actors::squad::SquadMsg;
use squadron_actors::store;
use squadron_actors::CoreError;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::envelope::{data, Data};
use crate::api::extract::Path;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct SetupQuery {
    /// Deprecated: send the token in `x-setup-token` instead.
    token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SetupSquad {
    id: Uuid,
    name: String,
    workflow: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SetupAgent {
    id: Uuid,
    name: String,
    role: String,
    soul_md: String,
    soul_md_hash: String,
    /// Seconds into each heartbeat interval to beat at, staggered across the squad.
    heartbeat_offset: i32,
    heartbeat_interval_secs: i32,
    /// This agent's own key: it may act only as this agent.
    api_key: String,
}

#[derive(Serialize, ToSchema)]
pub struct SetupView {
    squad: SetupSquad,
    agents: Vec<SetupAgent>,
    /// The squad's key: it may act as any of its agents (name one in `X-Agent-Name`).
    api_key: String,
    api_url: String,
}

/// Redeem the one-time setup token: creates the agents from their specs and returns them
/// with their SOUL.md and keys. A second use is refused.
#[utoipa::path(get, path = "/api/setup/{squad_id}", tag = "squads",
    params(("squad_id" = Uuid, Path),
        ("x-setup-token" = Option<String>, Header, description = "the one-time setup token"),
        ("token" = Option<String>, Query, deprecated, description = "deprecated: use x-setup-token")),
    responses((status = 200, body = Data<SetupView>), (status = 400), (status = 401)))]
pub async fn redeem(
    State(state): State<AppState>,
    Path(squad_id): Path<Uuid>,
    Query(query): Query<SetupQuery>,
    headers: HeaderMap,
) -> Result<axum::Json<Data<SetupView>>, ApiError> {
    let from_header = headers.get("x-setup-token").and_then(|v| v.to_str().ok());
    let token = match (from_header, query.token.as_deref()) {
        (Some(token), _) => token.trim().to_owned(),
        (None, Some(token)) => {
            tracing::warn!(%squad_id, "setup token passed as ?token=, which is deprecated; use the x-setup-token header");
            token.trim().to_owned()
        }
        (None, None) => {
            return Err(ApiError::Validation(
                "send the setup token in x-setup-token".into(),
            ))
        }
    };
    let hash = store::tokens::hash(&token);
    let result = state
        .core
        .call_squad(squad_id, |reply| SquadMsg::Setup(hash.clone(), reply))
        .await
        .and_then(|r| r);
    let result = match result {
        Ok(result) => result,
        // An unknown squad looks like a bad token: nothing tells squads apart to a guesser.
        Err(CoreError::NotFound(_)) => {
            return Err(ApiError::Unauthorized(
                "setup token is invalid, expired or already used".into(),
            ))
        }
        Err(err) => return Err(err.into()),
    };
    Ok(data(SetupView {
        squad: SetupSquad {
            id: result.squad.id,
            name: result.squad.name,
            workflow: result.squad.workflow,
        },
        agents: result
            .agents
            .into_iter()
            .map(|(a, key)| SetupAgent {
                id: a.id,
                name: a.name,
                role: a.role,
                soul_md: a.soul_md,
                soul_md_hash: a.soul_md_hash,
                heartbeat_offset: a.heartbeat_offset,
                heartbeat_interval_secs: a.heartbeat_interval_secs,
                api_key: key,
            })
            .collect(),
        api_key: result.squad_key,
        api_url: state.config.public_url(),
    }))
}
