//! Benchmark of knowledge: how fast files are ingested into a vector store, and how fast and
//! how well a store is searched. A fake embedding provider and a real server are started
//! in-process on 127.0.0.1:0 and talked to over real HTTP. It prints tables; it is not a
//! timed test.
//!
//! ```text
//! cargo bench --bench knowledge -- [--quick]
//! BENCH_DATABASE_URL=postgres://... cargo bench --bench knowledge -- [--quick]
//! ```
//!
//! - The fake embedder (an axum app on a tokio runtime of its own, one worker thread) answers
//!   OpenAI's `POST /v1/embeddings` for models `fake-embed-D-Tms` with unit vectors of D
//!   dimensions, each a function of its text alone: a hash of the text picks one of
//!   [`CLUSTERS`] random centres and seeds the noise added to it (as far from the centre as
//!   the centre is from the origin). Every call is answered T ms after it came, however many
//!   texts it carries: 20 ms for the ingest, 0 for the searches. The benchmark calls the
//!   same function, so it knows every vector.
//! - Each row gets a fresh server and a fresh database: SQLite in a temporary directory, and,
//!   when `BENCH_DATABASE_URL` gives a PostgreSQL admin URL (with pgvector), a database
//!   `squadron_bench_<uuid>` created on it and dropped afterwards. Rate limits are off. The
//!   account gets provider `fake` and model `embed-D` (kind `embedding`, D dimensions, for
//!   the fake's `fake-embed-D-Tms`).
//! - `ingest`: a corpus of 50 MiB (`--quick`: 5 MiB) in files of 512 KiB, generated from a
//!   fixed seed, in turn plain text, Markdown, HTML, JSON and CSV, is uploaded
//!   (`POST /v1/files`), then one `POST /v1/vector_stores` names every file with model
//!   `embed-384` and the default chunking (800 tokens, 400 of overlap); its status is polled
//!   every 50 ms until no file is in progress. Chunks/s = the chunks in the store (from
//!   `file-details`) / the time from that POST until the poll that saw none in progress.
//! - `search`: for D = 384 and 1,536, a store is created through the API (model `embed-D`),
//!   and 100,000 (`--quick`: 10,000) vectors are written straight into it through the store
//!   layer (`squadron_actors::store::knowledge`), [`CHUNKS_PER_FILE`] chunks per file row,
//!   two files at a time; chunk i's text is `vector i` and its vector the fake's for that
//!   text. On PostgreSQL the HNSW index exists before the load and `ANALYZE chunks` follows
//!   it. Then 200 (`--quick`: 50) queries `query j`, after 5 of warm-up, one at a time,
//!   each way until all are done or [`SEARCH_BUDGET`] has passed (so at least one):
//!   - API: `POST /v1/vector_stores/{id}/search` with `max_num_results: 10`; the server has
//!     the query embedded by the fake, then searches.
//!   - SQL (PostgreSQL only): on one connection of the benchmark's own, with the server's
//!     settings (`hnsw.ef_search = 100`, `hnsw.iterative_scan = relaxed_order`,
//!     `enable_seqscan = off`), the server's nearest-neighbour query without its filter on
//!     the store's files:
//!     `SELECT text FROM chunks WHERE dims = D AND vector_store_id = $2
//!     ORDER BY vec::vector(D) <=> $1::vector(D) LIMIT 10`. Afterwards the first query is
//!     run again under `EXPLAIN ANALYZE`, and its plan printed.
//!
//!   Latency: from just before the request (or query) is sent until its reply is read.
//!   Recall@10: the share of the exact 10 nearest vectors (by cosine, computed here over
//!   every vector of the store) among the 10 returned, averaged over the queries.
//!
//! A row that fails is marked so in its table, its error is printed after the tables, and
//! the program then exits with an error. `BENCH_LOG=1` shows the server's logs (`RUST_LOG`
//! filters them). The fake embedder, the server and PostgreSQL share the machine's cores.
//! Run without `--bench` (as `cargo test --all-targets` does), the program only says how to
//! run it.

mod common;

use common::{percentile, rss_kib, Backend, Database, InProcess, Table};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use futures::{stream, StreamExt, TryStreamExt};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use reqwest::multipart::{Form, Part};
use reqwest::Client;
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, Statement,
};
use serde::Serialize;
use serde_json::{json, Value};
use squadron_actors::store::entity::{file, vector_store, vector_store_file};
use squadron_actors::store::knowledge::{self as kb, NewChunk};
use tokio::runtime::Runtime;
use tokio::time::Instant;
use uuid::Uuid;

const USAGE: &str = "usage: cargo bench --bench knowledge -- [--quick]";
/// A PostgreSQL admin URL; without it, only SQLite is measured.
const PG_ENV: &str = "BENCH_DATABASE_URL";

