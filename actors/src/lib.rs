//! Squadron's core: the supervised actors (root, squads, agents), the store they own, and the
//! live hub they publish to. The HTTP layer holds a [`Core`] and talks to actors through it.

pub mod agent;
pub mod domain;
pub mod knowledge;
pub mod live;
pub mod presence;
pub mod restarts;
pub mod root;
pub mod secrets;
pub mod squad;
pub mod store;
pub mod tls;
pub mod tools;
pub mod turns;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, ActorStatus, MessagingErr, RpcReplyPort};
use sea_orm::{DatabaseConnection, DbErr};
use uuid::Uuid;

use crate::agent::AgentMsg;
use crate::domain::NewSquad;
use crate::live::{LiveEvent, LiveHub};
use crate::presence::Presence;
use crate::root::{Root, RootMsg};
use crate::squad::SquadMsg;
use crate::store::entity::{agent as agent_entity, squad as squad_entity};

/// Tunables of the actor system.
#[derive(Clone, Debug)]
pub struct Settings {
    /// A squad actor that has handled no message for this long stops; `None` keeps it.
    pub idle_after: Option<Duration>,
    /// How long the HTTP layer waits for an actor's reply.
    pub call_timeout: Duration,
    /// How long a squad's one-time setup token stays valid.
    pub setup_ttl: Duration,
    /// How many bytes of vectors the embedded (SQLite) index keeps in memory.
    pub vector_cache_bytes: usize,
}

/// What every actor needs: the database, the live hub, presence written behind, the settings,
/// and the registry of running agent actors (which agent actors keep up to date themselves).
pub struct Shared {
    pub db: DatabaseConnection,
    pub hub: Arc<LiveHub>,
    pub presence: Presence,
    pub agents: DashMap<Uuid, ActorRef<AgentMsg>>,
    pub settings: Settings,
    /// The vector dimensions whose search index this server has made sure of.
    pub indexed: store::knowledge::Indexed,
    /// Nearest-neighbour search over vector stores' chunks, for this database's backend.
    pub vectors: Arc<dyn store::vectors::VectorIndex>,
}

/// Squad id to its running actor.
pub type Registry = DashMap<Uuid, ActorRef<SquadMsg>>;

