//! Agent names and ids, cached: every agent request names its agent (`X-Agent-Name`), and
//! looking that up must not cost a query. Changes to an agent evict it.

use dashmap::DashMap;
use sea_orm::DatabaseConnection;
use squadron_actors::squad::AgentRef;
use squadron_actors::store;
use uuid::Uuid;

use crate::error::ApiError;

#[derive(Default)]
pub struct Directory {
    by_name: DashMap<(Uuid, String), AgentRef>,
    by_id: DashMap<Uuid, (Uuid, AgentRef)>,
}

impl Directory {
    /// The squad's agent called `name` (any case), if there is one.
    pub async fn by_name(
        &self,
        db: &DatabaseConnection,
        squad_id: Uuid,
        name: &str,
    ) -> Result<Option<AgentRef>, ApiError> {
        let key = (squad_id, name.trim().to_ascii_lowercase());
        if let Some(agent) = self.by_name.get(&key) {
            return Ok(Some(agent.clone()));
        }
        let Some(agent) = store::squads::agent_by_name(db, squad_id, name).await? else {
            return Ok(None);
        };
        Ok(Some(self.remember(
            agent.squad_id,
            AgentRef {
                id: agent.id,
                name: agent.name,
            },
        )))
    }

    /// The agent with `id` and its squad.
    pub async fn by_id(
        &self,
        db: &DatabaseConnection,
        id: Uuid,
    ) -> Result<Option<(Uuid, AgentRef)>, ApiError> {
        if let Some(entry) = self.by_id.get(&id) {
            return Ok(Some(entry.clone()));
        }
        let Some(agent) = store::squads::agent(db, id).await? else {
            return Ok(None);
        };
        let squad_id = agent.squad_id;
        Ok(Some((
            squad_id,
            self.remember(
                squad_id,
                AgentRef {
                    id: agent.id,
                    name: agent.name,
                },
            ),
        )))
    }

    /// Resolves names to the squad's agents; an unknown name is a 400 naming it.
    pub async fn resolve(
        &self,
        db: &DatabaseConnection,
        squad_id: Uuid,
        names: &[String],
    ) -> Result<Vec<AgentRef>, ApiError> {
        let mut agents = Vec::with_capacity(names.len());
        for name in names {
            let agent = self.by_name(db, squad_id, name).await?.ok_or_else(|| {
                ApiError::Validation(format!("no agent named {name:?} in this squad"))
            })?;
            if !agents.contains(&agent) {
                agents.push(agent);
            }
        }
        Ok(agents)
    }

    fn remember(&self, squad_id: Uuid, agent: AgentRef) -> AgentRef {
        self.by_name
            .insert((squad_id, agent.name.to_ascii_lowercase()), agent.clone());
        self.by_id.insert(agent.id, (squad_id, agent.clone()));
        agent
    }

    /// Forgets an agent that was renamed or deleted.
    pub fn evict(&self, agent_id: Uuid) {
        if let Some((_, (squad_id, agent))) = self.by_id.remove(&agent_id) {
            self.by_name
                .remove(&(squad_id, agent.name.to_ascii_lowercase()));
        }
    }
}
