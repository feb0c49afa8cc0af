//! `AgentActor`: one agent's presence and its queue of undelivered notifications. It answers
//! heartbeats from memory, marks itself offline when it misses 1.5x its own heartbeat interval,
//! and hands out a notification until, and never after, the agent acknowledges it. It keeps
//! the turns the agent is answering too ([`crate::turns`]), and mirrors them to its squad.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::domain::AgentStatus;
use crate::live::LiveEvent;
use crate::presence::PresenceRow;
use crate::store::entity::{agent, notification};
use crate::turns::{TurnNews, Turns};
use crate::{store, Alive, CoreError, Shared};

pub struct AgentActor;

/// What an agent's actor tells its squad's. The squad's actor takes these among its own
/// messages; the agent sees only this, so it knows nothing else of the squad.
#[derive(Debug)]
pub enum ToSquad {
    /// Its status changed.
    Status {
        agent_id: Uuid,
        name: String,
        from: AgentStatus,
        to: AgentStatus,
    },
    /// Events to store and publish that change nothing else.
    Record(Vec<(&'static str, serde_json::Value)>),
    /// It began answering (`busy`), or has no turn in flight any more.
    Answering { agent_id: Uuid, busy: bool },
}

pub struct AgentArgs {
    pub agent_id: Uuid,
    /// The agent as its squad just loaded it; `None` makes the actor read it from the store.
    pub initial: Option<agent::Model>,
    pub squad: DerivedActorRef<ToSquad>,
    pub shared: Arc<Shared>,
}

/// What a heartbeat says.
#[derive(Clone, Debug)]
pub struct Beat {
    pub status: AgentStatus,
    /// `None`: unchanged; `Some(None)`: no current task.
    pub current_task_id: Option<Option<Uuid>>,
    pub local_soul_md_hash: Option<String>,
}

/// What a heartbeat is told.
#[derive(Clone, Debug)]
pub struct BeatReply {
    pub agent: agent::Model,
    pub notifications: Vec<notification::Model>,
    pub soul_md_changed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivered {
    Now,
    Already,
}

pub enum AgentMsg {
    Heartbeat(Beat, RpcReplyPort<Result<BeatReply, CoreError>>),
    /// The agent as it is now, presence included.
    Me(RpcReplyPort<agent::Model>),
    Pending(RpcReplyPort<Vec<notification::Model>>),
    Deliver(Uuid, RpcReplyPort<Result<Delivered, CoreError>>),
    /// New notifications, stored by the squad.
    Notified(Vec<notification::Model>),
    /// Notifications that failed (their task is gone): drop them from the queue.
    Forget(Vec<Uuid>),
    /// The agent's spec or SOUL.md changed.
    Updated(Box<agent::Model>),
    CheckStale,
    /// News of one of its turns (by completion id), from the turn engine.
    Turn(Uuid, TurnNews),
    #[cfg(any(test, feature = "test-hooks"))]
    Panic,
}

pub struct AgentState {
    shared: Arc<Shared>,
    squad: DerivedActorRef<ToSquad>,
    agent: agent::Model,
    pending: Vec<notification::Model>,
    /// When the last heartbeat arrived (by this process's clock).
    last_beat: Instant,
    /// Sends [`AgentMsg::CheckStale`] four times an interval; re-armed when the interval changes.
    stale_timer: JoinHandle<()>,
    /// The turns it is answering.
    turns: Turns,
    _alive: Alive,
}

/// An agent's heartbeat interval.
fn interval_of(agent: &agent::Model) -> Duration {
    Duration::from_secs(agent.heartbeat_interval_secs.max(1) as u64)
}

/// The timer of the staleness check: four times an interval, so an agent is marked offline
/// between 1.5 and 1.75 intervals after its last heartbeat.
fn stale_timer(myself: &ActorRef<AgentMsg>, interval: Duration) -> JoinHandle<()> {
    myself.send_interval((interval / 4).max(Duration::from_millis(100)), || {
        AgentMsg::CheckStale
    })
}

impl AgentState {
    fn interval(&self) -> Duration {
        interval_of(&self.agent)
    }

    fn status(&self) -> AgentStatus {
        AgentStatus::parse(&self.agent.status).unwrap_or(AgentStatus::Offline)
    }

    fn record_presence(&self) {
        self.shared.presence.record(
            self.agent.id,
            PresenceRow {
                status: self.agent.status.clone(),
                last_heartbeat_at: self.agent.last_heartbeat_at,
                current_task_id: self.agent.current_task_id,
            },
        );
    }

    fn set_status(&mut self, to: AgentStatus) {
        let from = self.status();
        if from == to {
            return;
        }
        self.agent.status = to.as_str().to_owned();
        let _ = self.squad.send_message(ToSquad::Status {
            agent_id: self.agent.id,
            name: self.agent.name.clone(),
            from,
            to,
        });
    }

    async fn heartbeat(&mut self, beat: Beat) -> Result<BeatReply, CoreError> {
        if let Some(Some(task_id)) = beat.current_task_id {
            if self.agent.current_task_id != Some(task_id)
                && store::tasks::get(&self.shared.db, self.agent.squad_id, task_id)
                    .await?
                    .is_none()
            {
                return Err(CoreError::Invalid(format!(
                    "current_task_id {task_id} is not a task of this squad"
                )));
            }
        }
        self.last_beat = Instant::now();
        self.agent.last_heartbeat_at = Some(Utc::now());
        if let Some(task) = beat.current_task_id {
            self.agent.current_task_id = task;
        }
        self.set_status(beat.status);
        self.record_presence();
        self.publish_heartbeat();
        let soul_md_changed = beat.local_soul_md_hash.is_some_and(|hash| {
            !self.agent.soul_md_hash.is_empty() && hash != self.agent.soul_md_hash
        });
        Ok(BeatReply {
            agent: self.agent.clone(),
            notifications: self.pending.clone(),
            soul_md_changed,
        })
    }

    /// Heartbeats are news for dashboards, not history: published, never stored.
    fn publish_heartbeat(&self) {
        let squad_id = self.agent.squad_id;
        if !self.shared.hub.is_watched(squad_id) {
            return;
        }
        let data = json!({ "agent": {
            "id": self.agent.id,
            "name": self.agent.name,
            "status": self.agent.status,
            "current_task_id": self.agent.current_task_id,
            "last_heartbeat_at": self.agent.last_heartbeat_at,
        }});
        let event = LiveEvent::new(squad_id, None, "agent.heartbeat", &data, Utc::now());
        self.shared.hub.publish(Arc::new(event));
    }

    async fn deliver(&mut self, id: Uuid) -> Result<Delivered, CoreError> {
        let Some(at) = self.pending.iter().position(|n| n.id == id) else {
            return match store::notifications::get(&self.shared.db, self.agent.id, id).await? {
                Some(n) if n.delivered_at.is_some() => Ok(Delivered::Already),
                Some(_) => Err(CoreError::Conflict(
                    "this notification can no longer be delivered".into(),
                )),
                None => Err(CoreError::NotFound("notification")),
            };
        };
        // Stored first: once the agent is told "delivered", it is never handed out again.
        store::notifications::mark_delivered(&self.shared.db, id, Utc::now()).await?;
        let notification = self.pending.remove(at);
        let _ = self.squad.send_message(ToSquad::Record(vec![(
            "notification.delivered",
            json!({
                "message": format!("{} read a notification", self.agent.name),
                "by": { "id": self.agent.id, "name": self.agent.name },
                "notification": { "id": notification.id, "task_id": notification.task_id },
            }),
        )]));
        Ok(Delivered::Now)
    }

    /// Takes a turn's news; the squad stores what is to be stored and learns when the agent
    /// begins or stops answering (it stays up while any turn is in flight).
    fn turn(&mut self, completion_id: Uuid, news: TurnNews) {
        let was_busy = !self.turns.is_empty();
        let stored = self
            .turns
            .news(&self.agent, &self.shared.hub, completion_id, news);
        self.tell_squad(stored, was_busy);
    }

    /// Stopping: its turns in flight are finished as cancelled.
    fn finish_turns(&mut self) {
        let was_busy = !self.turns.is_empty();
        let stored = self.turns.cancel_all(&self.agent, &self.shared.hub);
        self.tell_squad(stored, was_busy);
    }

    fn tell_squad(&self, stored: Vec<(&'static str, serde_json::Value)>, was_busy: bool) {
        if !stored.is_empty() {
            let _ = self.squad.send_message(ToSquad::Record(stored));
        }
        let busy = !self.turns.is_empty();
        if busy != was_busy {
            let agent_id = self.agent.id;
            let _ = self
                .squad
                .send_message(ToSquad::Answering { agent_id, busy });
        }
    }

    fn notified(&mut self, notifications: Vec<notification::Model>) {
        for n in notifications {
            if self.pending.iter().any(|p| p.id == n.id) {
                continue; // already loaded from the store by a restart
            }
            let json = json!({ "type": "notification", "agent_id": self.agent.id, "notification": view(&n) });
            self.shared.hub.publish(Arc::new(LiveEvent::ephemeral(
                self.agent.id,
                "notification",
                json.to_string(),
            )));
            self.pending.push(n);
        }
    }
}

/// A notification as agents see it (seed 002).
pub fn view(n: &notification::Model) -> serde_json::Value {
    json!({
        "id": n.id,
        "kind": n.kind,
        "content": n.content,
        "task_id": n.task_id,
        "message_id": n.message_id,
        "created_at": n.created_at,
    })
}

impl Actor for AgentActor {
    type Msg = AgentMsg;
    type State = AgentState;
    type Arguments = AgentArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<AgentMsg>,
        args: AgentArgs,
    ) -> Result<AgentState, ActorProcessingErr> {
        let db = &args.shared.db;
        let mut agent = match args.initial {
            Some(agent) => agent,
            None => store::squads::agent(db, args.agent_id)
                .await?
                .ok_or("agent not found")?,
        };
        args.shared.presence.overlay(&mut agent);
        let pending = store::notifications::pending(db, agent.id).await?;
        // Silent since before this start: count from its last stored heartbeat.
        let since_beat = agent
            .last_heartbeat_at
            .and_then(|at| (Utc::now() - at).to_std().ok())
            .unwrap_or_default();
        let last_beat = Instant::now()
            .checked_sub(since_beat)
            .unwrap_or_else(Instant::now);
        let stale_timer = stale_timer(&myself, interval_of(&agent));
        args.shared.agents.insert(agent.id, myself.clone());
        Ok(AgentState {
            shared: args.shared.clone(),
            squad: args.squad,
            agent,
            pending,
            last_beat,
            stale_timer,
            turns: Turns::default(),
            _alive: Alive::new("agent"),
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<AgentMsg>,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        state.stale_timer.abort();
        state.finish_turns();
        state
            .shared
            .agents
            .remove_if(&state.agent.id, |_, a| a.get_id() == myself.get_id());
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<AgentMsg>,
        msg: AgentMsg,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AgentMsg::Heartbeat(beat, reply) => {
                let _ = reply.send(state.heartbeat(beat).await);
            }
            AgentMsg::Me(reply) => {
                let _ = reply.send(state.agent.clone());
            }
            AgentMsg::Pending(reply) => {
                let _ = reply.send(state.pending.clone());
            }
            AgentMsg::Deliver(id, reply) => {
                let _ = reply.send(state.deliver(id).await);
            }
            AgentMsg::Notified(notifications) => state.notified(notifications),
            AgentMsg::Forget(ids) => state.pending.retain(|n| !ids.contains(&n.id)),
            AgentMsg::Updated(agent) => {
                let mut agent = *agent;
                // Presence is this actor's; the rest comes from the squad.
                agent.status = state.agent.status.clone();
                agent.last_heartbeat_at = state.agent.last_heartbeat_at;
                agent.current_task_id = state.agent.current_task_id;
                let rearm = interval_of(&agent) != state.interval();
                state.agent = agent;
                if rearm {
                    state.stale_timer.abort();
                    state.stale_timer = stale_timer(&myself, state.interval());
                }
            }
            AgentMsg::CheckStale => {
                let limit = state.interval().mul_f64(1.5);
                if state.status() != AgentStatus::Offline && state.last_beat.elapsed() > limit {
                    state.set_status(AgentStatus::Offline);
                    state.record_presence();
                }
            }
            AgentMsg::Turn(completion_id, news) => state.turn(completion_id, news),
            #[cfg(any(test, feature = "test-hooks"))]
            AgentMsg::Panic => panic!("test hook: agent {} panics", state.agent.id),
        }
        Ok(())
    }
}
