//! `SquadActor`: the single writer of one squad. It numbers every event of the squad, stores
//! it with the change it describes, then publishes it live. It supervises its agents' actors.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use sea_orm::{DatabaseTransaction, DbErr, TransactionTrait};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::agent::{AgentActor, AgentArgs, AgentMsg};
use crate::domain::AgentSpec;
use crate::live::LiveEvent;
use crate::store::entity::{agent, event, squad};
use crate::{store, Alive, CoreError, Shared};

pub struct SquadActor;

pub struct SquadArgs {
    pub squad_id: Uuid,
    pub shared: Arc<Shared>,
}

pub enum SquadMsg {
    AddAgent(AgentSpec, RpcReplyPort<Result<agent::Model, CoreError>>),
    Stats(RpcReplyPort<SquadStats>),
    /// Sent by the actor's own timer: stop if nothing happened for a while.
    IdleCheck,
    #[cfg(feature = "test-hooks")]
    Panic,
    #[cfg(feature = "test-hooks")]
    PanicAgent(Uuid),
    /// Records `n` filler events at once, to drive a subscriber past its buffer.
    #[cfg(feature = "test-hooks")]
    Flood(u32, RpcReplyPort<Result<i64, CoreError>>),
}

/// What the squad's actor holds right now.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SquadStats {
    pub last_seq: i64,
    pub agents_running: usize,
    /// The running actor's id: it changes when the actor is restarted.
    pub actor: String,
}

pub struct SquadState {
    shared: Arc<Shared>,
    squad: squad::Model,
    next_seq: i64,
    agents: HashMap<Uuid, ActorRef<AgentMsg>>,
    agent_of: HashMap<ActorId, Uuid>,
    last_active: Instant,
    idle_timer: Option<JoinHandle<()>>,
    _alive: Alive,
}

/// The few fields of an agent that events carry.
pub fn agent_brief(agent: &agent::Model) -> Value {
    json!({ "id": agent.id, "name": agent.name, "role": agent.role })
}

impl SquadState {
    async fn spawn_agent(
        &mut self,
        myself: &ActorRef<SquadMsg>,
        agent_id: Uuid,
        initial: Option<agent::Model>,
    ) -> Result<(), ActorProcessingErr> {
        let args = AgentArgs {
            agent_id,
            initial,
            shared: self.shared.clone(),
        };
        let (actor, _) = Actor::spawn_linked(None, AgentActor, args, myself.get_cell()).await?;
        self.agent_of.insert(actor.get_id(), agent_id);
        self.agents.insert(agent_id, actor);
        Ok(())
    }

    /// Appends events with the next sequence numbers inside `txn`. Once `txn` commits, hand
    /// the result to [`SquadState::published`]; if it does not, nothing was used up.
    async fn append(
        &self,
        txn: &DatabaseTransaction,
        events: Vec<(&str, Value)>,
    ) -> Result<Vec<event::Model>, DbErr> {
        let mut stored = Vec::with_capacity(events.len());
        for (i, (kind, data)) in events.into_iter().enumerate() {
            let seq = self.next_seq + i as i64;
            stored.push(store::events::append(txn, self.squad.id, seq, kind, data).await?);
        }
        Ok(stored)
    }

    fn published(&mut self, stored: Vec<event::Model>) {
        self.next_seq += stored.len() as i64;
        for event in &stored {
            self.shared.hub.publish(Arc::new(LiveEvent::from(event)));
        }
    }

    async fn add_agent(
        &mut self,
        myself: &ActorRef<SquadMsg>,
        spec: AgentSpec,
    ) -> Result<agent::Model, CoreError> {
        let squad = self.squad.clone();
        let txn = self.shared.db.begin().await?;
        let agent = match store::squads::insert_agent(&txn, &squad, &spec).await {
            Ok(agent) => agent,
            Err(err) if store::is_unique_violation(&err) => {
                return Err(CoreError::Conflict(format!(
                    "the squad already has an agent named {:?}",
                    spec.name.as_ref()
                )))
            }
            Err(err) => return Err(err.into()),
        };
        let events = self
            .append(
                &txn,
                vec![("agent.created", json!({ "agent": agent_brief(&agent) }))],
            )
            .await?;
        txn.commit().await?;
        self.published(events);
        if let Err(err) = self
            .spawn_agent(myself, agent.id, Some(agent.clone()))
            .await
        {
            // The agent is stored; its actor comes back when the squad is next started.
            tracing::error!(agent_id = %agent.id, error = %err, "agent actor failed to start");
        }
        Ok(agent)
    }
}

