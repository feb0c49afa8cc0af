//! Nearest-neighbour search over a vector store's chunks, behind one trait with one
//! implementation per backend: pgvector's HNSW index on PostgreSQL ([`pgvector`]), an exact
//! scan of vectors held in memory on SQLite ([`embedded`]). The chunks are rows of `chunks`
//! either way, written by [`super::knowledge`], which tells the index when a store's chunks
//! change. The server holds its one index in [`crate::Shared`].

pub mod embedded;
pub mod pgvector;

use std::sync::Arc;

use futures::future::BoxFuture;
use sea_orm::{DatabaseBackend, DatabaseConnection, DbErr};
use uuid::Uuid;

/// A chunk found by a search, best first.
#[derive(Debug, Clone)]
pub struct Hit {
    pub file_id: Uuid,
    pub seq: i32,
    pub text: String,
    /// Cosine similarity, 1 for the same direction.
    pub score: f32,
}

pub trait VectorIndex: Send + Sync {
    /// The `k` chunks of `store_id` nearest to `query` (cosine), among those of `files` when
    /// given. An empty `files` or a `k` of 0 finds nothing, and asks nothing of the database.
    fn nearest<'a>(
        &'a self,
        db: &'a DatabaseConnection,
        store_id: Uuid,
        query: &'a [f32],
        k: usize,
        files: Option<&'a [Uuid]>,
    ) -> BoxFuture<'a, Result<Vec<Hit>, DbErr>> {
        if files.is_some_and(|f| f.is_empty()) || k == 0 {
            return Box::pin(async { Ok(Vec::new()) });
        }
        self.search(db, store_id, query, k, files)
    }

    /// What [`VectorIndex::nearest`] asks of an index, for a search that can find something.
    fn search<'a>(
        &'a self,
        db: &'a DatabaseConnection,
        store_id: Uuid,
        query: &'a [f32],
        k: usize,
        files: Option<&'a [Uuid]>,
    ) -> BoxFuture<'a, Result<Vec<Hit>, DbErr>>;

    /// The chunks of `store_id` changed, or (`None`) those of any store may have: called
    /// after the change is committed.
    fn changed(&self, store_id: Option<Uuid>);
}

/// The index for `backend`; the embedded one keeps at most `cache_bytes` of vectors in memory.
pub fn for_backend(backend: DatabaseBackend, cache_bytes: usize) -> Arc<dyn VectorIndex> {
    match backend {
        DatabaseBackend::Postgres => Arc::new(pgvector::PgVector),
        _ => Arc::new(embedded::Embedded::new(cache_bytes)),
    }
}
