//! SQLite's index: a store's vectors, normalized, loaded from their blobs on its first search
//! and kept in memory, so a search is one pass of dot products rather than a table scan that
//! decodes every blob. It is exact (recall 1).
//!
//! The memory is bounded (`--vector-cache-mb`): when a store's vectors would not fit, the
//! stores searched least recently are dropped first, and a store larger than the whole budget
//! is searched from a fresh load each time. Every write to a store's chunks forgets its copy;
//! a generation number per store keeps a load that raced a write from being kept.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect,
};
use uuid::Uuid;

use super::{Hit, VectorIndex};
use crate::store::entity::chunk::{self, Entity as Chunks};

/// Stores whose last change is remembered at most; past it, every load that began before
/// counts as raced (and is searched but not kept), and the memory starts over.
const REMEMBERED_CHANGES: usize = 4_096;

/// One store's vectors of one dimension.
struct Loaded {
    dims: usize,
    /// (file, seq) of each vector, in order.
    keys: Vec<(Uuid, i32)>,
    /// The vectors, normalized, end to end.
    vectors: Vec<f32>,
}

impl Loaded {
    /// What it holds in memory.
    fn bytes(&self) -> usize {
        self.keys.len() * std::mem::size_of::<(Uuid, i32)>()
            + self.vectors.len() * std::mem::size_of::<f32>()
    }
}

pub struct Embedded {
    budget: usize,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    stores: HashMap<Uuid, Kept>,
    bytes: usize,
    /// Counts searches: a store's `used` is the count at its last one.
    clock: u64,
    /// Counts changes.
    generation: u64,
    /// The generation at which each store last changed.
    changed: HashMap<Uuid, u64>,
    /// The generation at which every store last changed at once.
    all_changed: u64,
}

struct Kept {
    loaded: Arc<Loaded>,
    used: u64,
}

impl Cache {
    fn get(&mut self, store_id: Uuid, dims: usize) -> Option<Arc<Loaded>> {
        self.clock += 1;
        let kept = self.stores.get_mut(&store_id)?;
        if kept.loaded.dims != dims {
            return None;
        }
        kept.used = self.clock;
        Some(kept.loaded.clone())
    }

    /// Keeps `loaded` for `store_id`, loaded from what was committed at `started`, unless a
    /// change came since or it is larger than `budget`; makes room by dropping the stores
    /// used least recently.
    fn keep(&mut self, store_id: Uuid, loaded: Arc<Loaded>, started: u64, budget: usize) {
        let raced = self.changed.get(&store_id).is_some_and(|at| *at > started)
            || self.all_changed > started;
        let size = loaded.bytes();
        if raced || size > budget {
            return;
        }
        self.drop_store(store_id);
        while self.bytes + size > budget {
            let Some(oldest) = self
                .stores
                .iter()
                .min_by_key(|(_, k)| k.used)
                .map(|(id, _)| *id)
            else {
                break;
            };
            self.drop_store(oldest);
            metrics::counter!("squadron_vector_cache_evictions_total").increment(1);
        }
        self.bytes += size;
        self.stores.insert(
            store_id,
            Kept {
                loaded,
                used: self.clock,
            },
        );
        metrics::gauge!("squadron_vector_cache_bytes").set(self.bytes as f64);
    }

    fn drop_store(&mut self, store_id: Uuid) {
        if let Some(kept) = self.stores.remove(&store_id) {
            self.bytes -= kept.loaded.bytes();
        }
    }

    fn change(&mut self, store_id: Option<Uuid>) {
        self.generation += 1;
        match store_id {
            Some(id) if self.changed.len() < REMEMBERED_CHANGES => {
                self.changed.insert(id, self.generation);
                self.drop_store(id);
            }
            _ => {
                self.all_changed = self.generation;
                self.changed.clear();
                self.stores.clear();
                self.bytes = 0;
            }
        }
        metrics::gauge!("squadron_vector_cache_bytes").set(self.bytes as f64);
    }
}

impl Embedded {
    /// An index that keeps at most `budget` bytes of vectors in memory.
    pub fn new(budget: usize) -> Embedded {
        Embedded {
            budget,
            cache: Mutex::default(),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn load(
        &self,
        db: &DatabaseConnection,
        store_id: Uuid,
        dims: usize,
    ) -> Result<Arc<Loaded>, DbErr> {
        let started = {
            let mut cache = self.cache();
            if let Some(loaded) = cache.get(store_id, dims) {
                return Ok(loaded);
            }
            cache.generation
        };
        #[derive(FromQueryResult)]
        struct Row {
            file_id: Uuid,
            seq: i32,
            embedding: Option<Vec<u8>>,
        }
        let rows = Chunks::find()
            .select_only()
            .columns([
                chunk::Column::FileId,
                chunk::Column::Seq,
                chunk::Column::Embedding,
            ])
            .filter(chunk::Column::VectorStoreId.eq(store_id))
            .filter(chunk::Column::Dims.eq(dims as i32))
            .into_model::<Row>()
            .all(db)
            .await?;
        let mut loaded = Loaded {
            dims,
            keys: Vec::with_capacity(rows.len()),
            vectors: Vec::with_capacity(rows.len() * dims),
        };
        for row in rows {
            let Some(bytes) = row.embedding.filter(|b| b.len() == dims * 4) else {
                continue;
            };
            let at = loaded.vectors.len();
            loaded.vectors.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
            normalize(&mut loaded.vectors[at..]);
            loaded.keys.push((row.file_id, row.seq));
        }
        let loaded = Arc::new(loaded);
        self.cache()
            .keep(store_id, loaded.clone(), started, self.budget);
        Ok(loaded)
    }
}

impl VectorIndex for Embedded {
    fn search<'a>(
        &'a self,
        db: &'a DatabaseConnection,
        store_id: Uuid,
        query: &'a [f32],
        k: usize,
        files: Option<&'a [Uuid]>,
    ) -> BoxFuture<'a, Result<Vec<Hit>, DbErr>> {
        Box::pin(async move {
            let loaded = self.load(db, store_id, query.len()).await?;
            nearest(db, &loaded, store_id, query, k, files).await
        })
    }

