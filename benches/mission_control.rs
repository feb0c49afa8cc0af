//! Load benchmark of Mission Control, with a real server started in-process on 127.0.0.1:0
//! and talked to over real HTTP, WebSocket and SSE. It prints tables; it is not a timed test.
//!
//! ```text
//! cargo bench --bench mission_control -- [heartbeats|mentions|all] [--pg URL]
//! ```
//!
//! - `heartbeats`: for N = 100, 1,000 and 10,000 agents in squads of 50, 64 concurrent clients
//!   send heartbeats round-robin across every agent (squad key + `X-Agent-Name`) through one
//!   keep-alive `reqwest::Client`: a warm-up of 1 s that also gives every agent its first
//!   (cold) heartbeat, then 5 s measured: throughput, p50/p99 latency, errors, and the
//!   process's RSS.
//! - `mentions`: for K = 10, 100 and 1,000 WebSocket dashboards subscribed to one squad, plus
//!   the mentioned agent's SSE notification stream, 30 rounds (after a warm-up round) of one
//!   `@Reviewer` comment each: the time from just before the comment is posted until each
//!   dashboard has its `comment.created` event and until the SSE stream has the notification,
//!   and the RSS cost of a dashboard connection.
//!
//! The default backend is SQLite in a temporary directory. `--pg URL` takes a PostgreSQL admin
//! URL (e.g. `postgres://postgres@127.0.0.1:5432/postgres`) and creates a fresh database
//! `squadron_bench_<uuid>` on it for each table row, dropped afterwards. Each row gets a fresh
//! server, with rate limits off and actors never stopped for idleness.
//!
//! The server and the load generator share the process (and the machine's cores), so the RSS
//! figures include the load generator's memory too; `all` runs each benchmark in a process of
//! its own. Run without `--bench` (as `cargo test --all-targets` does), the program only says
//! how to run it.

mod common;

use common::{percentile, rss_kib, Backend, Database, InProcess, Table};
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use futures::{stream, SinkExt, StreamExt, TryStreamExt};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const USAGE: &str =
    "usage: cargo bench --bench mission_control -- [heartbeats|mentions|all] [--pg URL]";

/// Agent counts of the heartbeat benchmark.
const FLEET_SIZES: [usize; 3] = [100, 1_000, 10_000];
const AGENTS_PER_SQUAD: usize = 50;
/// Concurrent heartbeat clients.
const CLIENTS: usize = 64;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURED: Duration = Duration::from_secs(5);
/// Squads created (and set up) at once.
const SETUP_CONCURRENCY: usize = 8;
const HEARTBEAT_BODY: &str = r#"{"status":"active"}"#;

/// Dashboard counts of the mention benchmark.
const DASHBOARD_COUNTS: [usize; 3] = [10, 100, 1_000];
const ROUNDS: usize = 30;
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);
/// WebSockets opened at once.
const CONNECT_CONCURRENCY: usize = 32;
/// The dashboards' read buffer: their messages are small.
const CLIENT_WS_READ_BUFFER: usize = 8 * 1024;
/// The longest any single step (a request, a subscription, a shutdown) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    squadron_actors::tls::install();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("mission_control is a load benchmark: run it with `cargo bench --bench mission_control`");
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(args.into_iter().filter(|a| a != "--bench")) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if options.which == Which::All {
        return run_each_alone(&options.backend);
    }
    // A thousand dashboards are two thousand sockets in this one process.
    if let Err(err) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("warning: could not raise the open-file limit: {err}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("benchmark failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Heartbeats,
    Mentions,
    All,
}

struct Options {
    which: Which,
    backend: Backend,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut which = Which::All;
        let mut pg = None;
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "heartbeats" => which = Which::Heartbeats,
                "mentions" => which = Which::Mentions,
                "all" => which = Which::All,
                "--pg" => pg = Some(args.next().ok_or("--pg needs a URL")?),
                other => match other.strip_prefix("--pg=") {
                    Some(url) => pg = Some(url.to_owned()),
                    None => return Err(format!("unknown argument {other:?}")),
                },
            }
        }
        let backend = match pg {
            Some(admin_url) => Backend::Postgres { admin_url },
            None => Backend::Sqlite,
        };
        Ok(Options { which, backend })
    }
}