impl Actor for SquadActor {
    type Msg = SquadMsg;
    type State = SquadState;
    type Arguments = SquadArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SquadMsg>,
        SquadArgs { squad_id, shared }: SquadArgs,
    ) -> Result<SquadState, ActorProcessingErr> {
        let db = &shared.db;
        let squad = store::squads::get_any(db, squad_id)
            .await?
            .ok_or("squad not found")?;
        let next_seq = store::events::last_seq(db, squad_id).await? + 1;
        let agents = store::squads::agents(db, squad_id).await?;
        let idle_timer = shared.settings.idle_after.map(|after| {
            myself.send_interval(
                (after / 2).max(std::time::Duration::from_millis(50)),
                || SquadMsg::IdleCheck,
            )
        });
        let mut state = SquadState {
            shared: shared.clone(),
            squad,
            next_seq,
            agents: HashMap::with_capacity(agents.len()),
            agent_of: HashMap::with_capacity(agents.len()),
            last_active: Instant::now(),
            idle_timer,
            _alive: Alive::new("squad"),
        };
        for agent in agents {
            state.spawn_agent(&myself, agent.id, Some(agent)).await?;
        }
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SquadMsg>,
        state: &mut SquadState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.idle_timer.take() {
            timer.abort();
        }
        for agent in state.agents.values() {
            agent.stop(None);
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SquadMsg>,
        msg: SquadMsg,
        state: &mut SquadState,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, SquadMsg::IdleCheck) {
            state.last_active = Instant::now();
        }
        match msg {
            SquadMsg::AddAgent(spec, reply) => {
                let _ = reply.send(state.add_agent(&myself, spec).await);
            }
            SquadMsg::Stats(reply) => {
                let _ = reply.send(SquadStats {
                    last_seq: state.next_seq - 1,
                    agents_running: state.agents.len(),
                    actor: myself.get_id().to_string(),
                });
            }
            SquadMsg::IdleCheck => {
                let idle_after = state.shared.settings.idle_after;
                if idle_after.is_some_and(|after| state.last_active.elapsed() >= after) {
                    myself.stop(Some("idle".into()));
                }
            }
            #[cfg(feature = "test-hooks")]
            SquadMsg::Panic => panic!("test hook: squad {} panics", state.squad.id),
            #[cfg(feature = "test-hooks")]
            SquadMsg::PanicAgent(agent_id) => {
                if let Some(agent) = state.agents.get(&agent_id) {
                    let _ = agent.cast(AgentMsg::Panic);
                }
            }
            #[cfg(feature = "test-hooks")]
            SquadMsg::Flood(n, reply) => {
                let filler = "x".repeat(512);
                let result = async {
                    let txn = state.shared.db.begin().await?;
                    let events = (0..n)
                        .map(|i| ("test.flood", json!({ "n": i, "filler": filler })))
                        .collect();
                    let stored = state.append(&txn, events).await?;
                    txn.commit().await?;
                    state.published(stored);
                    Ok(state.next_seq - 1)
                }
                .await;
                let _ = reply.send(result);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SquadMsg>,
        event: SupervisionEvent,
        state: &mut SquadState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                let Some(agent_id) = state.agent_of.remove(&cell.get_id()) else {
                    return Ok(());
                };
                state.agents.remove(&agent_id);
                metrics::counter!("squadron_actor_restarts_total", "kind" => "agent").increment(1);
                tracing::error!(%agent_id, error = %err, "agent actor failed; restarting it");
                // Reloaded from the store: `initial` is None.
                if let Err(err) = state.spawn_agent(&myself, agent_id, None).await {
                    tracing::error!(%agent_id, error = %err, "agent actor did not come back");
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                if let Some(agent_id) = state.agent_of.remove(&cell.get_id()) {
                    state.agents.remove(&agent_id);
                }
            }
            _ => {}
        }
        Ok(())
    }
}
