//! Knowledge: files in vector stores, made searchable by ingest jobs. Each file being
//! ingested into a store is an [`ingest::IngestJob`] actor under the [`Knowledge`]
//! supervisor, which starts them, cancels them, restarts an item that changed once its old
//! job has stopped, resumes the jobs a stopped server left behind, and records a job that
//! panicked as failed.
//!
//! Embeddings come from the HTTP layer's providers through the [`Embedder`] trait, so this
//! crate needs no HTTP client.

pub mod chunk;
pub mod extract;
mod ingest;

use std::collections::{HashMap, HashSet};
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
    /// Publishes ingest news to the live subscribers of the account's default squad (the
    /// dashboard's home), if anyone watches it.
    async fn publish(&self, org_id: Uuid, kind: &str, data: serde_json::Value) {
        let Ok(Some(squad)) = store::squads::default_of(&self.shared.db, org_id).await else {
            return;
        };
        if !self.shared.hub.is_watched(squad.id) {
            return;
        }
        let event = crate::live::LiveEvent::new(squad.id, None, kind, &data, chrono::Utc::now());
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
    /// The vector store files whose jobs are running (to tell stuck rows from busy ones).
    Running(ractor::RpcReplyPort<Vec<Uuid>>),
}

pub struct Knowledge;

pub struct KnowledgeState {
    deps: Arc<Deps>,
    running: HashMap<Uuid, (ActorId, CancellationToken)>,
    job_of: HashMap<ActorId, Uuid>,
    /// Items to ingest again once their running job has stopped.
    again: HashSet<Uuid>,
    _alive: Alive,
}

impl KnowledgeState {
    async fn start(&mut self, myself: &ActorRef<KnowledgeMsg>, id: Uuid) {
        if let Some((_, token)) = self.running.get(&id) {
            token.cancel();
            self.again.insert(id);
            return;
        }
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
            KnowledgeMsg::Resume => {
                for entry in store::knowledge::unfinished(&state.deps.shared.db).await? {
                    state.start(&myself, entry.id).await;
                }
            }
            KnowledgeMsg::Ingest(id) => state.start(&myself, id).await,
            KnowledgeMsg::Running(reply) => {
                let _ = reply.send(state.running.keys().copied().collect());
            }
            KnowledgeMsg::Cancel(id) => {
                state.again.remove(&id);
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
            store::knowledge::finish_store_file(
                &state.deps.shared.db,
                id,
                "failed",
                0,
                0,
                Some(error),
            )
            .await?;
        }
        if state.again.remove(&id) {
            state.start(&myself, id).await;
        }
        Ok(())
    }
}

/// Starts the supervisor (which resumes unfinished jobs).
pub async fn start(
    deps: Deps,
) -> Result<(ActorRef<KnowledgeMsg>, tokio::task::JoinHandle<()>), ractor::SpawnErr> {
    Actor::spawn(None, Knowledge, Arc::new(deps)).await
}
