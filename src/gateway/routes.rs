//! The account's models and providers, cached: every gateway call names a model, and resolving
//! it to a provider ready to call must cost neither queries nor a decryption. Models and
//! providers are never edited in place, only added and deleted, and deleting either forgets
//! the account's entries; nothing is cached for a name that does not exist.

use std::sync::Arc;

use dashmap::DashMap;
use squadron_actors::store::{self, entity::model};
use uuid::Uuid;

use sea_orm::DatabaseConnection;
use squadron_actors::store::entity::provider;

use super::upstream::Upstream;
use crate::error::ApiError;

#[derive(Default)]
pub struct Routes {
    models: DashMap<(Uuid, String), Arc<model::Model>>,
    upstreams: DashMap<Uuid, (Uuid, Arc<Upstream>)>,
}

impl Routes {
    /// The account's model called `name`, of any kind.
    pub async fn model(
        &self,
        db: &DatabaseConnection,
        org_id: Uuid,
        name: &str,
    ) -> Result<Option<Arc<model::Model>>, ApiError> {
        let key = (org_id, name.to_owned());
        if let Some(model) = self.models.get(&key) {
            return Ok(Some(model.clone()));
        }
        let Some(model) = store::gateway::model_by_name(db, org_id, name).await? else {
            return Ok(None);
        };
        let model = Arc::new(model);
        self.models.insert(key, model.clone());
        Ok(Some(model))
    }

    /// The account's provider `provider_id`, made ready to call by `open`.
    pub async fn upstream(
        &self,
        db: &DatabaseConnection,
        org_id: Uuid,
        provider_id: Uuid,
        open: impl FnOnce(provider::Model) -> Result<Upstream, ApiError>,
    ) -> Result<Arc<Upstream>, ApiError> {
        if let Some(entry) = self.upstreams.get(&provider_id) {
            if entry.0 == org_id {
                return Ok(entry.1.clone());
            }
        }
        let provider = store::gateway::provider(db, org_id, provider_id)
            .await?
            .ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("model without provider {provider_id}"))
            })?;
        let upstream = Arc::new(open(provider)?);
        self.upstreams
            .insert(provider_id, (org_id, upstream.clone()));
        Ok(upstream)
    }

    /// Forgets the account's models and providers: one of them was added or deleted.
    pub fn forget(&self, org_id: Uuid) {
        self.models.retain(|(org, _), _| *org != org_id);
        self.upstreams.retain(|_, (org, _)| *org != org_id);
    }
}