/// The corpus.
const CORPUS_BYTES: usize = 50 << 20;
const QUICK_CORPUS_BYTES: usize = 5 << 20;
const FILE_BYTES: usize = 512 << 10;
/// The dimensions of the ingest's embedding model.
const INGEST_DIMS: usize = 384;
/// How often an ingest's store is polled, and for how long at most.
const POLL_EVERY: Duration = Duration::from_millis(50);
const INGEST_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The searched stores.
const SEARCH_DIMS: [usize; 2] = [384, 1_536];
const VECTORS: usize = 100_000;
const QUICK_VECTORS: usize = 10_000;
const CHUNKS_PER_FILE: usize = 500;
/// Files written into a store at once.
const LOAD_CONCURRENCY: usize = 2;
const QUERIES: usize = 200;
const QUICK_QUERIES: usize = 50;
const WARM_UP_QUERIES: usize = 5;
/// No new query starts after this long (per row and way).
const SEARCH_BUDGET: Duration = Duration::from_secs(60);
/// Results per search, and the k of recall@k.
const K: usize = 10;
/// The server's HNSW setting (actors/src/store/knowledge.rs), for the raw SQL.
const EF_SEARCH: usize = 100;

/// The fake embedder: its latency per call, and its vectors' shape.
const INGEST_EMBED_LATENCY: Duration = Duration::from_millis(20);
const SEARCH_EMBED_LATENCY: Duration = Duration::ZERO;
const CLUSTERS: usize = 256;
const NOISE: f32 = 1.0;
const UPSTREAM_KEY: &str = "sk-x";

