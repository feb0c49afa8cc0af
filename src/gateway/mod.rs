//! The gateway service beneath the `/v1` routes: the account's models and providers
//! (cached, [`routes`]), calling a provider ([`upstream`]), what the calls count ([`usage`]),
//! embeddings ([`embeddings`]) and relaying streamed completions ([`sse`]). It takes what it
//! needs (the database, the sealer of provider secrets, the outward HTTP clients), not the
//! server's whole state, so ingest jobs and agents' turns can call it as the routes do.

pub mod embeddings;
pub mod routes;
pub mod sse;
pub mod upstream;
pub mod usage;

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use squadron_actors::secrets::Sealer;
use squadron_actors::store::entity::{agent, model, provider};
use squadron_actors::store::gateway;
use uuid::Uuid;

use crate::error::ApiError;
use crate::outbound::Outbound;
use routes::Routes;
use upstream::Upstream;

pub struct Gateway {
    db: DatabaseConnection,
    sealer: Sealer,
    outbound: Arc<Outbound>,
    routes: Arc<Routes>,
}

impl Gateway {
    /// `routes` is shared with [`crate::caches::Caches`], which invalidates it.
    pub fn new(
        db: DatabaseConnection,
        sealer: Sealer,
        outbound: Arc<Outbound>,
        routes: Arc<Routes>,
    ) -> Gateway {
        Gateway {
            db,
            sealer,
            outbound,
            routes,
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// A stored provider made ready to call (not cached: for checks of a provider being
    /// added or listed).
    pub fn open(&self, provider: provider::Model) -> Result<Upstream, ApiError> {
        Upstream::open(&self.sealer, &self.outbound, provider)
    }

    /// The account's provider `provider_id`, ready to call (cached).
    pub async fn upstream(
        &self,
        org_id: Uuid,
        provider_id: Uuid,
    ) -> Result<Arc<Upstream>, ApiError> {
        self.routes
            .upstream(&self.db, org_id, provider_id, |p| self.open(p))
            .await
    }

    /// The account's model called `name`, of `kind`.
    pub async fn model_of(
        &self,
        org_id: Uuid,
        name: &str,
        kind: &str,
    ) -> Result<Arc<model::Model>, ApiError> {
        self.routes
            .model(&self.db, org_id, name)
            .await?
            .filter(|m| m.kind == kind)
            .ok_or_else(|| missing(name))
    }

    /// What a chat request's `model` names: one of the account's chat models, or one of its
    /// agents (returned too: it answers with its own model, system prompt and defaults).
    pub async fn target(
        &self,
        org_id: Uuid,
        name: &str,
    ) -> Result<(Arc<model::Model>, Option<agent::Model>), ApiError> {
        // Models first, from the cache: they are the common case, and one namespace means the
        // order cannot change the answer.
        if let Some(model) = self.routes.model(&self.db, org_id, name).await? {
            return if model.kind == "chat" {
                Ok((model, None))
            } else {
                Err(missing(name))
            };
        }
        let agent = gateway::agent_by_name(&self.db, org_id, name)
            .await?
            .ok_or_else(|| missing(name))?;
        let model_id = agent.model_id.ok_or_else(|| missing(name))?;
        let model = gateway::model_by_id(&self.db, org_id, model_id)
            .await?
            .ok_or_else(|| missing(name))?;
        Ok((Arc::new(model), Some(agent)))
    }
}

fn missing(name: &str) -> ApiError {
    ApiError::NotFound(format!("the model {name:?} does not exist in this account"))
}
