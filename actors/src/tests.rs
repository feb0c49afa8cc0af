//! The actors against the clock: an agent going offline and an idle squad stopping, on
//! tokio's paused clock; squads and agents restarted after a panic, within a budget.
//!
//! Paused time jumps to the next timer whenever the runtime has nothing to run, and it has
//! nothing while it waits on SQLite's worker threads: a query under paused time can see a
//! call's timeout expire at once. So the clock is paused only while what is measured needs no
//! query from the test (heartbeats and presence live in actors' memory), and resumed before
//! the test touches the database again. Bounds are stated in tokio's clock.
//!
//! The store is a SQLite file in a temporary directory rather than `sqlite::memory:`: each
//! pooled connection would open its own empty in-memory database, and a shared-cache one
//! answers a lock conflict with SQLITE_LOCKED at once instead of waiting for the lock.

use std::sync::Arc;
use std::time::Duration;

use squadron_migrations::{Migrator, MigratorTrait};
use tokio::time::{sleep, sleep_until, Instant};
use uuid::Uuid;

use crate::agent::{AgentMsg, Beat};
use crate::domain::{AgentSpec, AgentStatus, NewSquad};
use crate::live::LiveHub;
use crate::restarts::MAX_RESTARTS;
use crate::squad::{AgentPatch, SquadMsg, SquadStats};
use crate::turns::TurnNews;
use crate::{store, usable, Core, Settings};

/// Longer than any test runs: timeouts that must not fire.
const NEVER: Duration = Duration::from_secs(3_600);

struct Squad {
    core: Core,
    id: Uuid,
    agent_id: Uuid,
    _dir: tempfile::TempDir,
}

/// A core on a fresh database, with one squad of one agent (`Ada`, offline, heartbeating
/// every `interval_secs`).
async fn squad(idle_after: Option<Duration>, interval_secs: i64) -> Squad {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("core.db").display());
    let db = store::connect(&url).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    let org = store::orgs::find_or_create(&db, "actors").await.unwrap();
    let settings = Settings {
        idle_after,
        call_timeout: NEVER,
        setup_ttl: NEVER,
        vector_cache_bytes: 1 << 20,
    };
    let (core, _) = Core::start(db, Arc::new(LiveHub::new(64)), settings)
        .await
        .unwrap();
    let ada = AgentSpec::parse("Ada", None, None, &[], Some(interval_secs)).unwrap();
    let new = NewSquad::parse("Paused", None, None, vec![ada]).unwrap();
    let (squad, agents, _) = core.create_squad(org.id, &new).await.unwrap();
    Squad {
        core,
        id: squad.id,
        agent_id: agents[0].id,
        _dir: dir,
    }
}

impl Squad {
    async fn stats(&self) -> SquadStats {
        self.core
            .call_squad(self.id, SquadMsg::Stats)
            .await
            .unwrap()
    }

    async fn status(&self) -> AgentStatus {
        let agent = self
            .core
            .call_agent(self.id, self.agent_id, AgentMsg::Me)
            .await
            .unwrap();
        AgentStatus::parse(&agent.status).unwrap()
    }

    async fn heartbeat(&self, status: AgentStatus) {
        let beat = Beat {
            status,
            current_task_id: None,
            local_soul_md_hash: None,
        };
        self.core
            .call_agent(self.id, self.agent_id, |reply| {
                AgentMsg::Heartbeat(beat, reply)
            })
            .await
            .unwrap()
            .unwrap();
    }

    /// Heartbeats `status` on a paused clock, then checks the agent still shows it at 1.49
    /// `interval`s and is offline at 1.76: the check runs four times an interval.
    async fn goes_offline_on_time(&self, status: AgentStatus, interval: Duration) {
        tokio::time::pause();
        self.heartbeat(status).await;
        let beat = Instant::now();
        sleep_until(beat + interval.mul_f64(1.49)).await;
        assert_eq!(self.status().await, status, "at 1.49 intervals");
        sleep_until(beat + interval.mul_f64(1.76)).await;
        assert_eq!(
            self.status().await,
            AgentStatus::Offline,
            "at 1.76 intervals"
        );
        tokio::time::resume();
    }

    /// The agent's running actor, if any, without starting one.
    fn running_agent(&self) -> Option<String> {
        let actor = self.core.shared.agents.get(&self.agent_id)?;
        usable(&actor).then(|| actor.get_id().to_string())
    }

    /// Waits until `done` holds, checking every 10 ms for up to 10 s.
    async fn until(&self, what: &str, mut done: impl AsyncFnMut(&Squad) -> bool) {
        for _ in 0..1_000 {
            if done(self).await {
                return;
            }
            sleep(Duration::from_millis(10)).await;
        }
        panic!("{what}: not within 10 s");
    }

    /// Makes the agent's actor panic, and waits until its squad has replaced it.
    async fn panic_agent(&self) -> String {
        let before = self.running_agent().expect("the agent runs");
        self.core
            .cast_squad(self.id, SquadMsg::PanicAgent(self.agent_id))
            .await
            .unwrap();
        let mut after = None;
        self.until("the agent is restarted", async |s| {
            after = s.running_agent().filter(|id| *id != before);
            after.is_some()
        })
        .await;
        after.unwrap()
    }
}