/// The longest any single request or step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    squadron_actors::tls::install();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("knowledge is a benchmark: run it with `cargo bench --bench knowledge`");
        return ExitCode::SUCCESS;
    }
    let mut quick = false;
    for arg in args.iter().filter(|a| *a != "--bench") {
        match arg.as_str() {
            "--quick" => quick = true,
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if std::env::var_os("BENCH_LOG").is_some() {
        squadron::telemetry::init(squadron::config::LogFormat::Text);
    }
    let backends = backends();
    eprintln!("generating the corpus, the queries and their exact nearest neighbours");
    let workload = Workload::new(quick);
    // The fake embedder gets a runtime (and worker thread) of its own, so its latency does not
    // queue behind the server's tasks; the OS still shares the cores.
    let embedder_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fake-embedder")
        .enable_all()
        .build()
        .expect("a tokio runtime for the embedder");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(run(&backends, &workload, &embedder_runtime));
    embedder_runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("benchmark failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// SQLite, and PostgreSQL when [`PG_ENV`] names one.
fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite];
    match std::env::var(PG_ENV) {
        Ok(admin_url) if !admin_url.is_empty() => backends.push(Backend::Postgres { admin_url }),
        _ => eprintln!("{PG_ENV} is not set: PostgreSQL is skipped"),
    }
    backends
}

async fn run(
    backends: &[Backend],
    workload: &Workload,
    embedder_runtime: &Runtime,
) -> anyhow::Result<()> {
    let embedder = embedder_runtime
        .spawn(start_embedder(workload.spaces.clone()))
        .await
        .context("starting the fake embedder")??;
    let mut ingests = Table::new(&[
        "backend",
        "files",
        "MiB",
        "upload s",
        "ingest s",
        "chunks",
        "chunks/s",
        "MiB/s",
        "embed calls",
        "failed",
        "RSS MiB",
    ]);
    let mut searches = Table::new(&[
        "backend",
        "dims",
        "vectors",
        "load s",
        "queries API/SQL",
        "API p50 ms",
        "API p99 ms",
        "API recall@10",
        "SQL p50 ms",
        "SQL p99 ms",
        "SQL recall@10",
        "RSS MiB",
    ]);
    let mut plans = Vec::new();
    // A row that fails says so in its table, and why after the tables; the others still run.
    let mut failures = Vec::new();
    for backend in backends {
        let label = backend.label();
        let ingested = on_fresh_server(backend, async |server| {
            ingest(server, backend, &embedder, &workload.corpus).await
        })
        .await;
        match ingested {
            Ok(row) => ingests.push(row),
            Err(err) => {
                ingests.push(vec![label.into(), "failed".into()]);
                failures.push(format!("ingest on {label}: {err:#}"));
            }
        }
        for set in &workload.query_sets {
            let searched = on_fresh_server(backend, async |server| {
                search(server, backend, &embedder, workload, set).await
            })
            .await;
            match searched {
                Ok((row, plan)) => {
                    searches.push(row);
                    plans.extend(plan);
                }
                Err(err) => {
                    searches.push(vec![label.into(), set.dims.to_string(), "failed".into()]);
                    failures.push(format!("search on {label}, {} dims: {err:#}", set.dims));
                }
            }
        }
    }

    println!(
        "\n## ingest: {:.0} MiB of text, Markdown, HTML, JSON and CSV in files of {} KiB; model of {INGEST_DIMS} dims answering in {} ms per call\n",
        workload.corpus_mib(),
        FILE_BYTES >> 10,
        INGEST_EMBED_LATENCY.as_millis()
    );
    ingests.print();
    println!("\nupload s: the files uploaded one after another (not part of chunks/s). ingest s: from creating the");
    println!("store with every file until no file is in progress. The server embeds 64 chunks per call, 2 calls in");
    println!("flight per file; the fake embedder, the server and the database share the machine's cores.");
    println!("failed: files whose ingest failed (their chunks are not in the store).");
    println!(
        "\n## search: {} queries one at a time (after {WARM_UP_QUERIES} of warm-up), fewer if {} s ran out; {K} results each\n",
        workload.query_sets[0].queries.len(),
        SEARCH_BUDGET.as_secs()
    );
    searches.print();
    println!("\nAPI: POST /v1/vector_stores/{{id}}/search, the query embedded by the fake (answering at once)");
    println!("and the store searched. SQL: the server's query without its filter on the store's files, on");
    println!("PostgreSQL only. recall@10: the share of the exact 10 nearest (cosine) among those returned.");
    println!("load s: the vectors written into the store through the store layer, not through the embedder.");
    println!(
        "RSS: the whole process's VmRSS at the end of the row; the fake embedder runs in it too."
    );
    if !backends
        .iter()
        .any(|b| matches!(b, Backend::Postgres { .. }))
    {
        println!("\nPostgreSQL was skipped: set {PG_ENV} to an admin URL (e.g. from `scripts/pg start DIR`).");
    }
    if !failures.is_empty() {
        println!("\n## failed rows\n");
        for failure in &failures {
            println!("- {failure}");
        }
    }
    for (dims, plan) in plans {
        println!("\n## PostgreSQL's plan of the SQL query, {dims} dims\n\n```text\n{plan}```");
    }
    ensure!(failures.is_empty(), "{} rows failed", failures.len());
    Ok(())
}

/// Runs `f` against a fresh server on `backend`, then stops the server, whatever `f` did.
async fn on_fresh_server<T>(
    backend: &Backend,
    f: impl AsyncFnOnce(&Server) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let server = Server::start(backend).await?;
    let result = f(&server).await;
    let stopped = server.stop().await;
    let value = result?;
    stopped?;
    Ok(value)
}

// ---------------------------------------------------------------------------------------------
// The workload: a corpus, vectors, and queries with their exact answers

/// Everything the rows share, made before any server starts.
struct Workload {
    corpus: Vec<Document>,
    spaces: Arc<Spaces>,
    query_sets: Vec<QuerySet>,
}

impl Workload {
    fn new(quick: bool) -> Workload {
        let (corpus_bytes, vectors, queries) = if quick {
            (QUICK_CORPUS_BYTES, QUICK_VECTORS, QUICK_QUERIES)
        } else {
            (CORPUS_BYTES, VECTORS, QUERIES)
        };
        let corpus = (0..corpus_bytes.div_ceil(FILE_BYTES))
            .map(|i| Document::new(i, FILE_BYTES))
            .collect();
        let spaces = Spaces::new();
        let query_sets = SEARCH_DIMS
            .iter()
            .map(|&dims| QuerySet::new(spaces.get(dims), vectors, queries))
            .collect();
        Workload {
            corpus,
            spaces: Arc::new(spaces),
            query_sets,
        }
    }

    fn corpus_mib(&self) -> f64 {
        self.corpus.iter().map(|d| d.bytes.len()).sum::<usize>() as f64 / (1 << 20) as f64
    }
}

/// A [`Space`] for each dimension used.
struct Spaces(Vec<Space>);

impl Spaces {
    fn new() -> Spaces {
        let mut dims = SEARCH_DIMS.to_vec();
        dims.push(INGEST_DIMS);
        dims.sort_unstable();
        dims.dedup();
        Spaces(dims.into_iter().map(Space::new).collect())
    }

    fn find(&self, dims: usize) -> Option<&Space> {
        self.0.iter().find(|s| s.dims == dims)
    }

    fn get(&self, dims: usize) -> &Space {
        self.find(dims).expect("a space for every dimension used")
    }
}

/// Unit vectors of `dims` dimensions around [`CLUSTERS`] random centres.
struct Space {
    dims: usize,
    centres: Vec<Vec<f32>>,
}

impl Space {
    fn new(dims: usize) -> Space {
        let mut rng = SmallRng::seed_from_u64(dims as u64);
        let scale = 1.0 / (dims as f32).sqrt();
        let centres = (0..CLUSTERS)
            .map(|_| (0..dims).map(|_| normal(&mut rng) * scale).collect())
            .collect();
        Space { dims, centres }
    }

    /// The vector of `text`: a function of the text alone.
    fn vector(&self, text: &str) -> Vec<f32> {
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        let mut rng = SmallRng::seed_from_u64(hasher.finish());
        let centre = &self.centres[rng.random_range(0..CLUSTERS)];
        let spread = NOISE / (self.dims as f32).sqrt();
        let mut v: Vec<f32> = centre
            .iter()
            .map(|c| c + spread * normal(&mut rng))
            .collect();
        let norm = dot(&v, &v).sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }
}

/// A standard normal number (Box-Muller).
fn normal(rng: &mut SmallRng) -> f32 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let angle: f64 = std::f64::consts::TAU * rng.random::<f64>();
    ((-2.0 * u.ln()).sqrt() * angle.cos()) as f32
}