    fn changed(&self, store_id: Option<Uuid>) {
        self.cache().change(store_id);
    }
}

fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// The `k` chunks of the store nearest to `query` by cosine, among `files` when given.
async fn nearest(
    db: &DatabaseConnection,
    loaded: &Loaded,
    store_id: Uuid,
    query: &[f32],
    k: usize,
    files: Option<&[Uuid]>,
) -> Result<Vec<Hit>, DbErr> {
    let dims = query.len();
    let mut query = query.to_vec();
    normalize(&mut query);
    let allowed: Option<HashSet<Uuid>> = files.map(|f| f.iter().copied().collect());
    let mut scored: Vec<(f32, usize)> = loaded
        .vectors
        .chunks_exact(dims)
        .enumerate()
        .filter(|(i, _)| {
            allowed
                .as_ref()
                .is_none_or(|a| a.contains(&loaded.keys[*i].0))
        })
        .map(|(i, v)| (v.iter().zip(&query).map(|(a, b)| a * b).sum::<f32>(), i))
        .collect();
    if scored.len() > k {
        scored.select_nth_unstable_by(k, |a, b| b.0.total_cmp(&a.0));
        scored.truncate(k);
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    if scored.is_empty() {
        return Ok(Vec::new());
    }
    // The texts of the winners only.
    let mut which = Condition::any();
    for (_, i) in &scored {
        let (file, seq) = loaded.keys[*i];
        which = which.add(
            Condition::all()
                .add(chunk::Column::FileId.eq(file))
                .add(chunk::Column::Seq.eq(seq)),
        );
    }
    let texts: Vec<(Uuid, i32, String)> = Chunks::find()
        .select_only()
        .columns([
            chunk::Column::FileId,
            chunk::Column::Seq,
            chunk::Column::Text,
        ])
        .filter(chunk::Column::VectorStoreId.eq(store_id))
        .filter(which)
        .into_tuple()
        .all(db)
        .await?;
    Ok(scored
        .into_iter()
        .filter_map(|(score, i)| {
            let (file_id, seq) = loaded.keys[i];
            let text = texts
                .iter()
                .find(|(f, s, _)| *f == file_id && *s == seq)?
                .2
                .clone();
            Some(Hit {
                file_id,
                seq,
                text,
                score,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store of `n` vectors of 4 dimensions: 36 bytes each.
    fn loaded(n: usize) -> Arc<Loaded> {
        Arc::new(Loaded {
            dims: 4,
            keys: vec![(Uuid::nil(), 0); n],
            vectors: vec![0.0; n * 4],
        })
    }

    #[test]
    fn the_store_searched_least_recently_makes_room_first() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let budget = 2 * loaded(10).bytes();
        let mut cache = Cache::default();
        cache.keep(a, loaded(10), 0, budget);
        cache.keep(b, loaded(10), 0, budget);
        assert!(cache.get(a, 4).is_some(), "a was searched after b");
        cache.keep(c, loaded(10), 0, budget);
        assert!(
            cache.get(b, 4).is_none(),
            "b was the least recently searched"
        );
        assert!(cache.get(a, 4).is_some() && cache.get(c, 4).is_some());
        assert_eq!(cache.bytes, budget);
    }

    #[test]
    fn a_store_larger_than_the_budget_is_not_kept() {
        let mut cache = Cache::default();
        let small = Uuid::new_v4();
        cache.keep(small, loaded(1), 0, loaded(5).bytes());
        cache.keep(Uuid::new_v4(), loaded(6), 0, loaded(5).bytes());
        assert!(cache.get(small, 4).is_some(), "nothing was dropped for it");
        assert_eq!(cache.bytes, loaded(1).bytes());
    }

    #[test]
    fn a_load_that_raced_a_change_is_not_kept() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut cache = Cache::default();
        let started = cache.generation;
        cache.change(Some(a));
        cache.keep(a, loaded(1), started, usize::MAX);
        cache.keep(b, loaded(1), started, usize::MAX);
        assert!(cache.get(a, 4).is_none(), "a changed while it loaded");
        assert!(cache.get(b, 4).is_some(), "b did not");
        cache.change(None);
        assert!(cache.get(b, 4).is_none(), "every store changed");
        assert_eq!(cache.bytes, 0);
    }

    #[test]
    fn the_memory_of_changes_is_bounded() {
        let mut cache = Cache::default();
        for _ in 0..REMEMBERED_CHANGES + 10 {
            cache.change(Some(Uuid::new_v4()));
        }
        assert!(cache.changed.len() <= REMEMBERED_CHANGES);
        // Forgetting who changed counts as every store having changed.
        let old = Uuid::new_v4();
        cache.keep(old, loaded(1), 0, usize::MAX);
        assert!(cache.get(old, 4).is_none());
    }
}
