//! The store: sea-orm entities and the queries over them. Reads from the HTTP layer come
//! straight here; writes that change a squad come through its actor.

pub mod content;
pub mod conversations;
pub mod entity;
pub mod events;
pub mod gateway;
pub mod keys;
pub mod knowledge;
pub mod notifications;
pub mod orgs;
pub mod squads;
pub mod tasks;
pub mod tokens;
pub mod tools;
pub mod vectors;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, EntityTrait, PaginatorTrait, QuerySelect, Select, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

/// How long a SQLite writer waits for the write lock before it gives up: as long as the HTTP
/// layer waits for an actor's reply, so a client sees a slow write, not a failed one.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the database at `url`: SQLite (`sqlite://path?mode=rwc`) or PostgreSQL (`postgres://...`).
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5));
    if url.starts_with("sqlite:") {
        // WAL lets readers run beside the single writer; NORMAL sync is durable across a
        // process crash in WAL mode, which is what "stored before the reply" promises here.
        options.max_connections(8).map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .create_if_missing(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
        });
    } else {
        options.max_connections(32);
    }
    Database::connect(options).await
}

/// Begins a transaction that writes. On SQLite it takes the write lock at `BEGIN`
/// (`IMMEDIATE`), so a second writer waits for it (the busy timeout) instead of failing with
/// "database is locked": a deferred transaction that read first cannot wait for the lock,
/// because another writer's commit has made what it read stale. PostgreSQL needs nothing.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return db.begin().await;
    }
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// One page of a list: at most `limit` rows after skipping `offset`. Both fit the database's
/// signed 64-bit integers (the HTTP layer checks that before it builds one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub limit: u64,
    pub offset: u64,
}

/// The rows of `query` in `window` (the query keeps its order), and how many it has in all.
pub async fn paged<E: EntityTrait>(
    db: &impl ConnectionTrait,
    query: Select<E>,
    window: Window,
) -> Result<(Vec<E::Model>, u64), DbErr>
where
    E::Model: Sync,
{
    let total = query.clone().count(db).await?;
    let rows = query
        .offset(window.offset)
        .limit(window.limit)
        .all(db)
        .await?;
    Ok((rows, total))
}

/// True when `err` means the database could not be reached, rather than that the query was
/// wrong: the caller should answer 503 and the client may retry.
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::{sqlx, RuntimeErr};
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => matches!(
            **e,
            sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
        ),
        _ => false,
    }
}

/// True when the database gave up on a transaction that can simply be run again:
/// PostgreSQL's serialization failure (`40001`) or deadlock (`40P01`). The transaction was
/// rolled back whole. (SQLite writers queue for the lock instead: see [`begin_write`].)
pub fn is_retryable(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    let (DbErr::Query(RuntimeErr::SqlxError(e))
    | DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Conn(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    e.as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == "40001" || code == "40P01")
}

/// True when `err` is a unique-constraint violation (on either backend).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