/// Eight running sums, so the compiler can use SIMD lanes.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let rest: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + rest
}

/// The text of the store's i-th vector, and back.
fn vector_text(i: usize) -> String {
    format!("vector {i}")
}

fn vector_index(text: &str) -> Option<usize> {
    text.strip_prefix("vector ")?.parse().ok()
}

/// A query, its vector, and the indices of its exact [`K`] nearest vectors.
struct Query {
    text: String,
    vector: Vec<f32>,
    nearest: Vec<usize>,
}

/// The queries of one dimension, over vectors `0..vectors`.
struct QuerySet {
    dims: usize,
    vectors: usize,
    warm_up: Vec<Query>,
    queries: Vec<Query>,
}

impl QuerySet {
    fn new(space: &Space, vectors: usize, queries: usize) -> QuerySet {
        let query = |text: String| Query {
            vector: space.vector(&text),
            text,
            nearest: Vec::new(),
        };
        let warm_up = (0..WARM_UP_QUERIES)
            .map(|j| query(format!("warm-up {j}")))
            .collect();
        let mut queries: Vec<Query> = (0..queries).map(|j| query(format!("query {j}"))).collect();
        let nearest = exact_nearest(space, &queries, vectors);
        for (query, nearest) in queries.iter_mut().zip(nearest) {
            query.nearest = nearest;
        }
        QuerySet {
            dims: space.dims,
            vectors,
            warm_up,
            queries,
        }
    }
}

/// Per query, the indices of its [`K`] nearest vectors among `0..vectors` by cosine, best first.
fn exact_nearest(space: &Space, queries: &[Query], vectors: usize) -> Vec<Vec<usize>> {
    let mut best: Vec<Vec<(f32, usize)>> = vec![Vec::with_capacity(K + 1); queries.len()];
    for i in 0..vectors {
        let v = space.vector(&vector_text(i));
        for (query, top) in queries.iter().zip(&mut best) {
            let score = dot(&query.vector, &v);
            if top.len() < K || score > top[K - 1].0 {
                let at = top.partition_point(|(s, _)| *s >= score);
                top.insert(at, (score, i));
                top.truncate(K);
            }
        }
    }
    best.into_iter()
        .map(|top| top.into_iter().map(|(_, i)| i).collect())
        .collect()
}

/// A file of the corpus.
struct Document {
    name: String,
    bytes: Vec<u8>,
}

impl Document {
    /// The i-th file, of about `size` bytes, of the i-th kind in turn.
    fn new(i: usize, size: usize) -> Document {
        let kind = Kind::ALL[i % Kind::ALL.len()];
        let mut w = Writer(SmallRng::seed_from_u64(i as u64));
        let mut text = kind.opening(&mut w);
        let closing = kind.closing();
        let mut n = 0;
        while text.len() + closing.len() < size {
            text.push_str(&kind.block(&mut w, n));
            n += 1;
        }
        text.push_str(closing);
        Document {
            name: format!("doc-{i:03}.{}", kind.extension()),
            bytes: text.into_bytes(),
        }
    }
}

/// The kinds of file the corpus mixes: a file is its opening, blocks, and closing.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Markdown,
    Html,
    Json,
    Csv,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Text,
        Kind::Markdown,
        Kind::Html,
        Kind::Json,
        Kind::Csv,
    ];

    fn extension(self) -> &'static str {
        match self {
            Kind::Text => "txt",
            Kind::Markdown => "md",
            Kind::Html => "html",
            Kind::Json => "json",
            Kind::Csv => "csv",
        }
    }

    fn opening(self, w: &mut Writer) -> String {
        match self {
            Kind::Text => String::new(),
            Kind::Markdown => format!("# {}\n\n", w.title()),
            Kind::Html => format!(
                "<!DOCTYPE html>\n<html><head><title>{}</title><style>body {{ font-family: sans-serif; }}</style></head><body>\n",
                w.title()
            ),
            Kind::Json => "[\n".into(),
            Kind::Csv => "id,title,category,description,score\n".into(),
        }
    }

    /// The n-th block.
    fn block(self, w: &mut Writer, n: usize) -> String {
        match self {
            Kind::Text => format!("{}\n\n", w.paragraph()),
            Kind::Markdown => format!(
                "## {}\n\n{}\n\n- {}\n- {}\n\n",
                w.title(),
                w.paragraph(),
                w.sentence(),
                w.sentence()
            ),
            Kind::Html => format!(
                "<h2>{}</h2>\n<p>{}</p>\n<ul><li>{}</li><li>{}</li></ul>\n",
                w.title(),
                w.paragraph(),
                w.sentence(),
                w.sentence()
            ),
            Kind::Json => format!(
                "{}{{\"id\": {n}, \"title\": \"{}\", \"summary\": \"{}\", \"tags\": [\"{}\", \"{}\"], \"score\": {:.3}}}",
                if n == 0 { "" } else { ",\n" },
                w.title(),
                w.paragraph(),
                w.word(),
                w.word(),
                w.0.random::<f64>()
            ),
            Kind::Csv => format!(
                "{n},{},{},\"{}\",{:.3}\n",
                w.title(),
                w.word(),
                w.paragraph(),
                w.0.random::<f64>()
            ),
        }
    }

    fn closing(self) -> &'static str {
        match self {
            Kind::Html => "</body></html>\n",
            Kind::Json => "\n]\n",
            Kind::Text | Kind::Markdown | Kind::Csv => "",
        }
    }
}

