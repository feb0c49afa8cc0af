//! `SquadActor`: the single writer of one squad. Each change and the events that describe it
//! are stored in one transaction, then the events are published live with their per-squad
//! sequence numbers. It supervises its agents' actors and tells them of new notifications.

mod board;
mod content;
mod members;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ractor::{
    Actor, ActorId, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort, SupervisionEvent,
};
use sea_orm::{DatabaseTransaction, DbErr};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

pub use board::{NewTask, TaskPatch};
pub use content::{DocFields, WatchFields};
pub use members::{AgentPatch, SetupResult};

use crate::agent::{AgentActor, AgentArgs, AgentMsg, ToSquad};
use crate::domain::{AgentSpec, AgentStatus};
use crate::live::LiveEvent;
use crate::restarts::RestartBudget;
use crate::store::entity::{
    agent, comment, document, event, notification, squad, task, watch_item,
};
use crate::{store, Alive, CoreError, Shared};

pub struct SquadActor;

pub struct SquadArgs {
    pub squad_id: Uuid,
    pub shared: Arc<Shared>,
    /// The root supervisor, which alone may stop a squad that went idle.
    pub root: DerivedActorRef<IdleSquad>,
}

/// An agent, by id and name, as events and notifications name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRef {
    pub id: Uuid,
    pub name: String,
}

/// Who makes a change: one of the squad's agents, or a person (an organization token).
#[derive(Clone, Debug)]
pub enum Author {
    Agent(AgentRef),
    Human,
}

impl Author {
    pub fn agent_id(&self) -> Option<Uuid> {
        match self {
            Author::Agent(a) => Some(a.id),
            Author::Human => None,
        }
    }

    fn name(&self) -> &str {
        match self {
            Author::Agent(a) => &a.name,
            Author::Human => "A human",
        }
    }

    fn json(&self) -> Value {
        match self {
            Author::Agent(a) => json!({ "id": a.id, "name": a.name }),
            Author::Human => json!({ "human": true }),
        }
    }
}

type Reply<T> = RpcReplyPort<Result<T, CoreError>>;

/// How many times a write is tried when the database reports a transient conflict.
const WRITE_ATTEMPTS: u32 = 5;

/// Awaits a write of the squad's state, running it again (after a short, growing pause)
/// while PostgreSQL reports a deadlock or serialization failure. That is safe: the
/// transaction was rolled back whole, and a write changes the actor's own state only after
/// its commit. The arguments are cloned per attempt.
macro_rules! retrying {
    ($write:expr) => {{
        let mut attempt = 1;
        loop {
            match $write.await {
                Err(err) if attempt < WRITE_ATTEMPTS && retryable(&err) => {
                    metrics::counter!("squadron_db_write_retries_total").increment(1);
                    tracing::debug!(attempt, error = %err, "write conflicted; trying again");
                    let jitter = rand::random_range(0..10 * attempt as u64);
                    let pause = 10 * attempt as u64 + jitter;
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                    attempt += 1;
                }
                result => break result,
            }
        }
    }};
}

/// Whether a write failed on a conflict that running it again resolves.
fn retryable(err: &CoreError) -> bool {
    matches!(err, CoreError::Db(err) if store::is_retryable(err))
}

