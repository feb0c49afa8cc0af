//! What the knowledge actors need from the server: the object store that holds uploaded
//! files, and embeddings from the account's models through the gateway service (the actors'
//! [`Embedder`] trait, implemented here without the HTTP layer).

use std::sync::Arc;

use anyhow::Context;
use futures::future::BoxFuture;
use object_store::ObjectStore;
use squadron_actors::knowledge::{EmbedError, Embedder};
use squadron_actors::store::gateway;
use uuid::Uuid;

use crate::config::Config;
use crate::error::ApiError;
use crate::gateway::embeddings::wrong_dimensions;
use crate::gateway::Gateway;

/// The object store named by `--object-store` (`s3://bucket/prefix` with the usual `AWS_*`
/// variables, or `file:///path`), or a directory in the data directory.
pub fn objects(config: &Config) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let url = match &config.object_store {
        Some(url) => url::Url::parse(url).context("--object-store is not a URL")?,
        None => {
            let dir = config.data_dir.join("files");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let dir = dir.canonicalize()?;
            url::Url::from_directory_path(&dir)
                .map_err(|()| anyhow::anyhow!("{} is not an absolute path", dir.display()))?
        }
    };
    let env = std::env::vars().filter(|(k, _)| k.starts_with("AWS_"));
    let options = env.map(|(k, v)| (k.to_ascii_lowercase(), v));
    let (store, prefix) = object_store::parse_url_opts(&url, options)
        .with_context(|| format!("opening the object store at {url}"))?;
    if prefix.as_ref().is_empty() {
        return Ok(Arc::from(store));
    }
    Ok(Arc::new(object_store::prefix::PrefixStore::new(
        store, prefix,
    )))
}

/// Embeds through the gateway service, as `/v1/embeddings` does.
#[derive(Clone)]
pub struct GatewayEmbedder {
    gateway: Arc<Gateway>,
}

impl GatewayEmbedder {
    pub fn new(gateway: Arc<Gateway>) -> GatewayEmbedder {
        GatewayEmbedder { gateway }
    }
}

impl Embedder for GatewayEmbedder {
    fn embed(
        &self,
        org_id: Uuid,
        model_id: Uuid,
        texts: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<Vec<f32>>, EmbedError>> {
        Box::pin(async move {
            let model = gateway::model_by_id(self.gateway.db(), org_id, model_id)
                .await
                .map_err(|e| EmbedError::Retryable(e.to_string()))?
                .ok_or_else(|| {
                    EmbedError::Fatal("the store's embedding model was deleted".into())
                })?;
            let (provider, vectors) = self
                .gateway
                .embed_unchecked(org_id, &model, texts)
                .await
                .map_err(|err| match err {
                    ApiError::Upstream {
                        status, message, ..
                    } if status.as_u16() == 429 || status.is_server_error() => {
                        EmbedError::Retryable(message)
                    }
                    ApiError::Unavailable(m) => EmbedError::Retryable(m),
                    other => EmbedError::Fatal(other.to_string()),
                })?;
            // Vectors of another size than the store's model declares would be stored and
            // never compare: the file fails, with why.
            let sizes = vectors.iter().map(Vec::len);
            if let Some(why) = wrong_dimensions(&provider, &model, None, sizes) {
                return Err(EmbedError::Fatal(why));
            }
            Ok(vectors)
        })
    }
}