/// Made-up words from a few syllables; sentences and paragraphs of them.
struct Writer(SmallRng);

impl Writer {
    const SYLLABLES: [&'static str; 32] = [
        "ka", "lo", "mi", "ren", "sa", "to", "vel", "an", "dor", "ei", "fu", "gri", "ho", "is",
        "jun", "ker", "lum", "mar", "nis", "or", "pel", "qua", "ros", "sin", "tar", "ul", "ven",
        "wil", "xe", "yor", "zan", "bri",
    ];

    fn word(&mut self) -> String {
        let syllables = self.0.random_range(1..=3);
        (0..syllables)
            .map(|_| Self::SYLLABLES[self.0.random_range(0..Self::SYLLABLES.len())])
            .collect()
    }

    /// `n` words, the first capitalized.
    fn words(&mut self, n: usize) -> String {
        let words: Vec<String> = (0..n).map(|_| self.word()).collect();
        let text = words.join(" ");
        let mut chars = text.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => text,
        }
    }

    fn title(&mut self) -> String {
        let n = self.0.random_range(2..=5);
        self.words(n)
    }

    fn sentence(&mut self) -> String {
        let n = self.0.random_range(5..=14);
        format!("{}.", self.words(n))
    }

    fn paragraph(&mut self) -> String {
        let n = self.0.random_range(2..=5);
        let sentences: Vec<String> = (0..n).map(|_| self.sentence()).collect();
        sentences.join(" ")
    }
}

// ---------------------------------------------------------------------------------------------
// Ingest

/// The ingest table's row: the corpus ingested by `server`.
async fn ingest(
    server: &Server,
    backend: &Backend,
    embedder: &Embedder,
    corpus: &[Document],
) -> anyhow::Result<Vec<String>> {
    server
        .register(embedder, INGEST_DIMS, INGEST_EMBED_LATENCY)
        .await?;
    eprintln!(
        "ingest {}: uploading {} files",
        backend.label(),
        corpus.len()
    );
    let started = Instant::now();
    let mut file_ids = Vec::with_capacity(corpus.len());
    for document in corpus {
        file_ids.push(server.upload(document).await?);
    }
    let upload = started.elapsed();
    eprintln!("ingest {}: ingesting", backend.label());
    let calls_before = embedder.calls.load(Ordering::Relaxed);
    let started = Instant::now();
    let store = server
        .post(
            "/v1/vector_stores",
            json!({ "name": "ingest", "file_ids": file_ids, "embedding_model": model_name(INGEST_DIMS) }),
        )
        .await?;
    let store = store["id"].as_str().context("a store id")?.to_owned();
    let counts = server.settle(&store).await?;
    let ingest = started.elapsed();
    let calls = embedder.calls.load(Ordering::Relaxed) - calls_before;
    let rss = rss_kib();
    let details = server
        .get(&format!("/v1/vector_stores/{store}/file-details"))
        .await?;
    let details = details["data"].as_array().context("file details")?;
    let chunks: i64 = details
        .iter()
        .filter_map(|d| d["chunk_count"].as_i64())
        .sum();
    if let Some(error) = details.iter().find_map(|d| d["last_error"].as_object()) {
        eprintln!("ingest {}: a file failed: {error:?}", backend.label());
    }
    let mib = corpus.iter().map(|d| d.bytes.len()).sum::<usize>() as f64 / (1 << 20) as f64;
    let seconds = ingest.as_secs_f64();
    Ok(vec![
        backend.label().into(),
        corpus.len().to_string(),
        format!("{mib:.1}"),
        format!("{:.2}", upload.as_secs_f64()),
        format!("{seconds:.1}"),
        chunks.to_string(),
        format!("{:.0}", chunks as f64 / seconds),
        format!("{:.2}", mib / seconds),
        calls.to_string(),
        counts["failed"].to_string(),
        mib_of(rss),
    ])
}

// ---------------------------------------------------------------------------------------------
// Search