pub enum SquadMsg {
    AddAgent(AgentSpec, Reply<(agent::Model, Option<String>)>),
    UpdateAgent(Uuid, AgentPatch, Reply<agent::Model>),
    DeleteAgent(Uuid, Reply<agent::Model>),
    /// Redeems the one-time setup token (given as its hash).
    Setup(String, Reply<SetupResult>),
    CreateTask(Author, NewTask, Reply<task::Model>),
    UpdateTask(Author, Uuid, TaskPatch, Reply<task::Model>),
    DeleteTask(Author, Uuid, Reply<task::Model>),
    ClaimTask(AgentRef, Uuid, Reply<task::Model>),
    Comment(Author, Uuid, String, Reply<comment::Model>),
    Assign(Author, Uuid, Vec<AgentRef>, Reply<task::Model>),
    Unassign(Author, Uuid, Uuid, Reply<task::Model>),
    SaveDocument(Author, Option<Uuid>, DocFields, Reply<document::Model>),
    DeleteDocument(Author, Uuid, Reply<document::Model>),
    SaveWatchItem(Author, Option<Uuid>, WatchFields, Reply<watch_item::Model>),
    DeleteWatchItem(Author, Uuid, Reply<watch_item::Model>),
    /// From an agent's actor: its status changed.
    AgentStatus {
        agent_id: Uuid,
        name: String,
        from: AgentStatus,
        to: AgentStatus,
    },
    /// Events to store and publish that change nothing else (sent by agent actors).
    Record(Vec<(&'static str, Value)>),
    /// From an agent's actor: it began answering (`busy`) or has no turn in flight any more.
    Answering {
        agent_id: Uuid,
        busy: bool,
    },
    Stats(RpcReplyPort<SquadStats>),
    /// The actor of one of the squad's agents (answered once the squad has started it).
    Agent(Uuid, RpcReplyPort<Option<ActorRef<AgentMsg>>>),
    /// Sent by the actor's own timer: stop if nothing happened for a while.
    IdleCheck,
    #[cfg(any(test, feature = "test-hooks"))]
    Panic,
    #[cfg(any(test, feature = "test-hooks"))]
    PanicAgent(Uuid),
    /// Records `n` events of so many filler bytes at once, to drive a subscriber past its
    /// buffer.
    #[cfg(feature = "test-hooks")]
    Flood(u32, usize, Reply<i64>),
    /// Makes the next `n` commits fail as PostgreSQL fails a transaction it cannot
    /// serialize (SQLSTATE 40001), raised by the database itself.
    #[cfg(feature = "test-hooks")]
    FailCommits(u32),
}

impl From<ToSquad> for SquadMsg {
    fn from(message: ToSquad) -> SquadMsg {
        match message {
            ToSquad::Status {
                agent_id,
                name,
                from,
                to,
            } => SquadMsg::AgentStatus {
                agent_id,
                name,
                from,
                to,
            },
            ToSquad::Record(events) => SquadMsg::Record(events),
            ToSquad::Answering { agent_id, busy } => SquadMsg::Answering { agent_id, busy },
        }
    }
}

/// Back again, for a message that could not be sent (ractor's derived references need it).
impl TryFrom<SquadMsg> for ToSquad {
    type Error = SquadMsg;

    fn try_from(message: SquadMsg) -> Result<ToSquad, SquadMsg> {
        match message {
            SquadMsg::AgentStatus {
                agent_id,
                name,
                from,
                to,
            } => Ok(ToSquad::Status {
                agent_id,
                name,
                from,
                to,
            }),
            SquadMsg::Record(events) => Ok(ToSquad::Record(events)),
            SquadMsg::Answering { agent_id, busy } => Ok(ToSquad::Answering { agent_id, busy }),
            other => Err(other),
        }
    }
}

/// A squad's actor that has been idle, to its supervisor: stop it, unless it is no longer the
/// squad's. The supervisor takes it among its own messages.
#[derive(Debug)]
pub struct IdleSquad(pub Uuid, pub ActorRef<SquadMsg>);

/// What the squad's actor holds right now.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SquadStats {
    pub last_seq: i64,
    pub agents_running: usize,
    pub agents_online: usize,
    /// The running actor's id: it changes when the actor is restarted.
    pub actor: String,
}

pub struct SquadState {
    shared: Arc<Shared>,
    root: DerivedActorRef<IdleSquad>,
    squad: squad::Model,
    next_seq: i64,
    agents: HashMap<Uuid, ActorRef<AgentMsg>>,
    agent_of: HashMap<ActorId, Uuid>,
    /// Agents not offline: while any is, the squad stays up to run their staleness checks.
    online: HashSet<Uuid>,
    /// Agents with a turn in flight: the squad stays up until they have answered.
    answering: HashSet<Uuid>,
    last_active: Instant,
    idle_timer: Option<JoinHandle<()>>,
    /// Agents that failed lately: one failing again and again is left stopped.
    restarts: RestartBudget<Uuid>,
    /// Commits still to fail with an injected serialization failure (test hook).
    #[cfg(feature = "test-hooks")]
    failing_commits: u32,
    _alive: Alive,
}

/// The few fields of an agent that events carry.
pub fn agent_brief(agent: &agent::Model) -> Value {
    json!({ "id": agent.id, "name": agent.name, "role": agent.role })
}

fn task_brief(task: &task::Model) -> Value {
    json!({ "id": task.id, "title": task.title })
}

/// Events waiting for their transaction to commit.
type Events = Vec<(&'static str, Value)>;

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
            squad: myself.get_derived(),
            shared: self.shared.clone(),
        };
        let (actor, _) = Actor::spawn_linked(None, AgentActor, args, myself.get_cell()).await?;
        self.agent_of.insert(actor.get_id(), agent_id);
        self.agents.insert(agent_id, actor);
        Ok(())
    }

    /// The agent's running actor. One left stopped (it kept failing, or did not come back)
    /// is started again now that someone asks for it; `None` if it is not this squad's.
    async fn agent(
        &mut self,
        myself: &ActorRef<SquadMsg>,
        agent_id: Uuid,
    ) -> Option<ActorRef<AgentMsg>> {
        if let Some(actor) = self.agents.get(&agent_id) {
            return Some(actor.clone());
        }
        let agent = match store::squads::agent(&self.shared.db, agent_id).await {
            Ok(Some(agent)) if agent.squad_id == self.squad.id => agent,
            Ok(_) => return None,
            Err(err) => {
                tracing::error!(%agent_id, error = %err, "could not load an agent to start it");
                return None;
            }
        };
        if let Err(err) = self.spawn_agent(myself, agent_id, Some(agent)).await {
            tracing::error!(%agent_id, error = %err, "agent actor did not start");
            return None;
        }
        self.agents.get(&agent_id).cloned()
    }

    /// Stores `events` with the next sequence numbers inside `txn`, commits, then publishes.
    /// If the commit fails, no sequence number is used up.
    async fn commit(&mut self, txn: DatabaseTransaction, events: Events) -> Result<(), DbErr> {
        self.commit_and_notify(txn, events, Vec::new()).await
    }

    /// [`SquadState::commit`], handing stored notifications to their agents' actors before
    /// the events go out: the agent who was mentioned hears of it ahead of a thousand
    /// dashboards, not after them.
    async fn commit_and_notify(
        &mut self,
        txn: DatabaseTransaction,
        events: Events,
        notifications: Vec<notification::Model>,
    ) -> Result<(), DbErr> {
        #[cfg(feature = "test-hooks")]
        if self.failing_commits > 0 {
            self.failing_commits -= 1;
            use sea_orm::ConnectionTrait;
            txn.execute_unprepared(
                "DO $$ BEGIN RAISE EXCEPTION 'injected by a test' USING ERRCODE = '40001'; END $$",
            )
            .await?;
        }
        let mut stored: Vec<event::Model> = Vec::with_capacity(events.len());
        for (i, (kind, data)) in events.into_iter().enumerate() {
            let seq = self.next_seq + i as i64;
            stored.push(store::events::append(&txn, self.squad.id, seq, kind, data).await?);
        }
        txn.commit().await?;
        self.next_seq += stored.len() as i64;
        self.notify(notifications);
        for event in &stored {
            self.shared.hub.publish(Arc::new(LiveEvent::from(event)));
        }
        Ok(())
    }

    async fn record(&mut self, events: Events) -> Result<(), CoreError> {
        let txn = store::begin_write(&self.shared.db).await?;
        Ok(self.commit(txn, events).await?)
    }

    /// Hands stored notifications to their agents' actors (after the commit).
    fn notify(&self, notifications: Vec<notification::Model>) {
        let mut by_agent: HashMap<Uuid, Vec<notification::Model>> = HashMap::new();
        for n in notifications {
            by_agent.entry(n.agent_id).or_default().push(n);
        }
        for (agent_id, batch) in by_agent {
            if let Some(actor) = self.agents.get(&agent_id) {
                let _ = actor.cast(AgentMsg::Notified(batch));
            }
        }
    }

    fn agent_status(
        &mut self,
        agent_id: Uuid,
        name: String,
        from: AgentStatus,
        to: AgentStatus,
    ) -> Events {
        if to == AgentStatus::Offline {
            self.online.remove(&agent_id);
        } else {
            self.online.insert(agent_id);
        }
        let message = match to {
            AgentStatus::Offline => format!("{name} went offline"),
            _ if from == AgentStatus::Offline => format!("{name} came online ({})", to.as_str()),
            _ => format!("{name} is now {}", to.as_str()),
        };
        vec![(
            "agent.status_changed",
            json!({
                "message": message,
                "by": { "id": agent_id, "name": name },
                "agent": { "id": agent_id, "name": name, "status": to.as_str() },
                "from": from.as_str(),
                "to": to.as_str(),
            }),
        )]
    }
}

