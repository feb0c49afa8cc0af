//! Files, vector stores, the files in them and their chunks. Searching the chunks is the
//! index's ([`super::vectors`]); every write of chunks here tells it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use dashmap::DashSet;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Select, Set,
    Statement,
};
use serde_json::Value;
use uuid::Uuid;

use super::begin_write;
use super::entity::chunk::{self, Entity as Chunks};
use super::entity::file::{self, Entity as Files};
use super::entity::file_batch;
use super::entity::vector_store::{self, Entity as Stores};
use super::entity::vector_store_file::{self, Entity as StoreFiles};
use super::vectors::pgvector::literal;
use super::vectors::VectorIndex;

/// Where a list resumes and how much of it to return (OpenAI's `after`, `limit`, `order`).
pub struct Page {
    /// The `created_at` and id of the item to continue after.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u64,
    pub desc: bool,
}

/// `query` ordered by (created_at, id) from `page.after`, one more than `page.limit` (so the
/// caller can tell whether there is more).
fn paged<E: EntityTrait>(
    query: Select<E>,
    created_at: impl ColumnTrait,
    id: impl ColumnTrait,
    page: &Page,
) -> Select<E> {
    let mut query = query;
    if let Some((at, after)) = page.after {
        query = query.filter(if page.desc {
            Condition::any()
                .add(created_at.lt(at))
                .add(Condition::all().add(created_at.eq(at)).add(id.lt(after)))
        } else {
            Condition::any()
                .add(created_at.gt(at))
                .add(Condition::all().add(created_at.eq(at)).add(id.gt(after)))
        });
    }
    let order = if page.desc {
        sea_orm::Order::Desc
    } else {
        sea_orm::Order::Asc
    };
    query
        .order_by(created_at, order.clone())
        .order_by(id, order)
        .limit(page.limit + 1)
}

// Files.

pub async fn insert_file(
    db: &impl ConnectionTrait,
    file: file::Model,
) -> Result<file::Model, DbErr> {
    file::ActiveModel::from(file).insert(db).await
}

