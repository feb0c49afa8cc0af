//! Squadron's core: the supervised actors (root, squads, agents), the store they own, and the
//! live hub they publish to. The HTTP layer holds a [`Core`] and talks to actors through it.

pub mod agent;
pub mod domain;
pub mod live;
pub mod root;
pub mod squad;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, ActorStatus, MessagingErr, RpcReplyPort};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use uuid::Uuid;

use crate::domain::NewSquad;
use crate::live::{LiveEvent, LiveHub};
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
}

/// What every actor needs: the database, the live hub, the settings.
pub struct Shared {
    pub db: DatabaseConnection,
    pub hub: Arc<LiveHub>,
    pub settings: Settings,
}

/// Squad id to its running actor.
pub type Registry = DashMap<Uuid, ActorRef<SquadMsg>>;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
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
}

impl Core {
    /// Starts the root supervisor. Await the handle after [`Core::stop`] for a clean exit.
    pub async fn start(
        db: DatabaseConnection,
        hub: Arc<LiveHub>,
        settings: Settings,
    ) -> Result<(Core, tokio::task::JoinHandle<()>), ractor::SpawnErr> {
        let shared = Arc::new(Shared { db, hub, settings });
        let registry = Arc::new(Registry::new());
        let (root, handle) = Actor::spawn(None, Root, (shared.clone(), registry.clone())).await?;
        Ok((
            Core {
                shared,
                registry,
                root,
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

    /// Creates a squad with its first agents and its first event, in one transaction. No
    /// actor exists for a squad that does not exist yet, so nothing can race this write.
    pub async fn create_squad(
        &self,
        org_id: Uuid,
        new: &NewSquad,
    ) -> Result<(squad_entity::Model, Vec<agent_entity::Model>), CoreError> {
        let txn = self.db().begin().await?;
        let squad = store::squads::insert(&txn, org_id, new).await?;
        let mut agents = Vec::with_capacity(new.agents.len());
        for spec in &new.agents {
            agents.push(store::squads::insert_agent(&txn, &squad, spec).await?);
        }
        let data = serde_json::json!({
            "squad": { "id": squad.id, "name": squad.name },
            "agents": agents.iter().map(squad::agent_brief).collect::<Vec<_>>(),
        });
        let event = store::events::append(&txn, squad.id, 1, "squad.created", data).await?;
        txn.commit().await?;
        self.hub().publish(Arc::new(LiveEvent::from(&event)));
        Ok((squad, agents))
    }

    /// The squad's running actor, spawned from the store if it is not running.
    pub async fn squad(&self, squad_id: Uuid) -> Result<ActorRef<SquadMsg>, CoreError> {
        if let Some(actor) = self.registry.get(&squad_id) {
            if actor.get_status() == ActorStatus::Running {
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
        self.registry
            .get(&squad_id)
            .is_some_and(|a| a.get_status() == ActorStatus::Running)
    }

    /// Sends without waiting for an answer (used by the test hooks).
    pub async fn cast_squad(&self, squad_id: Uuid, msg: SquadMsg) -> Result<(), CoreError> {
        self.squad(squad_id)
            .await?
            .cast(msg)
            .map_err(|_| CoreError::Unavailable("the squad is restarting; try again".into()))
    }
}