/// `all`: each benchmark in a process of its own, so that neither's RSS figures carry memory
/// the other left behind (freed memory mostly stays with the process).
fn run_each_alone(backend: &Backend) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => {
            eprintln!("benchmark failed: cannot find this program: {err}");
            return ExitCode::FAILURE;
        }
    };
    for which in ["heartbeats", "mentions"] {
        let mut command = std::process::Command::new(&exe);
        command.args(["--bench", which]);
        if let Backend::Postgres { admin_url } = backend {
            command.args(["--pg", admin_url]);
        }
        match command.status() {
            Ok(status) if status.success() => {}
            Ok(status) => {
                eprintln!("benchmark {which} failed: {status}");
                return ExitCode::FAILURE;
            }
            Err(err) => {
                eprintln!("benchmark {which} could not start: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

async fn run(options: Options) -> anyhow::Result<()> {
    match options.which {
        Which::Heartbeats => heartbeats(&options.backend).await,
        Which::Mentions => mentions(&options.backend).await,
        Which::All => unreachable!("`all` runs each benchmark in a process of its own"),
    }
}

// ---------------------------------------------------------------------------------------------
// Heartbeats

async fn heartbeats(backend: &Backend) -> anyhow::Result<()> {
    let mut table = Table::new(&[
        "backend",
        "N",
        "squads",
        "setup s",
        "warm-up s",
        "heartbeats/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "server RSS MiB",
    ]);
    for agents in FLEET_SIZES {
        table.push(heartbeat_row(backend, agents).await?);
    }
    println!(
        "\n## heartbeats: {CLIENTS} clients, round-robin over all agents; warm-up: {} s and one heartbeat per agent; {} s measured\n",
        WARM_UP.as_secs(),
        MEASURED.as_secs()
    );
    table.print();
    println!("\nRSS is the whole process's VmRSS at the end of the row: the load generator runs in it too.");
    Ok(())
}

async fn heartbeat_row(backend: &Backend, agents: usize) -> anyhow::Result<Vec<String>> {
    let server = Server::start(backend).await?;
    let squads = agents / AGENTS_PER_SQUAD;
    eprintln!("heartbeats N={agents}: setting up {squads} squads");
    let started = Instant::now();
    let beats = Arc::new(setup_fleet(&server, squads).await?);
    let setup = started.elapsed();
    eprintln!(
        "heartbeats N={agents}: set up in {:.1} s; warming up",
        setup.as_secs_f64()
    );
    let url = server.url("/api/heartbeat");
    // Every agent's first heartbeat starts its actor and fills the server's caches: the
    // warm-up lasts until each agent has had one, so the measured run sees warm agents only.
    let warm_up = heartbeat_load(&server.client, &url, &beats, WARM_UP, beats.len()).await;
    let load = heartbeat_load(&server.client, &url, &beats, MEASURED, 0).await;
    let rss = rss_kib();
    server.stop().await?;
    let ok = load.latencies.len() as u64 - load.errors;
    Ok(vec![
        backend.label().into(),
        agents.to_string(),
        squads.to_string(),
        format!("{:.1}", setup.as_secs_f64()),
        format!("{:.1}", warm_up.elapsed.as_secs_f64()),
        format!("{:.0}", ok as f64 / load.elapsed.as_secs_f64()),
        percentile_ms(&load.latencies, 0.50),
        percentile_ms(&load.latencies, 0.99),
        load.errors.to_string(),
        format!("{:.0}", rss as f64 / 1024.0),
    ])
}

/// What one heartbeat request carries: the squad key and the agent it acts as.
struct Beat {
    auth: HeaderValue,
    agent: HeaderValue,
}

/// Creates and sets up `squads` squads of [`AGENTS_PER_SQUAD`] agents, a few at a time;
/// returns one [`Beat`] per agent, interleaved across squads.
async fn setup_fleet(server: &Server, squads: usize) -> anyhow::Result<Vec<Beat>> {
    let names: Vec<String> = (1..=AGENTS_PER_SQUAD)
        .map(|i| format!("agent{i}"))
        .collect();
    let names = &names;
    let created: Vec<SquadKeys> = stream::iter(0..squads)
        .map(|i| async move { server.create_squad(&format!("fleet-{i}"), names).await })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    let mut beats = Vec::with_capacity(squads * AGENTS_PER_SQUAD);
    for name in names {
        for squad in &created {
            beats.push(Beat {
                auth: HeaderValue::from_str(&format!("Bearer {}", squad.squad_key))?,
                agent: HeaderValue::from_str(name)?,
            });
        }
    }
    Ok(beats)
}

/// Every request's latency (errors included) over one load run.
struct Load {
    latencies: Vec<Duration>,
    errors: u64,
    elapsed: Duration,
}

/// [`CLIENTS`] tasks send heartbeats, each taking the next agent in turn, for `duration` and
/// until at least `at_least` have been sent.
async fn heartbeat_load(
    client: &Client,
    url: &str,
    beats: &Arc<Vec<Beat>>,
    duration: Duration,
    at_least: usize,
) -> Load {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            tokio::spawn(heartbeat_worker(
                client.clone(),
                url.to_owned(),
                beats.clone(),
                next.clone(),
                deadline,
                at_least,
            ))
        })
        .collect();
    let mut load = Load {
        latencies: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for worker in futures::future::join_all(workers).await {
        let (latencies, errors) = worker.expect("heartbeat worker does not panic");
        load.latencies.extend(latencies);
        load.errors += errors;
    }
    load.elapsed = started.elapsed();
    load.latencies.sort_unstable();
    load
}

/// One client's loop: its latencies and its error count.
async fn heartbeat_worker(
    client: Client,
    url: String,
    beats: Arc<Vec<Beat>>,
    next: Arc<AtomicUsize>,
    deadline: Instant,
    at_least: usize,
) -> (Vec<Duration>, u64) {
    let mut latencies = Vec::new();
    let mut errors = 0;
    loop {
        let turn = next.fetch_add(1, Ordering::Relaxed);
        if Instant::now() >= deadline && turn >= at_least {
            break;
        }
        let beat = &beats[turn % beats.len()];
        let sent = Instant::now();
        let ok = send_heartbeat(&client, &url, beat).await;
        latencies.push(sent.elapsed());
        if !ok {
            errors += 1;
        }
    }
    (latencies, errors)
}

/// One heartbeat, its reply read to the end so the connection goes back to the pool.
async fn send_heartbeat(client: &Client, url: &str, beat: &Beat) -> bool {
    let sent = client
        .post(url)
        .header(AUTHORIZATION, beat.auth.clone())
        .header("x-agent-name", beat.agent.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(HEARTBEAT_BODY)
        .timeout(STEP_TIMEOUT)
        .send()
        .await;
    match sent {
        Ok(res) => {
            let status = res.status();
            res.bytes().await.is_ok() && status == StatusCode::OK
        }
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Mentions

async fn mentions(backend: &Backend) -> anyhow::Result<()> {
    let mut table = Table::new(&[
        "backend",
        "K",
        "rounds",
        "dashboards p50 ms",
        "dashboards p99 ms",
        "SSE p50 ms",
        "SSE p99 ms",
        "missed",
        "server RSS MiB",
        "RSS per WS KiB",
    ]);
    for dashboards in DASHBOARD_COUNTS {
        table.push(mention_row(backend, dashboards).await?);
    }
    println!(
        "\n## mentions: {ROUNDS} rounds (after one warm-up round) of one @Reviewer comment; latency from just before the POST to receipt\n"
    );
    table.print();
    println!(
        "\nmissed: dashboard events and SSE notifications not received within {} s of their round.",
        ROUND_TIMEOUT.as_secs()
    );
    println!("RSS is the whole process's VmRSS at the end of the row (the clients run in it too); RSS per WS is");
    println!("(RSS after opening and subscribing K sockets - RSS before) / K: the server's end of each socket, plus the client's");
    println!(
        "end (read buffer cut to {} KiB) and reader task.",
        CLIENT_WS_READ_BUFFER / 1024
    );
    Ok(())
}

/// Who received a round's comment.
#[derive(Clone, Copy)]
enum Source {
    Dashboard(usize),
    Sse,
}

struct Receipt {
    source: Source,
    round: usize,
    at: Instant,
}

async fn mention_row(backend: &Backend, dashboards: usize) -> anyhow::Result<Vec<String>> {
    let server = Server::start(backend).await?;
    let squad = server
        .create_squad("mentions", &["Writer", "Reviewer"])
        .await?;
    let reviewer_key = squad
        .agent_keys
        .get("Reviewer")
        .context("setup returned no key for Reviewer")?;
    let (receipts, mut inbox) = mpsc::unbounded_channel::<Receipt>();

    eprintln!("mentions K={dashboards}: connecting dashboards");
    let rss_before = rss_kib();
    let mut readers = connect_dashboards(&server, &squad.id, dashboards, &receipts).await?;
    let rss_connected = rss_kib();
    readers.push(open_notifications(&server, reviewer_key, receipts.clone()).await?);
    let task_id = server.create_task(&squad.squad_key, "Writer").await?;

    eprintln!("mentions K={dashboards}: {ROUNDS} rounds");
    let mut dashboard_latencies = Vec::with_capacity(dashboards * ROUNDS);
    let mut sse_latencies = Vec::with_capacity(ROUNDS);
    let mut missed = 0;
    // Round 0 is a warm-up: the server's first comment is much slower than the rest.
    for round in 0..=ROUNDS {
        let t0 = Instant::now();
        server
            .comment(
                &squad.squad_key,
                "Writer",
                &task_id,
                &format!("@Reviewer round {round}"),
            )
            .await?;
        let got = collect_round(&mut inbox, round, dashboards, t0).await;
        if round == 0 {
            continue;
        }
        missed += dashboards - got.dashboards.len() + usize::from(got.sse.is_none());
        dashboard_latencies.extend(got.dashboards);
        sse_latencies.extend(got.sse);
    }
    let rss = rss_kib();
    for reader in readers {
        reader.abort();
    }
    server.stop().await?;

    dashboard_latencies.sort_unstable();
    sse_latencies.sort_unstable();
    let per_socket = rss_connected.saturating_sub(rss_before) as f64 / dashboards as f64;
    Ok(vec![
        backend.label().into(),
        dashboards.to_string(),
        ROUNDS.to_string(),
        percentile_ms(&dashboard_latencies, 0.50),
        percentile_ms(&dashboard_latencies, 0.99),
        percentile_ms(&sse_latencies, 0.50),
        percentile_ms(&sse_latencies, 0.99),
        missed.to_string(),
        format!("{:.0}", rss as f64 / 1024.0),
        format!("{per_socket:.1}"),
    ])
}

/// One round's receipts: a latency per dashboard that got the comment, and the SSE's.
struct RoundReceipts {
    dashboards: Vec<Duration>,
    sse: Option<Duration>,
}

/// Waits until every dashboard and the SSE stream have round `round`, or its time is up.
/// Late receipts of earlier rounds are dropped.
async fn collect_round(
    inbox: &mut mpsc::UnboundedReceiver<Receipt>,
    round: usize,
    dashboards: usize,
    t0: Instant,
) -> RoundReceipts {
    let deadline = t0 + ROUND_TIMEOUT;
    let mut seen = vec![false; dashboards];
    let mut got = RoundReceipts {
        dashboards: Vec::with_capacity(dashboards),
        sse: None,
    };
    while got.dashboards.len() < dashboards || got.sse.is_none() {
        let Ok(Some(receipt)) = timeout_at(deadline, inbox.recv()).await else {
            break;
        };
        if receipt.round != round {
            continue;
        }
        let latency = receipt.at.saturating_duration_since(t0);
        match receipt.source {
            Source::Dashboard(i) if !seen[i] => {
                seen[i] = true;
                got.dashboards.push(latency);
            }
            Source::Sse if got.sse.is_none() => got.sse = Some(latency),
            _ => {}
        }
    }
    got
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `count` sockets subscribed to the squad, a few at a time; each gets a reader task
/// that reports the rounds' `comment.created` events.
async fn connect_dashboards(
    server: &Server,
    squad_id: &str,
    count: usize,
    receipts: &mpsc::UnboundedSender<Receipt>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    stream::iter(0..count)
        .map(|i| async move {
            let socket = server.subscribed_socket(squad_id).await?;
            Ok::<_, anyhow::Error>(tokio::spawn(read_dashboard(i, socket, receipts.clone())))
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await
}

async fn read_dashboard(
    index: usize,
    mut socket: Socket,
    receipts: mpsc::UnboundedSender<Receipt>,
) {
    while let Some(Ok(message)) = socket.next().await {
        let at = Instant::now();
        let Message::Text(text) = message else {
            continue;
        };
        if let Some(round) = comment_round(&text) {
            let receipt = Receipt {
                source: Source::Dashboard(index),
                round,
                at,
            };
            if receipts.send(receipt).is_err() {
                return;
            }
        }
    }
}

/// The round of a `comment.created` event; `None` for any other message.
fn comment_round(text: &str) -> Option<usize> {
    if !text.contains("comment.created") {
        return None;
    }
    let message: Value = serde_json::from_str(text).ok()?;
    let event = &message["event"];
    if message["type"] != "event" || event["kind"] != "comment.created" {
        return None;
    }
    round_of(event["comment"]["content"].as_str()?)
}

fn round_of(content: &str) -> Option<usize> {
    content
        .strip_prefix("@Reviewer round ")?
        .trim()
        .parse()
        .ok()
}

/// Opens the agent's SSE notification stream; a reader task reports the rounds' notifications.
async fn open_notifications(
    server: &Server,
    agent_key: &str,
    receipts: mpsc::UnboundedSender<Receipt>,
) -> anyhow::Result<JoinHandle<()>> {
    let res = server
        .client
        .get(server.url("/api/notifications/stream"))
        .bearer_auth(agent_key)
        .header(ACCEPT, "text/event-stream")
        .send()
        .await
        .context("opening the notification stream")?;
    ensure!(
        res.status() == StatusCode::OK,
        "notification stream answered {}",
        res.status()
    );
    Ok(tokio::spawn(read_notifications(res, receipts)))
}

async fn read_notifications(res: Response, receipts: mpsc::UnboundedSender<Receipt>) {
    let mut chunks = res.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(Ok(chunk)) = chunks.next().await {
        let at = Instant::now();
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = buffer.drain(..end + 2).collect();
            let Some(round) = notification_round(&String::from_utf8_lossy(&frame)) else {
                continue;
            };
            let receipt = Receipt {
                source: Source::Sse,
                round,
                at,
            };
            if receipts.send(receipt).is_err() {
                return;
            }
        }
    }
}

/// The round of an SSE `notification` frame; `None` for keep-alives and anything else.
fn notification_round(frame: &str) -> Option<usize> {
    let mut event = None;
    let mut data = String::new();
    for line in frame.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            event = Some(value.trim());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    if event != Some("notification") {
        return None;
    }
    let message: Value = serde_json::from_str(&data).ok()?;
    round_of(message["notification"]["content"].as_str()?)
}

// ---------------------------------------------------------------------------------------------
// The server under test

/// A squad after setup: its key (any agent, by `X-Agent-Name`) and each agent's own key.
struct SquadKeys {
    id: String,
    squad_key: String,
    agent_keys: HashMap<String, String>,
}

struct Server {
    app: InProcess,
    client: Client,
    db: Database,
}

impl Server {
    async fn start(backend: &Backend) -> anyhow::Result<Server> {
        let db = Database::fresh(backend).await?;
        let mut config = common::config(db.dir.path(), &db.url);
        config.actor_idle_secs = 0;
        Ok(Server {
            app: InProcess::start(config).await?,
            client: Client::builder().tcp_nodelay(true).build()?,
            db,
        })
    }

    fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    /// Graceful shutdown, then the database goes.
    async fn stop(self) -> anyhow::Result<()> {
        let Server { app, client, db } = self;
        drop(client);
        app.stop(STEP_TIMEOUT).await?;
        db.remove().await;
        Ok(())
    }

    /// Creates a squad of `agents` (heartbeat every hour, so none goes offline) and redeems
    /// its setup token.
    async fn create_squad(
        &self,
        name: &str,
        agents: &[impl AsRef<str>],
    ) -> anyhow::Result<SquadKeys> {
        let specs: Vec<Value> = agents
            .iter()
            .map(
                |a| json!({ "name": a.as_ref(), "role": "bench", "heartbeat_interval_secs": 3600 }),
            )
            .collect();
        let res = self
            .client
            .post(self.url("/api/squads"))
            .bearer_auth(&self.app.admin)
            .json(&json!({ "name": name, "agents": specs }))
            .timeout(STEP_TIMEOUT)
            .send()
            .await?;
        let squad = data(res, StatusCode::CREATED, "creating a squad").await?;
        let id = text(&squad["id"], "squad id")?;
        let token = text(&squad["setup_token"], "setup token")?;
        let res = self
            .client
            .get(self.url(&format!("/api/setup/{id}")))
            .header("x-setup-token", token)
            .timeout(STEP_TIMEOUT)
            .send()
            .await?;
        let setup = data(res, StatusCode::OK, "redeeming the setup token").await?;
        let agent_keys = setup["agents"]
            .as_array()
            .context("setup lists no agents")?
            .iter()
            .map(|a| {
                Ok((
                    text(&a["name"], "agent name")?,
                    text(&a["api_key"], "agent key")?,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(SquadKeys {
            id,
            squad_key: text(&setup["api_key"], "squad key")?,
            agent_keys,
        })
    }

    /// Creates a task as `agent`; returns its id.
    async fn create_task(&self, squad_key: &str, agent: &str) -> anyhow::Result<String> {
        let res = self
            .client
            .post(self.url("/api/tasks"))
            .bearer_auth(squad_key)
            .header("x-agent-name", agent)
            .json(&json!({ "title": "Please review" }))
            .timeout(STEP_TIMEOUT)
            .send()
            .await?;
        let task = data(res, StatusCode::CREATED, "creating a task").await?;
        text(&task["id"], "task id")
    }

    async fn comment(
        &self,
        squad_key: &str,
        agent: &str,
        task_id: &str,
        content: &str,
    ) -> anyhow::Result<()> {
        let res = self
            .client
            .post(self.url(&format!("/api/tasks/{task_id}/comments")))
            .bearer_auth(squad_key)
            .header("x-agent-name", agent)
            .json(&json!({ "content": content }))
            .timeout(STEP_TIMEOUT)
            .send()
            .await?;
        data(res, StatusCode::CREATED, "commenting").await?;
        Ok(())
    }

    /// A WebSocket to `/api/live` as the organization's admin, subscribed to the squad.
    async fn subscribed_socket(&self, squad_id: &str) -> anyhow::Result<Socket> {
        let mut request = format!("ws://{}/api/live", self.app.addr).into_client_request()?;
        request
            .headers_mut()
            .insert(AUTHORIZATION, format!("Bearer {}", self.app.admin).parse()?);
        // tungstenite zero-fills its whole read buffer (128 KiB by default) on each read: a
        // small one on this, the client's, end keeps the RSS per socket mostly the server's.
        let config = WebSocketConfig::default().read_buffer_size(CLIENT_WS_READ_BUFFER);
        let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), false);
        let (mut socket, _) = timeout(STEP_TIMEOUT, connect)
            .await
            .context("WebSocket connect timed out")?
            .context("connecting a WebSocket")?;
        let subscribe = json!({ "op": "subscribe", "squad_id": squad_id }).to_string();
        socket.send(Message::Text(subscribe.into())).await?;
        loop {
            let message = timeout(STEP_TIMEOUT, socket.next())
                .await
                .context("no reply to subscribe in time")?
                .context("the socket closed before subscribing")??;
            let Message::Text(text) = message else {
                continue;
            };
            let reply: Value = serde_json::from_str(&text)?;
            match reply["type"].as_str() {
                Some("subscribed") => return Ok(socket),
                Some("error") => bail!("subscribe failed: {reply}"),
                _ => {}
            }
        }
    }
}

/// The `data` of a reply that must have status `expected`.
async fn data(res: Response, expected: StatusCode, what: &str) -> anyhow::Result<Value> {
    let status = res.status();
    let body = res
        .text()
        .await
        .with_context(|| format!("{what}: reading the reply"))?;
    ensure!(
        status == expected,
        "{what}: expected {expected}, got {status}: {body}"
    );
    let mut value: Value =
        serde_json::from_str(&body).with_context(|| format!("{what}: reply is not JSON"))?;
    Ok(value["data"].take())
}

fn text(value: &Value, what: &str) -> anyhow::Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the reply has no {what}"))
}

// ---------------------------------------------------------------------------------------------
// Measuring and printing

/// The nearest-rank percentile `p` (0 to 1) of sorted latencies, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: f64) -> String {
    percentile(sorted, p).map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1000.0))
}
