//! Knowledge: files in vector stores, made searchable by ingest jobs. Each file being
//! ingested into a store is an [`ingest::IngestJob`] actor under the [`Knowledge`]
//! supervisor, which starts them (a few at a time; the rest wait their turn), cancels them,
//! restarts an item that changed once its old job has stopped, resumes the jobs a stopped server left behind, and records a job that
//! panicked as failed.
//!
//! Embeddings come from the HTTP layer's providers through the [`Embedder`] trait, so this
//! crate needs no HTTP client.

pub mod chunk;
pub mod extract;
mod ingest;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use object_store::ObjectStore;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store;
use crate::{Alive, Shared};

/// A file's id as the OpenAI-style API shows it.
pub fn file_id(id: Uuid) -> String {
    format!("file-{}", id.simple())
}

/// A vector store's id as the OpenAI-style API shows it.
pub fn store_id(id: Uuid) -> String {
    format!("vs_{}", id.simple())
}

/// Why an embedding call failed: worth retrying (a 429, a 5xx, a timeout) or not.
#[derive(Debug, Clone)]
pub enum EmbedError {
    Retryable(String),
    Fatal(String),
}

/// Turns texts into vectors with one of an account's embedding models.
pub trait Embedder: Send + Sync + 'static {
    /// One vector per text, in order.
    fn embed(
        &self,
        org_id: Uuid,
        model_id: Uuid,
        texts: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<Vec<f32>>, EmbedError>>;
}

/// How ingest jobs work.
#[derive(Clone, Debug)]
pub struct IngestSettings {
    /// Jobs running at once; more wait in line. Each tokenizes on a blocking thread and
    /// writes through the database pool, so a hundred at once would starve both.
    pub jobs: usize,
    /// Texts per embedding call.
    pub batch: usize,
    /// Embedding calls in flight per job.
    pub concurrency: usize,
    /// Attempts per embedding call before the file fails.
    pub attempts: u32,
    /// The first retry's delay; each next one doubles, up to [`IngestSettings::MAX_BACKOFF`].
    pub backoff: Duration,
}

impl IngestSettings {
    pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            jobs: 4,
            batch: 64,
            concurrency: 2,
            attempts: 6,
            backoff: Duration::from_millis(500),
        }
    }
}

/// What ingest jobs share.
pub struct Deps {
    pub shared: Arc<Shared>,
    pub embedder: Arc<dyn Embedder>,
    pub objects: Arc<dyn ObjectStore>,
    pub settings: IngestSettings,
    /// Cancelled when the server stops: jobs end where they are, their rows still
    /// `in_progress`, and start over at the next start.
    pub shutdown: CancellationToken,
}

impl Deps {
    /// Where an account's ingest news goes: its default squad (the dashboard's home), if it
    /// has one. Looked up once per job.
    async fn channel(&self, org_id: Uuid) -> Option<Uuid> {
        let squad = store::squads::default_of(&self.shared.db, org_id).await;
        squad.ok().flatten().map(|s| s.id)
    }

    /// Publishes ingest news on `channel`, if anyone watches it.
    fn publish(&self, channel: Option<Uuid>, kind: &str, data: serde_json::Value) {
        let Some(channel) = channel.filter(|c| self.shared.hub.is_watched(*c)) else {
            return;
        };
        let event = crate::live::LiveEvent::new(channel, None, kind, &data, chrono::Utc::now());
        self.shared.hub.publish(Arc::new(event));
    }
}

pub enum KnowledgeMsg {
    /// Start over the jobs a stopped server left in progress (their chunks are cleared
    /// first); sent once the server is ready to embed.
    Resume,
    /// Ingest (or ingest again) the vector store file with this id.
    Ingest(Uuid),
    /// Stop its job, if one runs; the caller has already marked it cancelled.
    Cancel(Uuid),
    /// The vector store files whose jobs are running or waiting (to tell stuck rows from busy
    /// ones).
    Running(ractor::RpcReplyPort<Vec<Uuid>>),
}

pub struct Knowledge;

pub struct KnowledgeState {
    deps: Arc<Deps>,
    running: HashMap<Uuid, (ActorId, CancellationToken)>,
    job_of: HashMap<ActorId, Uuid>,
    /// Items to ingest again once their running job has stopped.
    again: HashSet<Uuid>,
    /// Items waiting for a job to end before theirs starts, in order.
    waiting: VecDeque<Uuid>,
    _alive: Alive,
}

