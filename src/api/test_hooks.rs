//! Fault injection for the end-to-end tests; compiled only with the `test-hooks` feature.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use squadron_actors::squad::SquadMsg;
use uuid::Uuid;

use crate::api::envelope::{data, Data};
use crate::api::extract::{Json, Path};
use crate::api::mission_control::squads::owned_squad;
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn panic_squad(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    owned_squad(&state, caller.org_id, id).await?;
    state.core.cast_squad(id, SquadMsg::Panic).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn panic_agent(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path((id, agent_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    owned_squad(&state, caller.org_id, id).await?;
    state
        .core
        .cast_squad(id, SquadMsg::PanicAgent(agent_id))
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
pub struct Flood {
    n: u32,
    /// Bytes of filler in each event (default 512).
    filler: Option<usize>,
}

pub async fn flood(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<Uuid>,
    Json(body): Json<Flood>,
) -> Result<axum::Json<Data<i64>>, ApiError> {
    owned_squad(&state, caller.org_id, id).await?;
    let (n, filler) = (body.n, body.filler.unwrap_or(512).min(64 * 1024));
    let last_seq = state
        .core
        .call_squad(id, |reply| SquadMsg::Flood(n, filler, reply))
        .await??;
    Ok(data(last_seq))
}

#[derive(Deserialize)]
pub struct FailCommits {
    n: u32,
}

/// Makes the squad's next `n` commits fail with a serialization failure (PostgreSQL only:
/// the database raises it).
pub async fn fail_commits(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<Uuid>,
    Json(body): Json<FailCommits>,
) -> Result<StatusCode, ApiError> {
    owned_squad(&state, caller.org_id, id).await?;
    state
        .core
        .cast_squad(id, SquadMsg::FailCommits(body.n))
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Whether the squad's actor runs, without starting it (for the idle-stop test).
pub async fn running(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Data<bool>>, ApiError> {
    owned_squad(&state, caller.org_id, id).await?;
    Ok(data(state.core.is_running(id)))
}