/// Whether `actor` takes messages: running, or still starting (its mailbox holds them until
/// it runs). A draining, stopping or stopped one does not.
pub fn usable<M: ractor::Message>(actor: &ActorRef<M>) -> bool {
    actor.get_status() < ActorStatus::Draining
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request cannot be carried out as given (a 400).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Counts a running actor in `squadron_actors_alive{kind}` for as long as it is held. Actor
/// states hold one, so the gauge stays right however an actor ends, panics included.
pub struct Alive(&'static str);

impl Alive {
    pub fn new(kind: &'static str) -> Self {
        metrics::gauge!("squadron_actors_alive", "kind" => kind).increment(1.0);
        Alive(kind)
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        metrics::gauge!("squadron_actors_alive", "kind" => self.0).decrement(1.0);
    }
}

/// The handle the HTTP layer holds: cheap to clone.
#[derive(Clone)]
pub struct Core {
    pub shared: Arc<Shared>,
    registry: Arc<Registry>,
    root: ActorRef<RootMsg>,
    /// Serializes making default squads, so an organization gets exactly one.
    default_squads: Arc<tokio::sync::Mutex<()>>,
}

impl Core {
    /// Starts the root supervisor. Await the handle after [`Core::stop`] for a clean exit.
    pub async fn start(
        db: DatabaseConnection,
        hub: Arc<LiveHub>,
        settings: Settings,
    ) -> Result<(Core, tokio::task::JoinHandle<()>), ractor::SpawnErr> {
        let vectors =
            store::vectors::for_backend(db.get_database_backend(), settings.vector_cache_bytes);
        let shared = Arc::new(Shared {
            vectors,
            db,
            hub,
            presence: Presence::default(),
            agents: DashMap::new(),
            settings,
            indexed: Default::default(),
        });
        let registry = Arc::new(Registry::new());
        let (root, handle) = Actor::spawn(None, Root, (shared.clone(), registry.clone())).await?;
        Ok((
            Core {
                shared,
                registry,
                root,
                default_squads: Arc::new(tokio::sync::Mutex::new(())),
            },
            handle,
        ))
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.shared.db
    }

    pub fn hub(&self) -> &LiveHub {
        &self.shared.hub
    }

    /// Stops every actor: the root, and with it the squads and their agents.
    pub fn stop(&self) {
        self.root.stop(Some("shutdown".into()));
    }

    /// Creates a squad with the specs of its first agents and its first event, in one
    /// transaction; returns it with its one-time setup token. No actor exists for a squad
    /// that does not exist yet, so nothing can race this write.
    pub async fn create_squad(
        &self,
        org_id: Uuid,
        new: &NewSquad,
    ) -> Result<(squad_entity::Model, Vec<agent_entity::Model>, String), CoreError> {
        let mut bytes = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        let setup_token = format!("st_{}", hex::encode(bytes));
        let expires = chrono::Utc::now() + self.shared.settings.setup_ttl;
        let txn = store::begin_write(self.db()).await?;
        let setup = (store::tokens::hash(&setup_token), expires);
        let squad = store::squads::insert(&txn, org_id, new, setup).await?;
        let mut agents = Vec::with_capacity(new.agents.len());
        for spec in &new.agents {
            agents.push(store::squads::insert_agent(&txn, &squad, spec).await?);
        }
        let data = serde_json::json!({
            "message": format!("Squad {} was created", squad.name),
            "squad": { "id": squad.id, "name": squad.name },
            "agents": agents.iter().map(squad::agent_brief).collect::<Vec<_>>(),
        });
        let event = store::events::append(&txn, squad.id, 1, "squad.created", data).await?;
        txn.commit().await?;
        self.hub().publish(Arc::new(LiveEvent::from(&event)));
        Ok((squad, agents, setup_token))
    }

    /// The organization's default squad, made on first need; agents created through the
    /// gateway join it.
    pub async fn default_squad(&self, org_id: Uuid) -> Result<squad_entity::Model, CoreError> {
        let _one_at_a_time = self.default_squads.lock().await;
        if let Some(squad) = store::squads::default_of(self.db(), org_id).await? {
            return Ok(squad);
        }
        let new = NewSquad::parse(
            "Default",
            Some("Agents made through the gateway"),
            None,
            Vec::new(),
        )
        .map_err(|e| CoreError::Invalid(e.0))?;
        let (squad, _, _) = self.create_squad(org_id, &new).await?;
        let mut active: squad_entity::ActiveModel = squad.into();
        active.is_default = sea_orm::Set(true);
        Ok(sea_orm::ActiveModelTrait::update(active, self.db()).await?)
    }

    /// The squad's running actor, spawned from the store if it is not running.
    pub async fn squad(&self, squad_id: Uuid) -> Result<ActorRef<SquadMsg>, CoreError> {
        if let Some(actor) = self.registry.get(&squad_id) {
            if usable(&actor) {
                return Ok(actor.clone());
            }
        }
        match self
            .root
            .call(
                |reply| RootMsg::Squad(squad_id, reply),
                Some(self.shared.settings.call_timeout),
            )
            .await
        {
            Ok(CallResult::Success(result)) => result,
            _ => Err(CoreError::Unavailable(
                "the actor system is not answering".into(),
            )),
        }
    }

    /// Sends the squad's actor a request and awaits its reply. A request that finds the actor
    /// gone (stopped idle, or restarting) is sent once more to its successor.
    pub async fn call_squad<T, F>(&self, squad_id: Uuid, make: F) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: Fn(RpcReplyPort<T>) -> SquadMsg,
    {
        let timeout = Some(self.shared.settings.call_timeout);
        for _ in 0..3 {
            let actor = self.squad(squad_id).await?;
            match actor.call(&make, timeout).await {
                Ok(CallResult::Success(reply)) => return Ok(reply),
                Ok(CallResult::Timeout) => {
                    return Err(CoreError::Unavailable(
                        "the squad did not answer in time".into(),
                    ))
                }
                // The actor died while handling it: the write may or may not have happened.
                Ok(CallResult::SenderError) => {
                    return Err(CoreError::Unavailable(
                        "the squad restarted; try again".into(),
                    ))
                }
                Err(MessagingErr::SendErr(_) | MessagingErr::ChannelClosed) => {
                    self.registry
                        .remove_if(&squad_id, |_, a| a.get_id() == actor.get_id());
                }
                Err(MessagingErr::InvalidActorType) => break,
            }
        }
        Err(CoreError::Unavailable(
            "the squad is restarting; try again".into(),
        ))
    }

    /// Whether the squad's actor is running now (asking does not start it).
    pub fn is_running(&self, squad_id: Uuid) -> bool {
        self.registry.get(&squad_id).is_some_and(|a| usable(&a))
    }

    /// The agent's running actor (its squad, and so the agent, started if need be). A squad
    /// that is starting, or restarting the agent, answers once the agent's actor exists.
    pub async fn agent(
        &self,
        squad_id: Uuid,
        agent_id: Uuid,
    ) -> Result<ActorRef<AgentMsg>, CoreError> {
        if let Some(actor) = self.shared.agents.get(&agent_id).filter(|a| usable(a)) {
            return Ok(actor.clone());
        }
        self.call_squad(squad_id, |reply| SquadMsg::Agent(agent_id, reply))
            .await?
            .ok_or(CoreError::NotFound("agent"))
    }

    /// Sends the agent's actor a request and awaits its reply.
    pub async fn call_agent<T, F>(
        &self,
        squad_id: Uuid,
        agent_id: Uuid,
        make: F,
    ) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: FnOnce(RpcReplyPort<T>) -> AgentMsg,
    {
        let actor = self.agent(squad_id, agent_id).await?;
        match actor
            .call(make, Some(self.shared.settings.call_timeout))
            .await
        {
            Ok(CallResult::Success(reply)) => Ok(reply),
            Ok(CallResult::Timeout) => Err(CoreError::Unavailable(
                "the agent did not answer in time".into(),
            )),
            _ => Err(CoreError::Unavailable(
                "the agent is restarting; try again".into(),
            )),
        }
    }

    /// Sends without waiting for an answer (used by the test hooks).
    pub async fn cast_squad(&self, squad_id: Uuid, msg: SquadMsg) -> Result<(), CoreError> {
        self.squad(squad_id)
            .await?
            .cast(msg)
            .map_err(|_| CoreError::Unavailable("the squad is restarting; try again".into()))
    }
}
