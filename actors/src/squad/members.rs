//! The squad's members: setup (which gives agents their SOUL.md and keys), and agents added,
//! changed or removed afterwards.

use chrono::Utc;
use ractor::ActorRef;
use sea_orm::{ActiveModelTrait, DatabaseTransaction, EntityTrait, Set};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{agent_brief, SquadMsg, SquadState};
use crate::agent::AgentMsg;
use crate::domain::{AgentName, AgentSpec};
use crate::store::entity::agent::{self, Entity as Agents};
use crate::store::entity::squad;
use crate::{store, CoreError};

/// Changes to an agent's spec; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct AgentPatch {
    pub name: Option<AgentName>,
    pub role: Option<String>,
    pub personality: Option<String>,
    pub expertise: Option<Vec<String>>,
    pub heartbeat_interval_secs: Option<i32>,
}

/// What setup hands out, once: the squad's key and each agent with its own key.
pub struct SetupResult {
    pub squad: squad::Model,
    pub squad_key: String,
    pub agents: Vec<(agent::Model, String)>,
}

/// The agent's SOUL.md, written from its spec and its squad.
pub fn soul_md(agent: &agent::Model, squad: &squad::Model) -> String {
    let expertise: Vec<String> =
        serde_json::from_value(agent.expertise.clone()).unwrap_or_default();
    let mut md = format!("# SOUL.md — {} Agent\n\n", agent.name);
    if !agent.role.is_empty() {
        md += &format!("## Role\n{}\n\n", agent.role);
    }
    if !agent.personality.is_empty() {
        md += &format!("## Personality\n{}\n\n", agent.personality);
    }
    if !expertise.is_empty() {
        md += "## Expertise\n";
        for item in &expertise {
            md += &format!("- {item}\n");
        }
        md += "\n";
    }
    md += &format!(
        "## Squad\nYou are {} in squad \"{}\"",
        agent.name, squad.name
    );
    if let Some(workflow) = &squad.workflow {
        md += &format!(" (workflow: {workflow})");
    }
    md += ".\nHeartbeat every ";
    md += &format!(
        "{} seconds. Pick up assigned work from your queue, claim it, comment on progress, \
         and @mention teammates when you need them. Never mention yourself.\n",
        agent.heartbeat_interval_secs
    );
    md
}

impl SquadState {
    /// Gives an agent its SOUL.md, heartbeat offset (its slot among `n`) and key.
    async fn activate(
        &self,
        txn: &DatabaseTransaction,
        agent: agent::Model,
        slot: usize,
        n: usize,
    ) -> Result<(agent::Model, String), CoreError> {
        let soul = soul_md(&agent, &self.squad);
        let offset = (agent.heartbeat_interval_secs as i64 * slot as i64 / n.max(1) as i64) as i32;
        let mut active: agent::ActiveModel = agent.into();
        active.soul_md_hash = Set(hex::encode(Sha256::digest(soul.as_bytes())));
        active.soul_md = Set(soul);
        active.heartbeat_offset = Set(offset);
        active.activated_at = Set(Some(Utc::now()));
        let agent = active.update(txn).await?;
        let key =
            store::keys::create(txn, self.squad.org_id, self.squad.id, Some(agent.id)).await?;
        Ok((agent, key))
    }

    pub(super) async fn setup(&mut self, token_hash: &str) -> Result<SetupResult, CoreError> {
        let refused =
            || CoreError::Unauthorized("setup token is invalid, expired or already used".into());
        let squad = &self.squad;
        let stored = squad.setup_token_hash.as_deref().unwrap_or("");
        let matches = bool::from(stored.as_bytes().ct_eq(token_hash.as_bytes()));
        let fresh = squad.setup_expires_at.is_some_and(|at| at > Utc::now());
        if !matches || !fresh || squad.setup_used_at.is_some() {
            return Err(refused());
        }
        let txn = store::begin_write(&self.shared.db).await?;
        let mut used: squad::ActiveModel = self.squad.clone().into();
        used.setup_used_at = Set(Some(Utc::now()));
        let squad = used.update(&txn).await?;
        let specs = store::squads::agents(&txn, squad.id).await?;
        let n = specs.len();
        let mut agents = Vec::with_capacity(n);
        for (slot, agent) in specs.into_iter().enumerate() {
            agents.push(self.activate(&txn, agent, slot, n).await?);
        }
        let squad_key = store::keys::create(&txn, squad.org_id, squad.id, None).await?;
        let events = vec![(
            "squad.setup",
            json!({
                "message": format!("Squad {} was set up with {n} agents", squad.name),
                "agents": agents.iter().map(|(a, _)| agent_brief(a)).collect::<Vec<_>>(),
            }),
        )];
        self.commit(txn, events).await?;
        self.squad = squad.clone();
        for (agent, _) in &agents {
            if let Some(actor) = self.agents.get(&agent.id) {
                let _ = actor.cast(AgentMsg::Updated(Box::new(agent.clone())));
            }
        }
        Ok(SetupResult {
            squad,
            squad_key,
            agents,
        })
    }

