//! The root supervisor: spawns squad actors on first use, keeps the registry, and restarts a
//! squad that panicked (its state comes back from the store in `pre_start`).
//!
//! Invariant: at most one actor per squad is alive, and it is the one in the registry. Only
//! the root adds or removes registry entries for live actors, one message at a time: an actor
//! that is still starting counts as alive (messages wait in its mailbox), and a squad that
//! wants to stop idle asks the root, which takes it out of the registry and waits for it (and
//! its agents) to finish what they hold before anyone may spawn its successor.

use std::collections::HashMap;
use std::sync::Arc;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use uuid::Uuid;

use crate::restarts::RestartBudget;
use crate::squad::{IdleSquad, SquadActor, SquadArgs, SquadMsg};
use crate::{usable, Alive, CoreError, Registry, Shared};

pub struct Root;

pub enum RootMsg {
    /// The squad's running actor, spawned if needed.
    Squad(Uuid, RpcReplyPort<Result<ActorRef<SquadMsg>, CoreError>>),
    /// From a squad's actor that has been idle: stop it, unless it is no longer the squad's.
    Idle(Uuid, ActorRef<SquadMsg>),
}

impl From<IdleSquad> for RootMsg {
    fn from(IdleSquad(squad_id, actor): IdleSquad) -> RootMsg {
        RootMsg::Idle(squad_id, actor)
    }
}

/// Back again, for a message that could not be sent (ractor's derived references need it).
impl TryFrom<RootMsg> for IdleSquad {
    type Error = RootMsg;

    fn try_from(message: RootMsg) -> Result<IdleSquad, RootMsg> {
        match message {
            RootMsg::Idle(squad_id, actor) => Ok(IdleSquad(squad_id, actor)),
            other => Err(other),
        }
    }
}

pub struct RootState {
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    squad_of: HashMap<ActorId, Uuid>,
    restarts: RestartBudget<Uuid>,
    _alive: Alive,
}

impl RootState {
    async fn spawn_squad(
        &mut self,
        myself: &ActorRef<RootMsg>,
        squad_id: Uuid,
    ) -> Result<ActorRef<SquadMsg>, CoreError> {
        if let Some(actor) = self.registry.get(&squad_id) {
            if usable(&actor) {
                return Ok(actor.clone());
            }
        }
        let args = SquadArgs {
            squad_id,
            shared: self.shared.clone(),
            root: myself.get_derived(),
        };
        let (actor, _) = Actor::spawn_linked(None, SquadActor, args, myself.get_cell())
            .await
            .map_err(|err| match err {
                ractor::SpawnErr::StartupFailed(e) if e.to_string().contains("not found") => {
                    CoreError::NotFound("squad")
                }
                other => {
                    tracing::error!(%squad_id, error = %other, "squad actor failed to start");
                    CoreError::Unavailable("the squad could not be started".into())
                }
            })?;
        self.squad_of.insert(actor.get_id(), squad_id);
        self.registry.insert(squad_id, actor.clone());
        Ok(actor)
    }

    /// Stops the squad's idle actor: out of the registry first, so that new requests queue
    /// here for its successor; then drained, so that requests already in its mailbox are
    /// answered and its agents have stopped before the successor starts.
    async fn stop_idle(&mut self, squad_id: Uuid, actor: ActorRef<SquadMsg>) {
        let id = actor.get_id();
        self.registry.remove_if(&squad_id, |_, a| a.get_id() == id);
        self.squad_of.remove(&id);
        let wait = self.shared.settings.call_timeout;
        if actor.drain_and_wait(Some(wait)).await.is_err() {
            tracing::warn!(%squad_id, "idle squad actor did not drain in time; killing it");
            let _ = actor.kill_and_wait(Some(wait)).await;
        }
        tracing::debug!(%squad_id, "idle squad actor stopped");
    }

    fn forget(&mut self, actor: &ractor::ActorCell) -> Option<Uuid> {
        let squad_id = self.squad_of.remove(&actor.get_id())?;
        self.registry
            .remove_if(&squad_id, |_, a| a.get_id() == actor.get_id());
        Some(squad_id)
    }
}

impl Actor for Root {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = (Arc<Shared>, Arc<Registry>);

    async fn pre_start(
        &self,
        _myself: ActorRef<RootMsg>,
        (shared, registry): Self::Arguments,
    ) -> Result<RootState, ActorProcessingErr> {
        Ok(RootState {
            shared,
            registry,
            squad_of: HashMap::new(),
            restarts: RestartBudget::default(),
            _alive: Alive::new("root"),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RootMsg>,
        msg: RootMsg,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Squad(squad_id, reply) => {
                let result = state.spawn_squad(&myself, squad_id).await;
                let _ = reply.send(result);
            }
            RootMsg::Idle(squad_id, actor) => state.stop_idle(squad_id, actor).await,
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        event: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                let Some(squad_id) = state.forget(&cell) else {
                    return Ok(());
                };
                metrics::counter!("squadron_actor_restarts_total", "kind" => "squad").increment(1);
                tracing::error!(%squad_id, error = %err, "squad actor failed; restarting it");
                if state.restarts.allows(squad_id) {
                    if let Err(err) = state.spawn_squad(&myself, squad_id).await {
                        tracing::error!(%squad_id, error = %err, "squad actor did not come back");
                    }
                } else {
                    tracing::error!(%squad_id, "squad actor keeps failing; left stopped until next use");
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(squad_id) = state.forget(&cell) {
                    tracing::debug!(%squad_id, ?reason, "squad actor stopped");
                }
            }
            _ => {}
        }
        Ok(())
    }
}
