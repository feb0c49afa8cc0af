//! PostgreSQL's index: pgvector's HNSW over `chunks.vec`, one partial index per dimension
//! (made by [`super::super::knowledge::ensure_index`]). The database does all the work; a change
//! of chunks needs nothing from here.

use futures::future::BoxFuture;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, FromQueryResult, Statement,
    TransactionTrait,
};
use uuid::Uuid;

use super::{Hit, VectorIndex};

pub struct PgVector;

impl VectorIndex for PgVector {
    fn search<'a>(
        &'a self,
        db: &'a DatabaseConnection,
        store_id: Uuid,
        query: &'a [f32],
        k: usize,
        files: Option<&'a [Uuid]>,
    ) -> BoxFuture<'a, Result<Vec<Hit>, DbErr>> {
        Box::pin(nearest(db, store_id, query, k, files))
    }

    fn changed(&self, _store_id: Option<Uuid>) {}
}

/// A vector as pgvector reads it: `[1,2,3]`.
pub fn literal(v: &[f32]) -> String {
    let mut out = String::with_capacity(v.len() * 10 + 2);
    out.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&x.to_string());
    }
    out.push(']');
    out
}

async fn nearest(
    db: &DatabaseConnection,
    store_id: Uuid,
    query: &[f32],
    k: usize,
    files: Option<&[Uuid]>,
) -> Result<Vec<Hit>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        file_id: Uuid,
        seq: i32,
        text: String,
        score: f64,
    }
    let dims = query.len();
    let mut values: Vec<sea_orm::Value> =
        vec![literal(query).into(), store_id.into(), (k as i64).into()];
    let file_filter = match files {
        Some(files) => {
            values.push(sea_orm::Value::Array(
                sea_orm::sea_query::ArrayType::Uuid,
                Some(Box::new(files.iter().map(|f| (*f).into()).collect())),
            ));
            " AND file_id = ANY($4)"
        }
        None => "",
    };
    // The ORDER BY and WHERE match the partial index's expression and predicate, so the
    // planner can use it; iterative scans keep filling the LIMIT when the store filter drops
    // the index's first candidates (pgvector 0.8).
    let sql = format!(
        "SELECT file_id, seq, text, 1 - (vec::vector({dims}) <=> $1::vector({dims})) AS score \
         FROM chunks WHERE dims = {dims} AND vector_store_id = $2{file_filter} \
         ORDER BY vec::vector({dims}) <=> $1::vector({dims}) LIMIT $3"
    );
    let txn = db.begin().await?;
    txn.execute_unprepared("SET LOCAL hnsw.iterative_scan = relaxed_order")
        .await?;
    txn.execute_unprepared("SET LOCAL hnsw.ef_search = 100")
        .await?;
    // Vectors of many dimensions are stored out of line, which the planner's cost of a
    // sequential scan leaves out: at 1,536 dimensions and 100,000 rows it chose a scan and
    // sort (0.4 s) over the index. Where an index exists, it is the right plan.
    txn.execute_unprepared("SET LOCAL enable_seqscan = off")
        .await?;
    let rows = Row::find_by_statement(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        sql,
        values,
    ))
    .all(&txn)
    .await?;
    txn.commit().await?;
    let mut hits: Vec<Hit> = rows
        .into_iter()
        .map(|r| Hit {
            file_id: r.file_id,
            seq: r.seq,
            text: r.text,
            score: r.score as f32,
        })
        .collect();
    // relaxed_order may return near-ties slightly out of order.
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(hits)
}