    /// Adds an agent. After setup it is activated at once and its key returned (once).
    pub(super) async fn add_agent(
        &mut self,
        myself: &ActorRef<SquadMsg>,
        spec: AgentSpec,
    ) -> Result<(agent::Model, Option<String>), CoreError> {
        let txn = store::begin_write(&self.shared.db).await?;
        let agent = match store::squads::insert_agent(&txn, &self.squad, &spec).await {
            Ok(agent) => agent,
            Err(err) if store::is_unique_violation(&err) => {
                return Err(CoreError::Conflict(format!(
                    "the squad already has an agent named {:?}",
                    spec.name.as_ref()
                )))
            }
            Err(err) => return Err(err.into()),
        };
        let (agent, key) = if self.squad.setup_used_at.is_some() {
            let count = self.agents.len() + 1;
            let (agent, key) = self.activate(&txn, agent, count - 1, count).await?;
            (agent, Some(key))
        } else {
            (agent, None)
        };
        let message = format!("{} joined the squad", agent.name);
        self.commit(
            txn,
            vec![(
                "agent.created",
                json!({ "message": message, "agent": agent_brief(&agent) }),
            )],
        )
        .await?;
        if let Err(err) = self
            .spawn_agent(myself, agent.id, Some(agent.clone()))
            .await
        {
            // The agent is stored; its actor comes back when the squad is next started.
            tracing::error!(agent_id = %agent.id, error = %err, "agent actor failed to start");
        }
        Ok((agent, key))
    }

    pub(super) async fn update_agent(
        &mut self,
        id: Uuid,
        patch: AgentPatch,
    ) -> Result<agent::Model, CoreError> {
        let current = store::squads::agent(&self.shared.db, id)
            .await?
            .filter(|a| a.squad_id == self.squad.id)
            .ok_or(CoreError::NotFound("agent"))?;
        let activated = current.activated_at.is_some();
        let mut active: agent::ActiveModel = current.into();
        if let Some(name) = &patch.name {
            active.name = Set(name.as_ref().to_owned());
            active.name_key = Set(name.key());
        }
        if let Some(role) = patch.role {
            active.role = Set(role);
        }
        if let Some(personality) = patch.personality {
            active.personality = Set(personality);
        }
        if let Some(expertise) = patch.expertise {
            active.expertise = Set(json!(expertise));
        }
        if let Some(secs) = patch.heartbeat_interval_secs {
            active.heartbeat_interval_secs = Set(secs);
        }
        let txn = store::begin_write(&self.shared.db).await?;
        let mut agent = match active.update(&txn).await {
            Ok(agent) => agent,
            Err(err) if store::is_unique_violation(&err) => {
                return Err(CoreError::Conflict(
                    "the squad already has an agent of that name".into(),
                ))
            }
            Err(err) => return Err(err.into()),
        };
        if activated {
            // The SOUL.md follows the spec; agents learn of it from their next heartbeat.
            let soul = soul_md(&agent, &self.squad);
            let mut active: agent::ActiveModel = agent.into();
            active.soul_md_hash = Set(hex::encode(Sha256::digest(soul.as_bytes())));
            active.soul_md = Set(soul);
            agent = active.update(&txn).await?;
        }
        let message = format!("{}'s profile was updated", agent.name);
        self.commit(
            txn,
            vec![(
                "agent.updated",
                json!({ "message": message, "agent": agent_brief(&agent) }),
            )],
        )
        .await?;
        if let Some(actor) = self.agents.get(&agent.id) {
            let _ = actor.cast(AgentMsg::Updated(Box::new(agent.clone())));
        }
        self.shared.presence.overlay(&mut agent);
        Ok(agent)
    }

    pub(super) async fn delete_agent(&mut self, id: Uuid) -> Result<agent::Model, CoreError> {
        let agent = store::squads::agent(&self.shared.db, id)
            .await?
            .filter(|a| a.squad_id == self.squad.id)
            .ok_or(CoreError::NotFound("agent"))?;
        let txn = store::begin_write(&self.shared.db).await?;
        // Its keys, assignments, subscriptions and notifications go with it (foreign keys).
        Agents::delete_by_id(id).exec(&txn).await?;
        let message = format!("{} left the squad", agent.name);
        self.commit(
            txn,
            vec![(
                "agent.deleted",
                json!({ "message": message, "agent": agent_brief(&agent) }),
            )],
        )
        .await?;
        if let Some(actor) = self.agents.remove(&id) {
            actor.stop(Some("deleted".into()));
        }
        self.online.remove(&id);
        self.answering.remove(&id);
        Ok(agent)
    }
}