pub async fn file(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<file::Model>, DbErr> {
    Files::find_by_id(id)
        .filter(file::Column::OrgId.eq(org_id))
        .one(db)
        .await
}

pub async fn files(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    purpose: Option<&str>,
    page: &Page,
) -> Result<Vec<file::Model>, DbErr> {
    let mut query = Files::find().filter(file::Column::OrgId.eq(org_id));
    if let Some(purpose) = purpose {
        query = query.filter(file::Column::Purpose.eq(purpose));
    }
    paged(query, file::Column::CreatedAt, file::Column::Id, page)
        .all(db)
        .await
}

pub async fn set_file_bytes(db: &impl ConnectionTrait, id: Uuid, bytes: i64) -> Result<(), DbErr> {
    Files::update_many()
        .col_expr(file::Column::Bytes, Expr::value(bytes))
        .filter(file::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Deletes a file and, with it, its place in every vector store and its chunks.
pub async fn delete_file(
    db: &DatabaseConnection,
    vectors: &dyn VectorIndex,
    id: Uuid,
) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    Chunks::delete_many()
        .filter(chunk::Column::FileId.eq(id))
        .exec(&txn)
        .await?;
    StoreFiles::delete_many()
        .filter(vector_store_file::Column::FileId.eq(id))
        .exec(&txn)
        .await?;
    Files::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    vectors.changed(None);
    Ok(())
}

// Vector stores.

pub async fn insert_store(
    db: &impl ConnectionTrait,
    store: vector_store::Model,
) -> Result<vector_store::Model, DbErr> {
    vector_store::ActiveModel::from(store).insert(db).await
}

pub async fn store(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<vector_store::Model>, DbErr> {
    Stores::find_by_id(id)
        .filter(vector_store::Column::OrgId.eq(org_id))
        .one(db)
        .await
}

pub async fn store_by_name(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    name: &str,
) -> Result<Option<vector_store::Model>, DbErr> {
    Stores::find()
        .filter(vector_store::Column::OrgId.eq(org_id))
        .filter(vector_store::Column::Name.eq(name))
        .order_by_asc(vector_store::Column::CreatedAt)
        .one(db)
        .await
}

pub async fn stores(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    page: &Page,
) -> Result<Vec<vector_store::Model>, DbErr> {
    let query = Stores::find().filter(vector_store::Column::OrgId.eq(org_id));
    paged(
        query,
        vector_store::Column::CreatedAt,
        vector_store::Column::Id,
        page,
    )
    .all(db)
    .await
}

/// Most stores [`all_stores`] returns.
pub const MAX_LISTED_STORES: u64 = 1000;

/// The account's stores, newest first, up to [`MAX_LISTED_STORES`].
pub async fn all_stores(
    db: &impl ConnectionTrait,
    org_id: Uuid,
) -> Result<Vec<vector_store::Model>, DbErr> {
    Stores::find()
        .filter(vector_store::Column::OrgId.eq(org_id))
        .order_by_desc(vector_store::Column::CreatedAt)
        .order_by_desc(vector_store::Column::Id)
        .limit(MAX_LISTED_STORES)
        .all(db)
        .await
}

pub async fn update_store(
    db: &impl ConnectionTrait,
    store: vector_store::ActiveModel,
) -> Result<vector_store::Model, DbErr> {
    store.update(db).await
}

/// Deletes a store with its files' places in it and their chunks (the files themselves stay).
pub async fn delete_store(
    db: &DatabaseConnection,
    vectors: &dyn VectorIndex,
    id: Uuid,
) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    Chunks::delete_many()
        .filter(chunk::Column::VectorStoreId.eq(id))
        .exec(&txn)
        .await?;
    StoreFiles::delete_many()
        .filter(vector_store_file::Column::VectorStoreId.eq(id))
        .exec(&txn)
        .await?;
    Stores::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    vectors.changed(Some(id));
    Ok(())
}

/// Records a store's dimensions, learnt from its model's first answer.
pub async fn set_dimensions(db: &impl ConnectionTrait, id: Uuid, dims: i32) -> Result<(), DbErr> {
    Stores::update_many()
        .col_expr(vector_store::Column::Dimensions, Expr::value(dims))
        .filter(vector_store::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Marks a store used now (searched, or a file added); a store that expires some days after
/// its last use gets its new expiry.
pub async fn touch_store(
    db: &impl ConnectionTrait,
    store: &vector_store::Model,
) -> Result<(), DbErr> {
    let now = Utc::now();
    let days = store
        .expires_after
        .as_ref()
        .and_then(|e| e["days"].as_i64());
    Stores::update_many()
        .col_expr(vector_store::Column::LastActiveAt, Expr::value(now))
        .col_expr(
            vector_store::Column::ExpiresAt,
            Expr::value(days.map(|d| now + chrono::Duration::days(d))),
        )
        .filter(vector_store::Column::Id.eq(store.id))
        .exec(db)
        .await
        .map(|_| ())
}

/// A store's file counts by status and its bytes in use.
#[derive(Default, Debug, Clone, Copy)]
pub struct Counts {
    pub in_progress: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub usage_bytes: i64,
}

impl Counts {
    pub fn total(&self) -> i64 {
        self.in_progress + self.completed + self.failed + self.cancelled
    }
}

pub async fn counts(db: &impl ConnectionTrait, store_id: Uuid) -> Result<Counts, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        status: String,
        n: i64,
        bytes: Option<i64>,
    }
    let rows = StoreFiles::find()
        .select_only()
        .column(vector_store_file::Column::Status)
        .column_as(vector_store_file::Column::Id.count(), "n")
        // PostgreSQL's SUM of a bigint is a numeric: cast back.
        .column_as(Expr::cust("CAST(SUM(usage_bytes) AS BIGINT)"), "bytes")
        .filter(vector_store_file::Column::VectorStoreId.eq(store_id))
        .group_by(vector_store_file::Column::Status)
        .into_model::<Row>()
        .all(db)
        .await?;
    let mut counts = Counts::default();
    for row in rows {
        counts.usage_bytes += row.bytes.unwrap_or(0);
        match row.status.as_str() {
            "in_progress" => counts.in_progress = row.n,
            "completed" => counts.completed = row.n,
            "failed" => counts.failed = row.n,
            _ => counts.cancelled += row.n,
        }
    }
    Ok(counts)
}

// Files in stores.

pub async fn add_store_file(
    db: &impl ConnectionTrait,
    entry: vector_store_file::Model,
) -> Result<vector_store_file::Model, DbErr> {
    vector_store_file::ActiveModel::from(entry).insert(db).await
}

pub async fn store_file(
    db: &impl ConnectionTrait,
    store_id: Uuid,
    file_id: Uuid,
) -> Result<Option<vector_store_file::Model>, DbErr> {
    StoreFiles::find()
        .filter(vector_store_file::Column::VectorStoreId.eq(store_id))
        .filter(vector_store_file::Column::FileId.eq(file_id))
        .one(db)
        .await
}

pub async fn store_file_by_id(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<vector_store_file::Model>, DbErr> {
    StoreFiles::find_by_id(id).one(db).await
}

pub async fn store_files(
    db: &impl ConnectionTrait,
    store_id: Uuid,
    status: Option<&str>,
    page: &Page,
) -> Result<Vec<vector_store_file::Model>, DbErr> {
    let mut query =
        StoreFiles::find().filter(vector_store_file::Column::VectorStoreId.eq(store_id));
    if let Some(status) = status {
        query = query.filter(vector_store_file::Column::Status.eq(status));
    }
    paged(
        query,
        vector_store_file::Column::CreatedAt,
        vector_store_file::Column::Id,
        page,
    )
    .all(db)
    .await
}

/// Every file of a store (for attribute filters and diagnostics).
pub async fn all_store_files(
    db: &impl ConnectionTrait,
    store_id: Uuid,
) -> Result<Vec<vector_store_file::Model>, DbErr> {
    StoreFiles::find()
        .filter(vector_store_file::Column::VectorStoreId.eq(store_id))
        .all(db)
        .await
}

/// A file's places in vector stores.
pub async fn entries_of_file(
    db: &impl ConnectionTrait,
    file_id: Uuid,
) -> Result<Vec<vector_store_file::Model>, DbErr> {
    StoreFiles::find()
        .filter(vector_store_file::Column::FileId.eq(file_id))
        .all(db)
        .await
}

/// Ingests that were running when the server last stopped.
pub async fn unfinished(db: &impl ConnectionTrait) -> Result<Vec<vector_store_file::Model>, DbErr> {
    StoreFiles::find()
        .filter(vector_store_file::Column::Status.eq("in_progress"))
        .all(db)
        .await
}

/// Removes a file from a store, with its chunks there.
pub async fn remove_store_file(
    db: &DatabaseConnection,
    vectors: &dyn VectorIndex,
    entry: &vector_store_file::Model,
) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    Chunks::delete_many()
        .filter(chunk::Column::VectorStoreId.eq(entry.vector_store_id))
        .filter(chunk::Column::FileId.eq(entry.file_id))
        .exec(&txn)
        .await?;
    StoreFiles::delete_by_id(entry.id).exec(&txn).await?;
    txn.commit().await?;
    vectors.changed(Some(entry.vector_store_id));
    Ok(())
}

/// Sets an ingest's status (and what came of it), unless it was cancelled or removed
/// meanwhile. Returns whether the row was still `in_progress`.
pub async fn finish_store_file(
    db: &impl ConnectionTrait,
    id: Uuid,
    status: &str,
    chunk_count: i32,
    usage_bytes: i64,
    last_error: Option<Value>,
) -> Result<bool, DbErr> {
    let result = StoreFiles::update_many()
        .col_expr(vector_store_file::Column::Status, Expr::value(status))
        .col_expr(
            vector_store_file::Column::ChunkCount,
            Expr::value(chunk_count),
        )
        .col_expr(
            vector_store_file::Column::UsageBytes,
            Expr::value(usage_bytes),
        )
        .col_expr(
            vector_store_file::Column::LastError,
            Expr::value(last_error),
        )
        .col_expr(
            vector_store_file::Column::UpdatedAt,
            Expr::value(Utc::now()),
        )
        .filter(vector_store_file::Column::Id.eq(id))
        .filter(vector_store_file::Column::Status.eq("in_progress"))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Sets a store file's title and attributes (a base item's edit).
pub async fn relabel_store_file(
    db: &impl ConnectionTrait,
    id: Uuid,
    title: &str,
    attributes: Value,
) -> Result<(), DbErr> {
    StoreFiles::update_many()
        .col_expr(vector_store_file::Column::Title, Expr::value(title))
        .col_expr(
            vector_store_file::Column::Attributes,
            Expr::value(attributes),
        )
        .col_expr(
            vector_store_file::Column::UpdatedAt,
            Expr::value(Utc::now()),
        )
        .filter(vector_store_file::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Starts an ingest over (a re-ingest of a changed item, or a recovery).
pub async fn restart_store_file(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    StoreFiles::update_many()
        .col_expr(
            vector_store_file::Column::Status,
            Expr::value("in_progress"),
        )
        .col_expr(
            vector_store_file::Column::LastError,
            Expr::value(None::<Value>),
        )
        .col_expr(
            vector_store_file::Column::UpdatedAt,
            Expr::value(Utc::now()),
        )
        .filter(vector_store_file::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

// Chunks and vectors.

/// A chunk to store, with its vector.
pub struct NewChunk {
    pub seq: i32,
    pub text: String,
    pub tokens: i32,
    pub vector: Vec<f32>,
}

/// pgvector's HNSW takes vectors of up to this many dimensions; larger ones are scanned.
const HNSW_MAX_DIMS: usize = 2000;

/// The dimensions whose HNSW index a server has made sure of, so it asks the database once.
pub type Indexed = DashSet<usize>;

fn create_index_sql(dims: usize) -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS idx_chunks_vec_{dims} ON chunks \
         USING hnsw ((vec::vector({dims})) vector_cosine_ops) WHERE dims = {dims}"
    )
}

/// On PostgreSQL, makes sure the HNSW (cosine) index for vectors of `dims` exists: a partial
/// index per dimension, since one column holds the vectors of every store.
pub async fn ensure_index(
    db: &impl ConnectionTrait,
    known: &Indexed,
    dims: usize,
) -> Result<(), DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres
        || dims > HNSW_MAX_DIMS
        || known.contains(&dims)
    {
        return Ok(());
    }
    db.execute_unprepared(&create_index_sql(dims)).await?;
    known.insert(dims);
    Ok(())
}

/// Builds the HNSW index for `dims` again (or for the first time): recovery after a crash or
/// a bulk load. Does nothing on SQLite, whose search scans.
pub async fn rebuild_index(db: &impl ConnectionTrait, dims: usize) -> Result<bool, DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres || dims > HNSW_MAX_DIMS {
        return Ok(false);
    }
    db.execute_unprepared(&create_index_sql(dims)).await?;
    db.execute_unprepared(&format!("REINDEX INDEX idx_chunks_vec_{dims}"))
        .await?;
    Ok(true)
}

/// Whether the HNSW index for `dims` exists (always false on SQLite).
pub async fn index_exists(db: &impl ConnectionTrait, dims: usize) -> Result<bool, DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(false);
    }
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT 1 AS one FROM pg_indexes WHERE tablename = 'chunks' AND indexname = $1",
            [format!("idx_chunks_vec_{dims}").into()],
        ))
        .await?;
    Ok(row.is_some())
}