/// The search table's row for a set of queries against a store `server` makes, and on
/// PostgreSQL the plan of the SQL query.
async fn search(
    server: &Server,
    backend: &Backend,
    embedder: &Embedder,
    workload: &Workload,
    set: &QuerySet,
) -> anyhow::Result<(Vec<String>, Option<(usize, String)>)> {
    let label = format!("search {} {} dims", backend.label(), set.dims);
    server
        .register(embedder, set.dims, SEARCH_EMBED_LATENCY)
        .await?;
    let store = server
        .post(
            "/v1/vector_stores",
            json!({ "name": "search", "embedding_model": model_name(set.dims) }),
        )
        .await?;
    let store_ref = store["id"].as_str().context("a store id")?.to_owned();
    let store_id = Uuid::parse_str(store_ref.trim_start_matches("vs_"))?;
    eprintln!("{label}: loading {} vectors", set.vectors);
    let db = squadron_actors::store::connect(&server.db.url).await?;
    let started = Instant::now();
    load_vectors(&db, store_id, workload.spaces.get(set.dims), set.vectors).await?;
    let load = started.elapsed();
    db.close().await.ok();

    eprintln!("{label}: {} queries through the API", set.queries.len());
    let path = format!("/v1/vector_stores/{store_ref}/search");
    let api = async |query: &Query| -> anyhow::Result<Vec<usize>> {
        let found = server
            .post(&path, json!({ "query": query.text, "max_num_results": K }))
            .await?;
        Ok(found["data"]
            .as_array()
            .context("search results")?
            .iter()
            .filter_map(|hit| vector_index(hit["content"][0]["text"].as_str()?))
            .collect())
    };
    let through_api = measure(set, api).await?;
    let (through_sql, plan) = match backend {
        Backend::Sqlite => (None, None),
        Backend::Postgres { .. } => {
            eprintln!("{label}: {} queries in SQL", set.queries.len());
            let (results, plan) = sql_search(&server.db.url, store_id, set).await?;
            (Some(results), Some((set.dims, plan)))
        }
    };
    let rss = rss_kib();
    let sql_count = through_sql
        .as_ref()
        .map_or("-".into(), |r| r.latencies.len().to_string());
    let mut row = vec![
        backend.label().into(),
        set.dims.to_string(),
        set.vectors.to_string(),
        format!("{:.1}", load.as_secs_f64()),
        format!("{}/{sql_count}", through_api.latencies.len()),
    ];
    row.extend(through_api.cells());
    row.extend(through_sql.map_or(vec!["-".into(); 3], |r| r.cells()));
    row.push(mib_of(rss));
    Ok((row, plan))
}

/// Writes vectors `0..n` into `store`, [`CHUNKS_PER_FILE`] to a file row, files marked
/// completed so that search sees them.
async fn load_vectors(
    db: &DatabaseConnection,
    store: Uuid,
    space: &Space,
    n: usize,
) -> anyhow::Result<()> {
    let org_id = vector_store::Entity::find_by_id(store)
        .one(db)
        .await?
        .context("the store's row")?
        .org_id;
    let files = (0..n)
        .step_by(CHUNKS_PER_FILE)
        .map(|first| first..n.min(first + CHUNKS_PER_FILE));
    stream::iter(files)
        .map(|vectors| load_file(db, org_id, store, space, vectors))
        .buffer_unordered(LOAD_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        // As autovacuum soon would: the planner then knows the table's size.
        db.execute_unprepared("ANALYZE chunks").await?;
    }
    Ok(())
}

async fn load_file(
    db: &DatabaseConnection,
    org_id: Uuid,
    store: Uuid,
    space: &Space,
    vectors: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let id = Uuid::new_v4();
    let now = Utc::now();
    let filename = format!("vectors-{}.txt", vectors.start / CHUNKS_PER_FILE);
    let chunks: Vec<NewChunk> = vectors
        .clone()
        .map(|i| NewChunk {
            seq: (i - vectors.start) as i32,
            text: vector_text(i),
            tokens: 0,
            vector: space.vector(&vector_text(i)),
        })
        .collect();
    kb::insert_file(
        db,
        file::Model {
            id,
            org_id,
            filename: filename.clone(),
            purpose: "assistants".into(),
            bytes: 0,
            object_key: format!("bench/{}", id.simple()),
            created_at: now,
        },
    )
    .await?;
    kb::add_store_file(
        db,
        vector_store_file::Model {
            id: Uuid::new_v4(),
            vector_store_id: store,
            file_id: id,
            org_id,
            status: "completed".into(),
            chunking_strategy: json!({}),
            attributes: json!({}),
            title: filename,
            source: "file".into(),
            usage_bytes: 0,
            chunk_count: chunks.len() as i32,
            last_error: None,
            created_at: now,
            updated_at: now,
        },
    )
    .await?;
    // Written from outside the server, into a store it has not searched yet: its index holds
    // nothing of the store to forget, so the writes tell an index of their own.
    let index = squadron_actors::store::vectors::for_backend(db.get_database_backend(), 0);
    kb::insert_chunks(db, &*index, store, id, &chunks).await?;
    Ok(())
}