#[tokio::test]
async fn an_agent_goes_offline_after_one_and_a_half_intervals() {
    let squad = squad(None, 10).await;
    assert_eq!(
        squad.status().await,
        AgentStatus::Offline,
        "new agents start offline"
    );
    squad
        .goes_offline_on_time(AgentStatus::Active, Duration::from_secs(10))
        .await;
}

#[tokio::test]
async fn an_agent_whose_interval_changes_is_checked_on_the_new_one() {
    // From an hour (checked every 15 minutes) to 8 s.
    let squad = squad(None, 3_600).await;
    let (id, patch) = (
        squad.agent_id,
        AgentPatch {
            heartbeat_interval_secs: Some(8),
            ..AgentPatch::default()
        },
    );
    squad
        .core
        .call_squad(squad.id, |reply| {
            SquadMsg::UpdateAgent(id, patch.clone(), reply)
        })
        .await
        .unwrap()
        .unwrap();
    squad
        .goes_offline_on_time(AgentStatus::Busy, Duration::from_secs(8))
        .await;
}

#[tokio::test]
async fn an_idle_squad_stops_and_comes_back_as_it_was() {
    let squad = squad(Some(Duration::from_secs(60)), 30).await;
    let before = squad.stats().await;
    tokio::time::pause();
    let active = Instant::now();
    assert!(squad.core.is_running(squad.id));
    sleep_until(active + Duration::from_secs(59)).await;
    assert!(squad.core.is_running(squad.id), "still running at 59 s");
    // Checked every half of `idle_after`: stopped by 90 s.
    sleep_until(active + Duration::from_secs(91)).await;
    assert!(!squad.core.is_running(squad.id), "stopped at 91 s");
    assert!(squad.running_agent().is_none(), "its agent stopped with it");
    tokio::time::resume();

    let after = squad.stats().await;
    assert_ne!(after.actor, before.actor, "a new actor");
    assert_eq!(after.last_seq, before.last_seq, "its events reloaded");
    assert_eq!(after.agents_running, 1, "its agent started again");
}

#[tokio::test]
async fn a_squad_stays_up_while_its_agent_answers_and_stores_the_turns_finish_once() {
    let squad = squad(Some(Duration::from_secs(60)), 30).await;
    let before = squad.stats().await;
    let agent = squad.core.agent(squad.id, squad.agent_id).await.unwrap();
    let turn = Uuid::new_v4();
    agent
        .cast(AgentMsg::Turn(turn, TurnNews::Started { stream: true }))
        .unwrap();
    tokio::time::pause();
    let active = Instant::now();
    sleep_until(active + Duration::from_secs(150)).await;
    assert!(squad.core.is_running(squad.id), "answering: up at 150 s");
    tokio::time::resume();

    for _ in 0..2 {
        let finished = TurnNews::Finished {
            outcome: "completed",
            usage: serde_json::Value::Null,
        };
        agent.cast(AgentMsg::Turn(turn, finished)).unwrap();
    }
    squad
        .until("the finish is stored", async |s| {
            s.stats().await.last_seq > before.last_seq
        })
        .await;
    tokio::time::pause();
    let answered = Instant::now();
    sleep_until(answered + Duration::from_secs(95)).await;
    assert!(!squad.core.is_running(squad.id), "idle once answered");
    tokio::time::resume();
    assert_eq!(
        squad.stats().await.last_seq,
        before.last_seq + 1,
        "one finished event for a turn finished twice"
    );
}

#[tokio::test]
async fn a_squad_and_an_agent_that_panic_are_restarted_with_their_state() {
    let squad = squad(None, 30).await;
    squad.heartbeat(AgentStatus::Busy).await;
    let before = squad.stats().await;
    assert_eq!(before.agents_online, 1);

    squad
        .core
        .cast_squad(squad.id, SquadMsg::Panic)
        .await
        .unwrap();
    squad
        .until("the squad is restarted", async |s| {
            // A call that meets the dying actor is told to try again, which is what this does.
            let stats = s.core.call_squad(s.id, SquadMsg::Stats).await;
            stats.is_ok_and(|stats| stats.actor != before.actor)
        })
        .await;
    let after = squad.stats().await;
    assert_eq!(after.last_seq, before.last_seq, "events reloaded");
    assert_eq!(after.agents_running, 1);
    assert_eq!(after.agents_online, 1, "presence reloaded");
    assert_eq!(squad.status().await, AgentStatus::Busy);

    squad.panic_agent().await;
    assert_eq!(
        squad.status().await,
        AgentStatus::Busy,
        "its presence reloaded"
    );
}

#[tokio::test]
async fn an_agent_that_keeps_panicking_is_left_stopped_until_it_is_asked_for() {
    let squad = squad(None, 30).await;
    squad.heartbeat(AgentStatus::Active).await;
    for _ in 0..MAX_RESTARTS {
        squad.panic_agent().await;
    }
    // One more within the minute: the squad lets it be.
    squad
        .core
        .cast_squad(squad.id, SquadMsg::PanicAgent(squad.agent_id))
        .await
        .unwrap();
    squad
        .until("the agent is left stopped", async |s| {
            s.stats().await.agents_running == 0
        })
        .await;
    assert!(squad.running_agent().is_none());
    assert_eq!(
        squad.stats().await.agents_online,
        0,
        "a stopped agent does not keep its squad up"
    );

    // A request for it starts it again.
    squad.heartbeat(AgentStatus::Active).await;
    assert!(squad.running_agent().is_some());
    assert_eq!(squad.stats().await.agents_running, 1);
}