fn blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Removes a file's chunks in a store (an ingest starting over leaves no duplicates).
pub async fn clear_chunks(
    db: &impl ConnectionTrait,
    vectors: &dyn VectorIndex,
    store_id: Uuid,
    file_id: Uuid,
) -> Result<(), DbErr> {
    Chunks::delete_many()
        .filter(chunk::Column::VectorStoreId.eq(store_id))
        .filter(chunk::Column::FileId.eq(file_id))
        .exec(db)
        .await?;
    vectors.changed(Some(store_id));
    Ok(())
}

/// Writes a batch of a file's chunks with their vectors.
pub async fn insert_chunks(
    db: &impl ConnectionTrait,
    vectors: &dyn VectorIndex,
    store_id: Uuid,
    file_id: Uuid,
    chunks: &[NewChunk],
) -> Result<(), DbErr> {
    if chunks.is_empty() {
        return Ok(());
    }
    if db.get_database_backend() == DatabaseBackend::Postgres {
        let mut sql = String::from(
            "INSERT INTO chunks (id, vector_store_id, file_id, seq, text, tokens, dims, vec) VALUES ",
        );
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunks.len() * 8);
        for (i, c) in chunks.iter().enumerate() {
            let n = i * 8;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${},${},${},${},${},${},${},${}::vector)",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6,
                n + 7,
                n + 8
            ));
            values.extend([
                Uuid::new_v4().into(),
                store_id.into(),
                file_id.into(),
                c.seq.into(),
                c.text.clone().into(),
                c.tokens.into(),
                (c.vector.len() as i32).into(),
                literal(&c.vector).into(),
            ]);
        }
        db.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            sql,
            values,
        ))
        .await?;
        vectors.changed(Some(store_id));
        return Ok(());
    }
    Chunks::insert_many(chunks.iter().map(|c| chunk::ActiveModel {
        id: Set(Uuid::new_v4()),
        vector_store_id: Set(store_id),
        file_id: Set(file_id),
        seq: Set(c.seq),
        text: Set(c.text.clone()),
        tokens: Set(c.tokens),
        dims: Set(c.vector.len() as i32),
        embedding: Set(Some(blob(&c.vector))),
    }))
    .exec(db)
    .await?;
    vectors.changed(Some(store_id));
    Ok(())
}