/// The SQL query's results, and the plan of the first query (run again after them).
async fn sql_search(url: &str, store: Uuid, set: &QuerySet) -> anyhow::Result<(Searched, String)> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(1).sqlx_logging(false);
    let db = sea_orm::Database::connect(options).await?;
    db.execute_unprepared("SET hnsw.iterative_scan = relaxed_order")
        .await?;
    db.execute_unprepared(&format!("SET hnsw.ef_search = {EF_SEARCH}"))
        .await?;
    db.execute_unprepared("SET enable_seqscan = off").await?;
    let dims = set.dims;
    let sql = format!(
        "SELECT text FROM chunks WHERE dims = {dims} AND vector_store_id = $2 \
         ORDER BY vec::vector({dims}) <=> $1::vector({dims}) LIMIT {K}"
    );
    let statement = |prefix: &str, query: &Query| {
        Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            format!("{prefix}{sql}"),
            [pg_vector(&query.vector).into(), store.into()],
        )
    };
    let searched = measure(set, async |query: &Query| {
        let rows = db.query_all_raw(statement("", query)).await?;
        rows.iter()
            .map(|row| {
                let text: String = row.try_get("", "text")?;
                vector_index(&text).context("a vector's text")
            })
            .collect()
    })
    .await?;
    let explained = db
        .query_all_raw(statement("EXPLAIN ANALYZE ", &set.queries[0]))
        .await?;
    let mut plan = String::new();
    for row in explained {
        plan.push_str(&elide_vector(&row.try_get::<String>("", "QUERY PLAN")?));
        plan.push('\n');
    }
    db.close().await.ok();
    Ok((searched, plan))
}

/// A line of a plan with the query's vector literal (`'[...]'`) shortened to `'[...]'`.
fn elide_vector(line: &str) -> String {
    let Some(start) = line.find("'[") else {
        return line.to_owned();
    };
    match line[start..].find("]'") {
        Some(end) => format!("{}'[...]'{}", &line[..start], &line[start + end + 2..]),
        None => line.to_owned(),
    }
}

/// KiB as MiB, for a table.
fn mib_of(kib: u64) -> String {
    format!("{:.0}", kib as f64 / 1024.0)
}

/// pgvector's text form of a vector.
fn pg_vector(v: &[f32]) -> String {
    let items: Vec<String> = v.iter().map(f32::to_string).collect();
    format!("[{}]", items.join(","))
}

/// The latencies of a set's queries, sorted, and their mean recall@K.
struct Searched {
    latencies: Vec<Duration>,
    recall: f64,
}

impl Searched {
    /// p50 ms, p99 ms, recall@K.
    fn cells(&self) -> Vec<String> {
        let ms = |p| {
            percentile(&self.latencies, p)
                .map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1000.0))
        };
        vec![ms(0.50), ms(0.99), format!("{:.3}", self.recall)]
    }
}

/// Runs the warm-up queries, then times the set's queries one at a time until all are done
/// or [`SEARCH_BUDGET`] has passed; `search` returns the indices of the vectors found.
async fn measure(
    set: &QuerySet,
    mut search: impl AsyncFnMut(&Query) -> anyhow::Result<Vec<usize>>,
) -> anyhow::Result<Searched> {
    for query in &set.warm_up {
        search(query).await?;
    }
    let mut latencies = Vec::with_capacity(set.queries.len());
    let mut recalled = 0;
    let deadline = Instant::now() + SEARCH_BUDGET;
    for query in &set.queries {
        if !latencies.is_empty() && Instant::now() >= deadline {
            break;
        }
        let sent = Instant::now();
        let found = search(query).await?;
        latencies.push(sent.elapsed());
        recalled += found.iter().filter(|i| query.nearest.contains(i)).count();
    }
    latencies.sort_unstable();
    let recall = recalled as f64 / (K * latencies.len()) as f64;
    Ok(Searched { latencies, recall })
}

// ---------------------------------------------------------------------------------------------
// The fake embedder

struct Embedder {
    addr: SocketAddr,
    /// Calls answered so far.
    calls: Arc<AtomicUsize>,
}

struct Fake {
    spaces: Arc<Spaces>,
    calls: Arc<AtomicUsize>,
}

/// Binds 127.0.0.1:0 and serves the fake on the current runtime.
async fn start_embedder(spaces: Arc<Spaces>) -> anyhow::Result<Embedder> {
    let calls = Arc::new(AtomicUsize::new(0));
    let fake = Arc::new(Fake {
        spaces,
        calls: calls.clone(),
    });
    let app = Router::new()
        .route("/v1/embeddings", post(fake_embeddings))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            eprintln!("the fake embedder stopped: {err}");
        }
    });
    Ok(Embedder { addr, calls })
}