impl KnowledgeState {
    /// Starts the item's job, or puts it in line; an item whose job runs is stopped and
    /// started again once that job has ended.
    async fn start(&mut self, myself: &ActorRef<KnowledgeMsg>, id: Uuid) {
        if let Some((_, token)) = self.running.get(&id) {
            token.cancel();
            self.again.insert(id);
            return;
        }
        if self.running.len() >= self.deps.settings.jobs.max(1) {
            if !self.waiting.contains(&id) {
                self.waiting.push_back(id);
            }
            return;
        }
        self.spawn(myself, id).await;
    }

    /// Starts waiting jobs while there is room.
    async fn next(&mut self, myself: &ActorRef<KnowledgeMsg>) {
        while self.running.len() < self.deps.settings.jobs.max(1) {
            let Some(id) = self.waiting.pop_front() else {
                return;
            };
            self.spawn(myself, id).await;
        }
    }

    async fn spawn(&mut self, myself: &ActorRef<KnowledgeMsg>, id: Uuid) {
        let token = self.deps.shutdown.child_token();
        let args = ingest::JobArgs {
            deps: self.deps.clone(),
            id,
            cancel: token.clone(),
        };
        match Actor::spawn_linked(None, ingest::IngestJob, args, myself.get_cell()).await {
            Ok((job, _)) => {
                self.job_of.insert(job.get_id(), id);
                self.running.insert(id, (job.get_id(), token));
            }
            Err(err) => {
                tracing::error!(%id, error = %err, "an ingest job failed to start");
            }
        }
    }
}

impl Actor for Knowledge {
    type Msg = KnowledgeMsg;
    type State = KnowledgeState;
    type Arguments = Arc<Deps>;

    async fn pre_start(
        &self,
        _myself: ActorRef<KnowledgeMsg>,
        deps: Arc<Deps>,
    ) -> Result<KnowledgeState, ActorProcessingErr> {
        Ok(KnowledgeState {
            deps,
            running: HashMap::new(),
            job_of: HashMap::new(),
            again: HashSet::new(),
            waiting: VecDeque::new(),
            _alive: Alive::new("knowledge"),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<KnowledgeMsg>,
        msg: KnowledgeMsg,
        state: &mut KnowledgeState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            KnowledgeMsg::Resume => match store::knowledge::unfinished(&state.deps.shared.db).await
            {
                Ok(entries) => {
                    for entry in entries {
                        state.start(&myself, entry.id).await;
                    }
                }
                Err(err) => tracing::error!(error = %err, "unfinished ingests could not be read"),
            },
            KnowledgeMsg::Ingest(id) => state.start(&myself, id).await,
            KnowledgeMsg::Running(reply) => {
                let busy = state.running.keys().chain(&state.waiting).copied();
                let _ = reply.send(busy.collect());
            }
            KnowledgeMsg::Cancel(id) => {
                state.again.remove(&id);
                state.waiting.retain(|w| *w != id);
                if let Some((_, token)) = state.running.get(&id) {
                    token.cancel();
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<KnowledgeMsg>,
        event: SupervisionEvent,
        state: &mut KnowledgeState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, panic) = match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, None),
            SupervisionEvent::ActorFailed(cell, err) => (cell, Some(err.to_string())),
            _ => return Ok(()),
        };
        let Some(id) = state.job_of.remove(&cell.get_id()) else {
            return Ok(());
        };
        state.running.remove(&id);
        if let Some(panic) = panic {
            tracing::error!(%id, %panic, "an ingest job panicked");
            let error =
                json!({ "code": "server_error", "message": "the ingest stopped unexpectedly" });
            // Logged, not returned: an error here would stop the supervisor, and every
            // ingest with it. The row stays in progress and a recovery finds it stuck.
            if let Err(err) = store::knowledge::finish_store_file(
                &state.deps.shared.db,
                id,
                "failed",
                0,
                0,
                Some(error),
            )
            .await
            {
                tracing::error!(%id, error = %err, "a failed ingest could not be recorded");
            }
        }
        if state.again.remove(&id) {
            state.start(&myself, id).await;
        }
        state.next(&myself).await;
        Ok(())
    }
}

/// Starts the supervisor (which resumes unfinished jobs).
pub async fn start(
    deps: Deps,
) -> Result<(ActorRef<KnowledgeMsg>, tokio::task::JoinHandle<()>), ractor::SpawnErr> {
    Actor::spawn(None, Knowledge, Arc::new(deps)).await
}
