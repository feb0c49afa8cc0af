//! One file's ingest into one vector store: read it, extract its text, split it into
//! chunks, embed them in batches (a few calls in flight, retrying what is worth retrying),
//! write them, and record the outcome. It starts by clearing the file's chunks in the store,
//! so a job that starts over (after a restart or a change) leaves no duplicates.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::chunk::{self, Chunking, Piece};
use super::extract;
use super::{Deps, EmbedError};
use crate::store::entity::vector_store_file;
use crate::store::knowledge::{self as kb, NewChunk};
use crate::Alive;

/// A job does its work in `post_start` (it receives no messages) and then stops; a panic
/// reaches the supervisor as `ActorFailed`.
pub struct IngestJob;

pub struct JobArgs {
    pub deps: Arc<Deps>,
    /// The vector store file's id.
    pub id: Uuid,
    pub cancel: CancellationToken,
}

pub struct JobState {
    args: JobArgs,
    _alive: Alive,
}

/// How a job ended, for the row and the live layer.
enum Outcome {
    Completed {
        chunks: i32,
        bytes: i64,
    },
    Failed {
        code: &'static str,
        message: String,
    },
    /// Cancelled, or the file left the store meanwhile: nothing to record.
    Gone,
}

impl Actor for IngestJob {
    type Msg = ();
    type State = JobState;
    type Arguments = JobArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<()>,
        args: JobArgs,
    ) -> Result<JobState, ActorProcessingErr> {
        Ok(JobState {
            args,
            _alive: Alive::new("ingest"),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<()>,
        state: &mut JobState,
    ) -> Result<(), ActorProcessingErr> {
        run(&state.args).await?;
        myself.stop(None);
        Ok(())
    }
}

async fn run(args: &JobArgs) -> Result<(), ActorProcessingErr> {
    let db = &args.deps.shared.db;
    let vectors = &*args.deps.shared.vectors;
    let Some(entry) = kb::store_file_by_id(db, args.id).await? else {
        return Ok(());
    };
    if entry.status != "in_progress" {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let channel = args.deps.channel(entry.org_id).await;
    let outcome = ingest(&args.deps, &entry, &args.cancel, channel).await?;
    let (status, chunks, bytes, error) = match &outcome {
        Outcome::Completed { chunks, bytes } => ("completed", *chunks, *bytes, None),
        Outcome::Failed { code, message } => (
            "failed",
            0,
            0,
            Some(json!({ "code": code, "message": message })),
        ),
        Outcome::Gone if args.deps.shutdown.is_cancelled() => {
            // As if the server had died here: the next start clears and starts over.
            return Ok(());
        }
        Outcome::Gone => {
            // A cancelled job's partial chunks go; nothing else writes them while it runs.
            kb::clear_chunks(db, vectors, entry.vector_store_id, entry.file_id).await?;
            metrics::counter!("squadron_ingest_jobs_total", "outcome" => "cancelled").increment(1);
            return Ok(());
        }
    };
    if matches!(outcome, Outcome::Failed { .. }) {
        kb::clear_chunks(db, vectors, entry.vector_store_id, entry.file_id).await?;
    }
    let recorded =
        kb::finish_store_file(db, entry.id, status, chunks, bytes, error.clone()).await?;
    if !recorded {
        // Cancelled or removed while the last batch was written.
        kb::clear_chunks(db, vectors, entry.vector_store_id, entry.file_id).await?;
        return Ok(());
    }
    metrics::counter!("squadron_ingest_jobs_total", "outcome" => status).increment(1);
    metrics::histogram!("squadron_ingest_seconds").record(started.elapsed().as_secs_f64());
    args.deps.publish(
        channel,
        "knowledge.ingest.finished",
            json!({
                "vector_store_id": super::store_id(entry.vector_store_id), "file_id": super::file_id(entry.file_id),
                "status": status, "chunks": chunks, "last_error": error,
            }),
    );
    Ok(())
}

/// The work of a job. Cancellation is obeyed while it waits (for the file, the extraction, an
/// embedding call), never in the middle of a database write: a write cut off on the client
/// side can still land after the chunks were cleared.
async fn ingest(
    deps: &Deps,
    entry: &vector_store_file::Model,
    cancel: &CancellationToken,
    channel: Option<Uuid>,
) -> Result<Outcome, ActorProcessingErr> {
    let db = &deps.shared.db;
    let index = &*deps.shared.vectors;
    let (Some(file), Some(store)) = (
        kb::file(db, entry.org_id, entry.file_id).await?,
        kb::store(db, entry.org_id, entry.vector_store_id).await?,
    ) else {
        return Ok(Outcome::Gone);
    };
    let path = object_store::path::Path::from(file.object_key.as_str());
    let read = async {
        match deps.objects.get(&path).await {
            Ok(got) => got.bytes().await,
            Err(err) => Err(err),
        }
    };
    let bytes = tokio::select! {
        _ = cancel.cancelled() => return Ok(Outcome::Gone),
        bytes = read => bytes,
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(err) => {
            return Ok(Outcome::Failed {
                code: "server_error",
                message: format!("the file's bytes could not be read: {err}"),
            })
        }
    };
    // Extracting and tokenizing a large file is CPU work: off the async workers.
    let strategy = Chunking::from_json(&entry.chunking_strategy);
    let filename = file.filename.clone();
    let pieces = tokio::task::spawn_blocking(move || {
        extract::text_of(&filename, &bytes).map(|text| chunk::split(&text, strategy))
    })
    .await?;
    let pieces = match pieces {
        Ok(pieces) => pieces,
        Err(err) => {
            return Ok(Outcome::Failed {
                code: err.code(),
                message: err.message().to_owned(),
            })
        }
    };
    kb::clear_chunks(db, index, entry.vector_store_id, entry.file_id).await?;
    let total = pieces.len();
    let batches: Vec<(usize, Vec<Piece>)> = pieces
        .chunks(deps.settings.batch.max(1))
        .enumerate()
        .map(|(i, b)| (i * deps.settings.batch.max(1), b.to_vec()))
        .collect();
    let mut embedded = futures::stream::iter(batches)
        .map(|(first, batch)| async move {
            let texts = batch.iter().map(|p| p.text.clone()).collect();
            embed_with_retry(deps, entry.org_id, store.model_id, texts)
                .await
                .map(|vectors| (first, batch, vectors))
        })
        .buffered(deps.settings.concurrency.max(1))
        .into_stream();
    let mut done = 0;
    let mut bytes = 0i64;
    let mut dims = store.dimensions.map(|d| d as usize);
    loop {
        let result = tokio::select! {
            _ = cancel.cancelled() => return Ok(Outcome::Gone),
            next = embedded.next() => match next {
                Some(result) => result,
                None => break,
            },
        };
        let (first, batch, vectors) = match result {
            Ok(ok) => ok,
            Err(message) => {
                return Ok(Outcome::Failed {
                    code: "server_error",
                    message,
                })
            }
        };
        if vectors.len() != batch.len() {
            return Ok(Outcome::Failed {
                code: "server_error",
                message: format!(
                    "the embedding model returned {} vectors for {} texts",
                    vectors.len(),
                    batch.len()
                ),
            });
        }
        let got = vectors.first().map_or(0, Vec::len);
        match dims {
            Some(d) if vectors.iter().any(|v| v.len() != d) => {
                return Ok(Outcome::Failed {
                    code: "server_error",
                    message: format!(
                    "the embedding model returned vectors of {got} dimensions; the store has {d}"
                ),
                })
            }
            Some(_) => {}
            None => {
                dims = Some(got);
                kb::set_dimensions(db, store.id, got as i32).await?;
            }
        }
        kb::ensure_index(db, &deps.shared.indexed, got).await?;
        let chunks: Vec<NewChunk> = batch
            .into_iter()
            .zip(vectors)
            .enumerate()
            .map(|(i, (piece, vector))| NewChunk {
                seq: (first + i) as i32,
                tokens: piece.tokens as i32,
                text: piece.text,
                vector,
            })
            .collect();
        bytes += chunks.iter().map(|c| c.text.len() as i64).sum::<i64>();
        kb::insert_chunks(db, index, entry.vector_store_id, entry.file_id, &chunks).await?;
        done += chunks.len();
        metrics::counter!("squadron_ingest_chunks_total").increment(chunks.len() as u64);
        deps.publish(
            channel,
            "knowledge.ingest.progress",
            json!({
                "vector_store_id": super::store_id(entry.vector_store_id), "file_id": super::file_id(entry.file_id),
                "chunks_done": done, "chunks_total": total,
            }),
        )
        ;
    }
    Ok(Outcome::Completed {
        chunks: done as i32,
        bytes,
    })
}

/// Embeds `texts`, retrying a retryable failure with doubling delays; the error is the last
/// failure's message.
async fn embed_with_retry(
    deps: &Deps,
    org_id: Uuid,
    model_id: Uuid,
    texts: Vec<String>,
) -> Result<Vec<Vec<f32>>, String> {
    let mut delay = deps.settings.backoff;
    let mut attempt = 1;
    loop {
        match deps.embedder.embed(org_id, model_id, texts.clone()).await {
            Ok(vectors) => return Ok(vectors),
            Err(EmbedError::Fatal(message)) => return Err(message),
            Err(EmbedError::Retryable(message)) if attempt >= deps.settings.attempts => {
                return Err(format!("{message} (after {attempt} attempts)"))
            }
            Err(EmbedError::Retryable(message)) => {
                tracing::warn!(attempt, %message, "embedding failed; retrying");
                metrics::counter!("squadron_ingest_embed_retries_total").increment(1);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(super::IngestSettings::MAX_BACKOFF);
                attempt += 1;
            }
        }
    }
}