/// The fake's model of `dims` dimensions answering after `latency`, and its name in the
/// account.
fn upstream_model(dims: usize, latency: Duration) -> String {
    format!("fake-embed-{dims}-{}ms", latency.as_millis())
}

fn model_name(dims: usize) -> String {
    format!("embed-{dims}")
}

#[derive(Serialize)]
struct Embedding {
    object: &'static str,
    index: usize,
    embedding: Vec<f32>,
}

/// The dimensions and latency of an upstream model's name.
fn parse_upstream_model(name: &str) -> Option<(usize, Duration)> {
    let (dims, ms) = name
        .strip_prefix("fake-embed-")?
        .strip_suffix("ms")?
        .split_once('-')?;
    Some((dims.parse().ok()?, Duration::from_millis(ms.parse().ok()?)))
}

/// OpenAI's embedding list for `input`, sent as long after the request came as its model says.
async fn fake_embeddings(
    State(fake): State<Arc<Fake>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let received = Instant::now();
    let model = body["model"].as_str().and_then(parse_upstream_model);
    let space = model.and_then(|(dims, latency)| Some((fake.spaces.find(dims)?, latency)));
    let inputs: Vec<&str> = match &body["input"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let Some((space, latency)) = space.filter(|_| !inputs.is_empty()) else {
        let error = json!({ "error": { "message": "unknown model or no input", "type": "fake" } });
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    };
    let data: Vec<Embedding> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| Embedding {
            object: "embedding",
            index,
            embedding: space.vector(text),
        })
        .collect();
    let reply = axum::Json(json!({
        "object": "list", "data": data, "model": body["model"],
        "usage": { "prompt_tokens": inputs.len(), "total_tokens": inputs.len() },
    }));
    fake.calls.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep_until(received + latency).await;
    reply.into_response()
}

// ---------------------------------------------------------------------------------------------
// The server under test

struct Server {
    app: InProcess,
    client: Client,
    db: Database,
}

impl Server {
    async fn start(backend: &Backend) -> anyhow::Result<Server> {
        let db = Database::fresh(backend).await?;
        Ok(Server {
            app: InProcess::start(common::config(db.dir.path(), &db.url)).await?,
            client: Client::builder().tcp_nodelay(true).build()?,
            db,
        })
    }

    fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let request = self.client.post(self.url(path)).json(&body);
        self.send(request, path).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.client.get(self.url(path)), path).await
    }

    /// Sends as the admin; the reply's JSON, or an error unless it succeeded.
    async fn send(&self, request: reqwest::RequestBuilder, path: &str) -> anyhow::Result<Value> {
        let res = request
            .bearer_auth(&self.app.admin)
            .timeout(STEP_TIMEOUT)
            .send()
            .await
            .with_context(|| format!("{path}: sending"))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        ensure!(status.is_success(), "{path}: {status}: {text}");
        serde_json::from_str(&text).with_context(|| format!("{path}: the reply is not JSON"))
    }

    /// Uploads a file for the assistants; returns its id.
    async fn upload(&self, document: &Document) -> anyhow::Result<String> {
        let form = Form::new().text("purpose", "assistants").part(
            "file",
            Part::bytes(document.bytes.clone()).file_name(document.name.clone()),
        );
        let request = self.client.post(self.url("/v1/files")).multipart(form);
        let file = self.send(request, "/v1/files").await?;
        Ok(file["id"].as_str().context("a file id")?.to_owned())
    }

    /// Provider `fake` at the embedder, and model `embed-D` for its `fake-embed-D-Tms`.
    async fn register(
        &self,
        embedder: &Embedder,
        dims: usize,
        latency: Duration,
    ) -> anyhow::Result<()> {
        let provider = json!({
            "name": "fake", "base_url": format!("http://{}/v1", embedder.addr), "api_key": UPSTREAM_KEY,
        });
        self.post("/v1/core/add/provider", provider).await?;
        let model = json!({
            "name": model_name(dims), "provider": "fake", "model": upstream_model(dims, latency),
            "kind": "embedding", "dimensions": dims,
        });
        self.post("/v1/core/add/model", model).await?;
        Ok(())
    }

    /// Polls a store until none of its files is in progress; returns its file counts.
    async fn settle(&self, store: &str) -> anyhow::Result<Value> {
        let deadline = Instant::now() + INGEST_TIMEOUT;
        loop {
            let view = self.get(&format!("/v1/vector_stores/{store}")).await?;
            if view["file_counts"]["in_progress"] == 0 {
                return Ok(view["file_counts"].clone());
            }
            ensure!(
                Instant::now() < deadline,
                "the ingest did not end within {INGEST_TIMEOUT:?}: {}",
                view["file_counts"]
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Graceful shutdown, then the database goes.
    async fn stop(self) -> anyhow::Result<()> {
        let Server { app, client, db } = self;
        drop(client);
        let stopped = app.stop(STEP_TIMEOUT).await;
        db.remove().await;
        stopped
    }
}