/// Per store: its chunk count.
pub async fn chunk_counts(
    db: &impl ConnectionTrait,
    store_id: Uuid,
) -> Result<HashMap<Uuid, i64>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        file_id: Uuid,
        n: i64,
    }
    let rows = Chunks::find()
        .select_only()
        .column(chunk::Column::FileId)
        .column_as(chunk::Column::Id.count(), "n")
        .filter(chunk::Column::VectorStoreId.eq(store_id))
        .group_by(chunk::Column::FileId)
        .into_model::<Row>()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.file_id, r.n)).collect())
}

// The bases agents consult.

pub async fn set_agent_knowledge(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    stores: &[Uuid],
) -> Result<(), DbErr> {
    use super::entity::agent_knowledge::{self, Entity as AgentKnowledge};
    AgentKnowledge::delete_many()
        .filter(agent_knowledge::Column::AgentId.eq(agent_id))
        .exec(db)
        .await?;
    if stores.is_empty() {
        return Ok(());
    }
    AgentKnowledge::insert_many(stores.iter().map(|s| agent_knowledge::ActiveModel {
        agent_id: Set(agent_id),
        vector_store_id: Set(*s),
    }))
    .exec(db)
    .await
    .map(|_| ())
}

/// The stores an agent consults.
pub async fn agent_knowledge(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
) -> Result<Vec<vector_store::Model>, DbErr> {
    use super::entity::agent_knowledge::{self, Entity as AgentKnowledge};
    let ids: Vec<Uuid> = AgentKnowledge::find()
        .filter(agent_knowledge::Column::AgentId.eq(agent_id))
        .all(db)
        .await?
        .into_iter()
        .map(|k| k.vector_store_id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Stores::find()
        .filter(vector_store::Column::Id.is_in(ids))
        .order_by_asc(vector_store::Column::CreatedAt)
        .all(db)
        .await
}

// File batches.

pub async fn insert_batch(
    db: &impl ConnectionTrait,
    store_id: Uuid,
    files: &[Uuid],
) -> Result<file_batch::Model, DbErr> {
    file_batch::ActiveModel {
        id: Set(Uuid::new_v4()),
        vector_store_id: Set(store_id),
        file_ids: Set(serde_json::json!(files)),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
}

pub async fn batch(
    db: &impl ConnectionTrait,
    store_id: Uuid,
    id: Uuid,
) -> Result<Option<file_batch::Model>, DbErr> {
    file_batch::Entity::find_by_id(id)
        .filter(file_batch::Column::VectorStoreId.eq(store_id))
        .one(db)
        .await
}

/// The store's entries for a batch's files (those still in the store).
pub async fn batch_entries(
    db: &impl ConnectionTrait,
    batch: &file_batch::Model,
) -> Result<Vec<vector_store_file::Model>, DbErr> {
    let files: Vec<Uuid> = serde_json::from_value(batch.file_ids.clone()).unwrap_or_default();
    StoreFiles::find()
        .filter(vector_store_file::Column::VectorStoreId.eq(batch.vector_store_id))
        .filter(vector_store_file::Column::FileId.is_in(files))
        .order_by_asc(vector_store_file::Column::CreatedAt)
        .all(db)
        .await
}
