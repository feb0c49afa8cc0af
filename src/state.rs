//! `AppState`: what handlers reach for, behind one `Arc`.

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use squadron_actors::secrets::Sealer;
use squadron_actors::Core;
use tokio_util::sync::CancellationToken;

use crate::caches::Caches;
use crate::config::Config;
use crate::directory::Directory;
use crate::gateway::Gateway;
use crate::ratelimit::RateLimits;
use crate::usage::Usage;

pub struct App {
    pub config: Config,
    pub core: Core,
    /// Credentials, live tickets and streams, models and providers, held in memory.
    pub caches: Caches,
    /// Calls to the accounts' providers: chat completions, embeddings.
    pub gateway: Arc<Gateway>,
    pub directory: Directory,
    pub usage: Usage,
    pub limits: RateLimits,
    pub metrics: PrometheusHandle,
    /// Seals and opens provider secrets.
    pub sealer: Sealer,
    /// Every request this server makes outward goes through it (see [`crate::outbound`]).
    pub outbound: Arc<crate::outbound::Outbound>,
    /// Where uploaded files' bytes live.
    pub objects: Arc<dyn object_store::ObjectStore>,
    /// Supervises the ingest jobs of files in vector stores.
    pub knowledge: ractor::ActorRef<squadron_actors::knowledge::KnowledgeMsg>,
    /// The accounts' MCP servers, connected, and their tools.
    pub tools: squadron_actors::tools::Tools,
    /// Cancelled at shutdown: long-lived streams watch it and end.
    pub shutdown: CancellationToken,
}

#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

impl App {
    pub fn db(&self) -> &sea_orm::DatabaseConnection {
        self.core.db()
    }

    /// Nearest-neighbour search over the vector stores, and what must hear of their changes.
    pub fn vectors(&self) -> &dyn squadron_actors::store::vectors::VectorIndex {
        &*self.core.shared.vectors
    }
}
