//! SQLite's embedded vector index: a store's vectors, normalized, loaded from their blobs on
//! its first search and kept in memory, so a search is one pass of dot products rather than
//! a table scan that decodes every blob. It is exact (recall 1). Every write to a store's
//! chunks forgets its copy; a generation number per store keeps a load that raced a write
//! from being kept.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use dashmap::DashMap;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect,
};
use uuid::Uuid;

use super::entity::chunk::{self, Entity as Chunks};
use super::knowledge::Hit;

/// One store's vectors of one dimension.
struct Loaded {
    dims: usize,
    /// (file, seq) of each vector, in order.
    keys: Vec<(Uuid, i32)>,
    /// The vectors, normalized, end to end.
    vectors: Vec<f32>,
}

static LOADED: LazyLock<DashMap<Uuid, Arc<Loaded>>> = LazyLock::new(DashMap::new);
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// The generation at which each store last changed.
static CHANGED: LazyLock<DashMap<Uuid, u64>> = LazyLock::new(DashMap::new);

/// Forgets a store's vectors: its chunks changed.
pub fn forget(store_id: Uuid) {
    let generation = GENERATION.fetch_add(1, Ordering::SeqCst) + 1;
    CHANGED.insert(store_id, generation);
    LOADED.remove(&store_id);
}

/// The generation at which every store last changed at once.
static ALL_CHANGED: AtomicU64 = AtomicU64::new(0);

/// Forgets every store's vectors (a file left all the stores it was in).
pub fn forget_all() {
    let generation = GENERATION.fetch_add(1, Ordering::SeqCst) + 1;
    ALL_CHANGED.store(generation, Ordering::SeqCst);
    LOADED.clear();
}

fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

async fn load(
    db: &impl ConnectionTrait,
    store_id: Uuid,
    dims: usize,
) -> Result<Arc<Loaded>, DbErr> {
    if let Some(loaded) = LOADED.get(&store_id).filter(|l| l.dims == dims) {
        return Ok(loaded.clone());
    }
    let started = GENERATION.load(Ordering::SeqCst);
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
    let unchanged = CHANGED.get(&store_id).is_none_or(|at| *at <= started)
        && ALL_CHANGED.load(Ordering::SeqCst) <= started;
    if unchanged {
        LOADED.insert(store_id, loaded.clone());
    }
    Ok(loaded)
}

/// The `k` chunks of the store nearest to `query` by cosine, among `files` when given.
pub async fn nearest(
    db: &impl ConnectionTrait,
    store_id: Uuid,
    query: &[f32],
    k: usize,
    files: Option<&[Uuid]>,
) -> Result<Vec<Hit>, DbErr> {
    let dims = query.len();
    let loaded = load(db, store_id, dims).await?;
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