impl Actor for SquadActor {
    type Msg = SquadMsg;
    type State = SquadState;
    type Arguments = SquadArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SquadMsg>,
        SquadArgs {
            squad_id,
            shared,
            root,
        }: SquadArgs,
    ) -> Result<SquadState, ActorProcessingErr> {
        let db = &shared.db;
        let squad = store::squads::get_any(db, squad_id)
            .await?
            .ok_or("squad not found")?;
        let next_seq = store::events::last_seq(db, squad_id).await? + 1;
        let mut agents = store::squads::agents(db, squad_id).await?;
        for agent in &mut agents {
            shared.presence.overlay(agent);
        }
        let idle_timer = shared.settings.idle_after.map(|after| {
            myself.send_interval(
                (after / 2).max(std::time::Duration::from_millis(50)),
                || SquadMsg::IdleCheck,
            )
        });
        let mut state = SquadState {
            shared: shared.clone(),
            root,
            squad,
            next_seq,
            agents: HashMap::with_capacity(agents.len()),
            agent_of: HashMap::with_capacity(agents.len()),
            online: agents
                .iter()
                .filter(|a| a.status != AgentStatus::Offline.as_str())
                .map(|a| a.id)
                .collect(),
            answering: HashSet::new(),
            last_active: Instant::now(),
            idle_timer,
            restarts: RestartBudget::default(),
            #[cfg(feature = "test-hooks")]
            failing_commits: 0,
            _alive: Alive::new("squad"),
        };
        for agent in agents {
            if let Err(err) = state.spawn_agent(&myself, agent.id, Some(agent)).await {
                // A squad that fails to start never runs post_stop: stop the agents it
                // started here, or they would live on beside its successor's.
                for started in state.agents.values() {
                    started.stop(Some("squad failed to start".into()));
                }
                return Err(err);
            }
        }
        Ok(state)
    }

    async fn post_stop(
        &self,
        myself: ActorRef<SquadMsg>,
        state: &mut SquadState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.idle_timer.take() {
            timer.abort();
        }
        // The agents answer what they already hold and are gone before a successor exists.
        myself
            .drain_children_and_wait(Some(state.shared.settings.call_timeout))
            .await;
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
                let _ = reply.send(retrying!(state.add_agent(&myself, spec.clone())));
            }
            SquadMsg::UpdateAgent(id, patch, reply) => {
                let _ = reply.send(retrying!(state.update_agent(id, patch.clone())));
            }
            SquadMsg::DeleteAgent(id, reply) => {
                let _ = reply.send(retrying!(state.delete_agent(id)));
            }
            SquadMsg::Setup(token_hash, reply) => {
                let _ = reply.send(retrying!(state.setup(&token_hash)));
            }
            SquadMsg::CreateTask(by, new, reply) => {
                let _ = reply.send(retrying!(state.create_task(by.clone(), new.clone())));
            }
            SquadMsg::UpdateTask(by, id, patch, reply) => {
                let _ = reply.send(retrying!(state.update_task(by.clone(), id, patch.clone())));
            }
            SquadMsg::DeleteTask(by, id, reply) => {
                let _ = reply.send(retrying!(state.delete_task(by.clone(), id)));
            }
            SquadMsg::ClaimTask(agent, id, reply) => {
                let _ = reply.send(retrying!(state.claim_task(agent.clone(), id)));
            }
            SquadMsg::Comment(by, task_id, content, reply) => {
                let _ = reply.send(retrying!(state.comment(
                    by.clone(),
                    task_id,
                    content.clone()
                )));
            }
            SquadMsg::Assign(by, task_id, agents, reply) => {
                let _ = reply.send(retrying!(state.assign(by.clone(), task_id, agents.clone())));
            }
            SquadMsg::Unassign(by, task_id, agent_id, reply) => {
                let _ = reply.send(retrying!(state.unassign(by.clone(), task_id, agent_id)));
            }
            SquadMsg::SaveDocument(by, id, fields, reply) => {
                let _ = reply.send(retrying!(state.save_document(
                    by.clone(),
                    id,
                    fields.clone()
                )));
            }
            SquadMsg::DeleteDocument(by, id, reply) => {
                let _ = reply.send(retrying!(state.delete_document(by.clone(), id)));
            }
            SquadMsg::SaveWatchItem(by, id, fields, reply) => {
                let _ = reply.send(retrying!(state.save_watch_item(
                    by.clone(),
                    id,
                    fields.clone()
                )));
            }
            SquadMsg::DeleteWatchItem(by, id, reply) => {
                let _ = reply.send(retrying!(state.delete_watch_item(by.clone(), id)));
            }
            SquadMsg::AgentStatus {
                agent_id,
                name,
                from,
                to,
            } => {
                let events = state.agent_status(agent_id, name, from, to);
                if let Err(err) = retrying!(state.record(events.clone())) {
                    tracing::error!(%agent_id, error = %err, "could not record a status change");
                }
            }
            SquadMsg::Record(events) => {
                if let Err(err) = retrying!(state.record(events.clone())) {
                    tracing::error!(squad_id = %state.squad.id, error = %err, "could not record events");
                }
            }
            SquadMsg::Answering { agent_id, busy } => {
                if busy {
                    state.answering.insert(agent_id);
                } else {
                    state.answering.remove(&agent_id);
                }
            }
            SquadMsg::Stats(reply) => {
                let _ = reply.send(SquadStats {
                    last_seq: state.next_seq - 1,
                    agents_running: state.agents.len(),
                    agents_online: state.online.len(),
                    actor: myself.get_id().to_string(),
                });
            }
            SquadMsg::Agent(agent_id, reply) => {
                let _ = reply.send(state.agent(&myself, agent_id).await);
            }
            SquadMsg::IdleCheck => {
                let idle_after = state.shared.settings.idle_after;
                let idle = idle_after.is_some_and(|after| state.last_active.elapsed() >= after);
                if idle && state.online.is_empty() && state.answering.is_empty() {
                    let _ = state
                        .root
                        .send_message(IdleSquad(state.squad.id, myself.clone()));
                }
            }
            #[cfg(any(test, feature = "test-hooks"))]
            SquadMsg::Panic => panic!("test hook: squad {} panics", state.squad.id),
            #[cfg(any(test, feature = "test-hooks"))]
            SquadMsg::PanicAgent(agent_id) => {
                if let Some(agent) = state.agents.get(&agent_id) {
                    let _ = agent.cast(AgentMsg::Panic);
                }
            }
            #[cfg(feature = "test-hooks")]
            SquadMsg::Flood(n, filler, reply) => {
                let filler = "x".repeat(filler);
                let events = (0..n)
                    .map(|i| ("test.flood", json!({ "n": i, "filler": filler })))
                    .collect();
                let result = state.record(events).await.map(|()| state.next_seq - 1);
                let _ = reply.send(result);
            }
            #[cfg(feature = "test-hooks")]
            SquadMsg::FailCommits(n) => state.failing_commits = n,
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
                // Its turns in flight went with it.
                state.answering.remove(&agent_id);
                metrics::counter!("squadron_actor_restarts_total", "kind" => "agent").increment(1);
                tracing::error!(%agent_id, error = %err, "agent actor failed; restarting it");
                if !state.restarts.allows(agent_id) {
                    tracing::error!(%agent_id, "agent actor keeps failing; left stopped until next use");
                    // No staleness check runs for it now: it must not keep the squad up.
                    state.online.remove(&agent_id);
                    return Ok(());
                }
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
