//! Load benchmark of the OpenAI-compatible gateway: the time Squadron adds on top of an
//! upstream. A fake upstream and a real server are started on loopback and talked to over
//! real HTTP. It prints tables; it is not a timed test.
//!
//! ```text
//! cargo bench --bench gateway -- [--quick] [--streams C,C,...] [--token-ms N] [--server-process]
//! ```
//!
//! - Squadron runs inside this program, on the runtime the clients use, on every CPU.
//!   `--server-process` runs it as its own process instead (the `squadron` binary, as
//!   deployed) pinned to CPU 0, with this program (clients and fake upstream) pinned to CPU 1.
//!   On a 2-core machine that leaves each side one core, and it measured worse than in
//!   process; it is the arrangement to use where the load has cores of its own.
//! - The fake upstream (an axum app on a tokio runtime of its own, one worker thread) answers
//!   `POST /v1/chat/completions`: with `stream: true`, 200 content chunks in OpenAI's chunk
//!   format, one every 20 ms (`--token-ms`; 50 tokens/s, a fast hosted model's pace) on a
//!   fixed schedule (chunk i at i × 20 ms after the request; a late chunk is sent at once),
//!   then a usage chunk if `stream_options.include_usage`, then `data: [DONE]`; otherwise a
//!   small JSON completion at once.
//! - A bare relay (in process only) is measured as a third path: axum in, reqwest out, the
//!   request's body and the upstream's bytes passed on unread, no auth, lookups or metrics.
//!   It is the floor for any proxy hop on this stack and machine: what Squadron adds beyond
//!   it is Squadron's own.
//! - Squadron uses SQLite in a temporary directory, with rate limits off. The fake is
//!   registered as provider `fake`, and model `bench` maps to its `fake-model`.
//! - Streaming: for C = 1, 100 and 1,000 concurrent streams (`--quick`: 1 and 100; or the
//!   counts `--streams` lists), C clients each stream back to back, so C streams are open at
//!   every moment. Their first requests are spread over one stream's length, so requests
//!   arrive steadily, not in a burst. Requests sent in the first stream's length (plus 1 s)
//!   warm up and are not counted; then requests are counted for a window (12 s, or longer at
//!   small C so that at least 20 complete). The paths take turns, never two at once: half a
//!   window straight to the upstream (model `fake-model`), then through the bare relay, then
//!   through Squadron (model `bench`), and again. Each request records its time to first
//!   token (until the first `data:` chunk with content arrives) and its total time (until
//!   `data: [DONE]` arrives). Added = the path's percentile minus direct's. The whole
//!   machine's busy CPUs over the counted windows are reported too: where they near the
//!   core count, every path waits for a CPU.
//! - Non-streaming: 64 clients send requests back to back for 3 s (after 0.5 s of warm-up),
//!   each path in turn.
//!
//! Both requests ask for `stream_options.include_usage`, so both paths deliver the same bytes.
//! RSS is the whole program's (clients and upstream too); with `--server-process`, the
//! server process's alone. Run without `--bench` (as `cargo test --all-targets` does), the program
//! only says how to run it.

mod common;

use common::{
    machine_busy_secs, percentile, rss_kib, rss_kib_of, Backend, Database, InProcess, Table,
};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::Router;
use futures::StreamExt;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant, MissedTickBehavior};

const USAGE: &str =
    "usage: cargo bench --bench gateway -- [--quick] [--streams C,C,...] [--token-ms N] [--server-process]";

/// Concurrent streams per round.
const CONCURRENCY: [usize; 3] = [1, 100, 1_000];
const QUICK_CONCURRENCY: [usize; 2] = [1, 100];
/// Content chunks per streamed completion, and their pace (`--token-ms`, default 20).
const TOKENS: usize = 200;
static TOKEN_EVERY_MS: AtomicU64 = AtomicU64::new(20);

fn token_every() -> Duration {
    Duration::from_millis(TOKEN_EVERY_MS.load(Ordering::Relaxed))
}
/// Rounds per path for C concurrent streams: enough for about this many samples...
/// How long requests are counted per C and path (halved, twice), and how many must complete.
const WINDOW: Duration = Duration::from_secs(12);
const QUICK_WINDOW: Duration = Duration::from_secs(4);
const MIN_SAMPLES: usize = 20;
const QUICK_MIN_SAMPLES: usize = 6;
/// ... and at least this many.
/// Non-streaming load.
const RPS_CLIENTS: usize = 64;
const RPS_WARM_UP: Duration = Duration::from_millis(500);
const RPS_MEASURED: Duration = Duration::from_secs(3);
/// The longest any single request or step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// Error messages shown per path and row.
const ERRORS_SHOWN: usize = 3;

const UPSTREAM_MODEL: &str = "fake-model";
const SQUADRON_MODEL: &str = "bench";
const UPSTREAM_KEY: &str = "sk-x";

fn main() -> ExitCode {
    squadron_actors::tls::install();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("gateway is a load benchmark: run it with `cargo bench --bench gateway`");
        return ExitCode::SUCCESS;
    }
    let mut quick = false;
    let mut streams: Option<Vec<usize>> = None;
    let mut in_process = true;
    let mut rest = args.iter().filter(|a| *a != "--bench");
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--streams" => {
                let list = rest.next().map(|list| {
                    list.split(',')
                        .map(|c| c.trim().parse::<usize>().ok().filter(|&c| c > 0))
                        .collect::<Option<Vec<usize>>>()
                });
                match list {
                    Some(Some(list)) if !list.is_empty() => streams = Some(list),
                    _ => {
                        eprintln!("--streams takes stream counts, like 1,100\n{USAGE}");
                        return ExitCode::from(2);
                    }
                }
            }
            "--server-process" => in_process = false,
            "--token-ms" => match rest.next().and_then(|n| n.parse::<u64>().ok()) {
                Some(ms) if ms > 0 => TOKEN_EVERY_MS.store(ms, Ordering::Relaxed),
                _ => {
                    eprintln!("--token-ms takes a whole number of milliseconds\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let mut options = Options::new(quick, in_process);
    if let Some(streams) = streams {
        options.concurrency = streams;
    }
    if !in_process {
        // Before any runtime starts: every thread this program makes inherits CPU 1.
        pin(&std::process::id().to_string(), LOAD_CPU);
    }
    // Per stream through Squadron: client and server ends of the client's connection and of
    // Squadron's to the upstream; the direct path's pooled connections stay open meanwhile.
    let needed = 6 * options.max_concurrency() as u64 + 100;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < needed => {
            eprintln!("warning: the open-file limit is {limit}, below the {needed} this needs")
        }
        Ok(_) => {}
        Err(err) => eprintln!("warning: could not raise the open-file limit: {err}"),
    }
    // The fake upstream gets a runtime (and worker thread) of its own, so its pacing does not
    // queue behind Squadron's and the clients' tasks; the OS still shares the cores.
    let upstream_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fake-upstream")
        .enable_all()
        .build()
        .expect("a tokio runtime for the upstream");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(run(options, &upstream_runtime));
    upstream_runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("benchmark failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}

struct Options {
    concurrency: Vec<usize>,
    window: Duration,
    min_samples: usize,
    in_process: bool,
}

impl Options {
    fn new(quick: bool, in_process: bool) -> Options {
        if quick {
            Options {
                concurrency: QUICK_CONCURRENCY.to_vec(),
                window: QUICK_WINDOW,
                min_samples: QUICK_MIN_SAMPLES,
                in_process,
            }
        } else {
            Options {
                concurrency: CONCURRENCY.to_vec(),
                window: WINDOW,
                min_samples: MIN_SAMPLES,
                in_process,
            }
        }
    }

    fn max_concurrency(&self) -> usize {
        self.concurrency.iter().copied().max().unwrap_or(1)
    }

    /// The counting window at C streams: long enough for `min_samples` to complete.
    fn window(&self, c: usize) -> Duration {
        let enough = stream_length() * (self.min_samples.div_ceil(c) as u32 + 1);
        self.window.max(enough)
    }
}

async fn run(options: Options, upstream_runtime: &Runtime) -> anyhow::Result<()> {
    let upstream = upstream_runtime
        .spawn(start_upstream())
        .await
        .context("starting the fake upstream")??;
    let server = if options.in_process {
        Server::start_in_process().await?
    } else {
        Server::start_process().await?
    };
    server.register(upstream).await?;
    let pool = options.max_concurrency().max(RPS_CLIENTS);
    let mut targets = vec![Arc::new(Target::new(
        "direct",
        format!("http://{upstream}/v1/chat/completions"),
        UPSTREAM_KEY,
        UPSTREAM_MODEL,
        pool,
    )?)];
    // The bare relay runs where Squadron runs, so it is measured only in process.
    if options.in_process {
        let relay = start_relay(upstream).await?;
        targets.push(Arc::new(Target::new(
            "bare relay",
            format!("http://{relay}/v1/chat/completions"),
            UPSTREAM_KEY,
            UPSTREAM_MODEL,
            pool,
        )?));
    }
    targets.push(Arc::new(Target::new(
        "squadron",
        server.url("/v1/chat/completions"),
        &server.admin,
        SQUADRON_MODEL,
        pool,
    )?));
    // A request each way first: every path must work before anything is measured.
    for target in &targets {
        one_stream(target)
            .await
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("a first streaming request {}", target.name))?;
    }

    let mut ttft = Table::new(&[
        "C",
        "path",
        "window s",
        "streams",
        "errors",
        "p50",
        "p99",
        "added p50",
        "added p99",
        "CPUs busy",
        "RSS MiB",
    ]);
    let mut total = Table::new(&["C", "path", "p50", "p99", "added p50", "added p99"]);
    for &c in &options.concurrency {
        let window = options.window(c);
        eprintln!(
            "streams C={c}: per path, twice: warm-up, then {:.0} s counted",
            window.as_secs_f64() / 2.0
        );
        let mut streams: Vec<Streams> = targets.iter().map(|_| Streams::default()).collect();
        for _ in 0..2 {
            for (target, streams) in targets.iter().zip(&mut streams) {
                eprintln!("streams C={c}: {}", target.name);
                streams.extend(steady(target, c, window / 2).await);
            }
        }
        streams.iter_mut().for_each(Streams::sort);
        let rss = server.rss_kib();
        let direct = &streams[0];
        for (target, s) in targets.iter().zip(&streams) {
            s.report_errors(c, target.name);
            ttft.push(vec![
                c.to_string(),
                target.name.into(),
                format!("{:.0}", window.as_secs_f64()),
                s.ttft.len().to_string(),
                s.errors.len().to_string(),
                ms(percentile(&s.ttft, 0.50)),
                ms(percentile(&s.ttft, 0.99)),
                added(&s.ttft, &direct.ttft, 0.50),
                added(&s.ttft, &direct.ttft, 0.99),
                s.busy(),
                format!("{:.0}", rss as f64 / 1024.0),
            ]);
            total.push(vec![
                c.to_string(),
                target.name.into(),
                ms(percentile(&s.total, 0.50)),
                ms(percentile(&s.total, 0.99)),
                added(&s.total, &direct.total, 0.50),
                added(&s.total, &direct.total, 0.99),
            ]);
        }
    }

    eprintln!("non-streaming: {RPS_CLIENTS} clients, each path in turn");
    let mut rps = Table::new(&[
        "path",
        "clients",
        "seconds",
        "requests",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "RSS MiB",
    ]);
    for target in &targets {
        eprintln!("non-streaming: {}", target.name);
        let _ = request_load(target, RPS_WARM_UP).await;
        let load = request_load(target, RPS_MEASURED).await;
        for error in load.errors.iter().take(ERRORS_SHOWN) {
            eprintln!("non-streaming {}: error: {error}", target.name);
        }
        let rss = server.rss_kib();
        rps.push(vec![
            target.name.into(),
            RPS_CLIENTS.to_string(),
            format!("{:.1}", load.elapsed.as_secs_f64()),
            load.latencies.len().to_string(),
            format!(
                "{:.0}",
                load.latencies.len() as f64 / load.elapsed.as_secs_f64()
            ),
            ms(percentile(&load.latencies, 0.50)),
            ms(percentile(&load.latencies, 0.99)),
            load.errors.len().to_string(),
            format!("{:.0}", rss as f64 / 1024.0),
        ]);
    }
    drop(targets);
    server.stop().await?;

    println!(
        "\n## streaming, time to first token (ms): C streams open at every moment, each path in turn; {TOKENS} chunks, one per {} ms\n",
        token_every().as_millis()
    );
    ttft.print();
    println!(
        "\nDesign goal: Squadron's added TTFT p50 <= 0.2 ms and p99 <= 1 ms at 1,000 concurrent streams."
    );
    println!("TTFT: from just before the request is sent until the first `data:` chunk with content arrives.");
    println!("added = the path's percentile - direct's. errors: failed streams.");
    println!(
        "CPUs busy: the whole machine's ({} CPUs, every process), over the counted windows.",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("bare relay: the least a proxy on the same stack does (axum in, reqwest out, bytes passed on");
    println!("unread, no auth or lookups): the floor for any proxy hop on this machine.");
    if options.in_process {
        println!("In process: Squadron, the bare relay, the clients and the fake upstream share one runtime and both CPUs.");
        println!("RSS is the whole program's VmRSS after the row: the clients and the fake upstream run in it too.");
    } else {
        println!("Squadron ran as its own process on CPU {SERVER_CPU}; the clients and the fake upstream on CPU {LOAD_CPU}.");
        println!("RSS is the Squadron process's VmRSS after the row.");
    }
    println!("\n## streaming, total time (ms): same requests, until `data: [DONE]` arrives\n");
    total.print();
    println!(
        "\n## non-streaming: {RPS_CLIENTS} clients back to back for {} s (after {} s of warm-up), each path in turn\n",
        RPS_MEASURED.as_secs(),
        RPS_WARM_UP.as_secs_f64()
    );
    rps.print();
    println!("\nThe fake upstream answers at once: requests/s is bound by this machine's cores, which the upstream,");
    println!("Squadron and the clients share.");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The load

/// Where requests go, and what they carry.
struct Target {
    name: &'static str,
    url: String,
    auth: HeaderValue,
    stream_body: Bytes,
    plain_body: Bytes,
    client: Client,
}

impl Target {
    fn new(
        name: &'static str,
        url: String,
        token: &str,
        model: &str,
        pool: usize,
    ) -> anyhow::Result<Target> {
        let messages = json!([{ "role": "user", "content": "Say something." }]);
        let stream_body = json!({
            "model": model, "stream": true, "stream_options": { "include_usage": true },
            "messages": messages,
        });
        let plain_body = json!({ "model": model, "messages": messages });
        Ok(Target {
            name,
            url,
            auth: HeaderValue::from_str(&format!("Bearer {token}"))?,
            stream_body: Bytes::from(stream_body.to_string()),
            plain_body: Bytes::from(plain_body.to_string()),
            // A pool of its own per path, big enough to keep every connection of a round.
            client: Client::builder()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(pool)
                .build()?,
        })
    }
}

/// One streamed request's times.
struct Sample {
    ttft: Duration,
    total: Duration,
}

#[derive(Default)]
struct Streams {
    ttft: Vec<Duration>,
    total: Vec<Duration>,
    errors: Vec<String>,
    /// The machine's busy CPUs over each counted window.
    busy: Vec<f64>,
}

impl Streams {
    fn extend(&mut self, other: Streams) {
        self.ttft.extend(other.ttft);
        self.total.extend(other.total);
        self.errors.extend(other.errors);
        self.busy.extend(other.busy);
    }

    /// The machine's busy CPUs, averaged over the counted windows.
    fn busy(&self) -> String {
        if self.busy.is_empty() {
            return "-".into();
        }
        format!(
            "{:.2}",
            self.busy.iter().sum::<f64>() / self.busy.len() as f64
        )
    }

    fn sort(&mut self) {
        self.ttft.sort_unstable();
        self.total.sort_unstable();
    }

    fn report_errors(&self, c: usize, path: &str) {
        for error in self.errors.iter().take(ERRORS_SHOWN) {
            eprintln!("streams C={c} {path}: error: {error}");
        }
    }
}

/// How long one stream takes at the upstream's pace.
fn stream_length() -> Duration {
    token_every() * TOKENS as u32
}

/// C clients streaming back to back, so C streams are open at every moment. Their first
/// requests are spread over one stream's length, so requests arrive steadily. Requests sent
/// during the warm-up (one stream's length, plus a second) are not counted, nor any sent
/// after `window`.
async fn steady(target: &Arc<Target>, c: usize, window: Duration) -> Streams {
    let start = Instant::now();
    let counted_from = start + stream_length() + Duration::from_secs(1);
    let counted_until = counted_from + window;
    let clients: Vec<JoinHandle<Streams>> = (0..c)
        .map(|i| {
            let target = target.clone();
            let first = start + stream_length().mul_f64(i as f64 / c as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(first).await;
                let mut streams = Streams::default();
                loop {
                    let sent = Instant::now();
                    if sent >= counted_until {
                        return streams;
                    }
                    let result = one_stream(&target).await;
                    if sent < counted_from {
                        continue;
                    }
                    match result {
                        Ok(sample) => {
                            streams.ttft.push(sample.ttft);
                            streams.total.push(sample.total);
                        }
                        Err(error) => streams.errors.push(error),
                    }
                }
            })
        })
        .collect();
    let mut streams = Streams::default();
    tokio::time::sleep_until(counted_from).await;
    let busy_from = machine_busy_secs();
    tokio::time::sleep_until(counted_until).await;
    if let (Some(from), Some(until)) = (busy_from, machine_busy_secs()) {
        streams.busy.push((until - from) / window.as_secs_f64());
    }
    for client in clients {
        match client.await {
            Ok(client) => streams.extend(client),
            Err(join) => streams.errors.push(format!("client task failed: {join}")),
        }
    }
    streams
}

/// One streaming request, read to `[DONE]`; checks every content chunk arrived.
async fn one_stream(target: &Target) -> Result<Sample, String> {
    let started = Instant::now();
    let res = target
        .client
        .post(&target.url)
        .header(AUTHORIZATION, target.auth.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(target.stream_body.clone())
        .timeout(STEP_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("sending: {e:#}"))?;
    let status = res.status();
    if status != StatusCode::OK {
        let body = res.text().await.unwrap_or_default();
        return Err(format!("status {status}: {body}"));
    }
    let mut chunks = res.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut ttft = None;
    let mut tokens = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| format!("reading the stream: {e:#}"))?;
        let at = started.elapsed();
        buffer.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = find(&buffer[start..], b"\n\n") {
            let frame = &buffer[start..start + end];
            start += end + 2;
            let Some(data) = frame.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            if data == b"[DONE]" {
                if tokens != TOKENS {
                    return Err(format!("{tokens} content chunks of {TOKENS} arrived"));
                }
                let ttft = ttft.ok_or("no content chunk arrived")?;
                return Ok(Sample { ttft, total: at });
            }
            // The first content chunk is parsed; the rest, only counted.
            if ttft.is_none() {
                let chunk: Value = serde_json::from_slice(data)
                    .map_err(|e| format!("a chunk is not JSON ({e}): {data:?}"))?;
                if let Some(error) = chunk.get("error") {
                    return Err(format!("error chunk: {error}"));
                }
                let content = chunk["choices"][0]["delta"]["content"].as_str();
                if content.is_some_and(|c| !c.is_empty()) {
                    ttft = Some(at);
                    tokens += 1;
                }
            } else if find(data, b"\"content\":\"").is_some() {
                tokens += 1;
            } else if find(data, b"\"error\"").is_some() {
                return Err(format!("error chunk: {}", String::from_utf8_lossy(data)));
            }
        }
        buffer.drain(..start);
    }
    Err(format!(
        "the stream ended without [DONE] after {tokens} content chunks"
    ))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Every non-streaming request's latency over one load run, and the failures.
struct Load {
    latencies: Vec<Duration>,
    errors: Vec<String>,
    elapsed: Duration,
}

/// [`RPS_CLIENTS`] clients send non-streaming requests back to back for `duration`.
async fn request_load(target: &Arc<Target>, duration: Duration) -> Load {
    let started = Instant::now();
    let deadline = started + duration;
    let clients: Vec<_> = (0..RPS_CLIENTS)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match one_request(&target).await {
                        Ok(()) => latencies.push(sent.elapsed()),
                        Err(error) => errors.push(error),
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut load = Load {
        latencies: Vec::new(),
        errors: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for client in futures::future::join_all(clients).await {
        match client {
            Ok((latencies, errors)) => {
                load.latencies.extend(latencies);
                load.errors.extend(errors);
            }
            Err(join) => load.errors.push(format!("client task failed: {join}")),
        }
    }
    load.elapsed = started.elapsed();
    load.latencies.sort_unstable();
    load
}

/// One non-streaming completion, read whole.
async fn one_request(target: &Target) -> Result<(), String> {
    let res = target
        .client
        .post(&target.url)
        .header(AUTHORIZATION, target.auth.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(target.plain_body.clone())
        .timeout(STEP_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("sending: {e:#}"))?;
    let status = res.status();
    let body = res.bytes().await.map_err(|e| format!("reading: {e:#}"))?;
    if status != StatusCode::OK {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let completion: Value =
        serde_json::from_slice(&body).map_err(|e| format!("reply is not JSON: {e}"))?;
    if completion["choices"][0]["message"]["content"]
        .as_str()
        .is_none()
    {
        return Err(format!("reply has no content: {completion}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The fake upstream

/// The fake's replies, made once: every streamed completion sends the same bytes.
struct Canned {
    tokens: Vec<Bytes>,
    usage: Bytes,
    completion: Bytes,
}

impl Canned {
    fn new() -> Canned {
        let chunk = |delta: Value, finish: Value| {
            let chunk = json!({
                "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
                "model": UPSTREAM_MODEL,
                "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
            });
            Bytes::from(format!("data: {chunk}\n\n"))
        };
        let tokens = (0..TOKENS)
            .map(|i| {
                let content = format!("tok{i} ");
                let finish = if i + 1 == TOKENS {
                    json!("stop")
                } else {
                    Value::Null
                };
                if i == 0 {
                    chunk(json!({ "role": "assistant", "content": content }), finish)
                } else {
                    chunk(json!({ "content": content }), finish)
                }
            })
            .collect();
        let usage =
            json!({ "prompt_tokens": 4, "completion_tokens": TOKENS, "total_tokens": 4 + TOKENS });
        let usage_chunk = json!({
            "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
            "model": UPSTREAM_MODEL, "choices": [], "usage": usage,
        });
        let completion = json!({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": 0,
            "model": UPSTREAM_MODEL,
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": "Something." }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6 },
        });
        Canned {
            tokens,
            usage: Bytes::from(format!("data: {usage_chunk}\n\n")),
            completion: Bytes::from(completion.to_string()),
        }
    }
}

/// Serves the fake on 127.0.0.1:0 on the current runtime; returns its address.
async fn start_upstream() -> anyhow::Result<SocketAddr> {
    let canned = Arc::new(Canned::new());
    let app = Router::new()
        .route("/v1/chat/completions", post(fake_chat))
        .with_state(canned);
    serve_on_loopback("the fake upstream", app).await
}

/// Serves `app` on 127.0.0.1:0 (Nagle off) on the current runtime; returns its address.
async fn serve_on_loopback(name: &'static str, app: Router) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            eprintln!("{name} stopped: {err}");
        }
    });
    Ok(addr)
}

async fn fake_chat(
    axum::extract::State(canned): axum::extract::State<Arc<Canned>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if body["stream"].as_bool() != Some(true) {
        return (
            [(header::CONTENT_TYPE, "application/json")],
            canned.completion.clone(),
        )
            .into_response();
    }
    let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
    let chunks = async_stream::stream! {
        // Chunk i goes at i paces: the first at once (not through the timer, which rounds up
        // to its next millisecond), a late one as soon as possible.
        let mut pace = tokio::time::interval_at(Instant::now() + token_every(), token_every());
        pace.set_missed_tick_behavior(MissedTickBehavior::Burst);
        for (i, token) in canned.tokens.iter().enumerate() {
            if i > 0 {
                pace.tick().await;
            }
            yield Ok::<Bytes, Infallible>(token.clone());
        }
        if include_usage {
            yield Ok(canned.usage.clone());
        }
        yield Ok(Bytes::from_static(b"data: [DONE]\n\n"));
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(chunks))
        .expect("static headers are valid")
}

// ---------------------------------------------------------------------------------------------
// The bare relay

/// A proxy that does the least one can on Squadron's stack: the request's body and
/// `Authorization` go to the upstream with a reqwest client built as Squadron's is, and the
/// upstream's status and body bytes come back unread. Binds 127.0.0.1:0 on the current
/// runtime; returns its address.
async fn start_relay(upstream: SocketAddr) -> anyhow::Result<SocketAddr> {
    let relay = Arc::new(Relay {
        url: format!("http://{upstream}/v1/chat/completions"),
        client: Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .build()?,
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(relay_chat))
        .with_state(relay);
    serve_on_loopback("the bare relay", app).await
}

struct Relay {
    url: String,
    client: Client,
}

async fn relay_chat(
    axum::extract::State(relay): axum::extract::State<Arc<Relay>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let mut request = relay
        .client
        .post(&relay.url)
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(auth) = headers.get(AUTHORIZATION) {
        request = request.header(AUTHORIZATION, auth.clone());
    }
    match request.send().await {
        Ok(response) => {
            let mut reply = Response::builder().status(response.status());
            if let Some(kind) = response.headers().get(CONTENT_TYPE) {
                reply = reply.header(header::CONTENT_TYPE, kind.clone());
            }
            reply
                .body(Body::from_stream(response.bytes_stream()))
                .expect("headers copied from a response are valid")
        }
        Err(err) => (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// The server under test

/// The CPUs the server and the load (clients and upstream) are pinned to.
const SERVER_CPU: usize = 0;
const LOAD_CPU: usize = 1;

/// Pins process `pid` (all its threads) to `cpu` with `taskset`; warns if that fails.
fn pin(pid: &str, cpu: usize) {
    let pinned = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), pid])
        .stdout(std::process::Stdio::null())
        .status();
    if !pinned.is_ok_and(|s| s.success()) {
        eprintln!("warning: could not pin process {pid} to CPU {cpu} (is taskset installed?)");
    }
}

struct Server {
    addr: SocketAddr,
    admin: String,
    client: Client,
    running: Running,
    _db: Database,
}

/// Where the server runs.
enum Running {
    InProcess(InProcess),
    Process(tokio::process::Child),
}

impl Server {
    async fn start_in_process() -> anyhow::Result<Server> {
        let db = Database::fresh(&Backend::Sqlite).await?;
        let app = InProcess::start(common::config(db.dir.path(), &db.url)).await?;
        Ok(Server {
            addr: app.addr,
            admin: app.admin.clone(),
            client: Client::builder().tcp_nodelay(true).build()?,
            running: Running::InProcess(app),
            _db: db,
        })
    }

    /// The `squadron` binary on a free port, pinned to [`SERVER_CPU`]; its admin token is
    /// the one it prints on its first start.
    async fn start_process() -> anyhow::Result<Server> {
        use tokio::io::AsyncBufReadExt;
        let db = Database::fresh(&Backend::Sqlite).await?;
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_squadron"))
            .env("SQUADRON_BIND", addr.to_string())
            .env("SQUADRON_DATA_DIR", db.dir.path())
            .env("DATABASE_URL", &db.url)
            .env("SQUADRON_RATE_HEARTBEAT", "0")
            .env("SQUADRON_RATE_TASKS", "0")
            .env("SQUADRON_RATE_DEFAULT", "0")
            .env("SQUADRON_RATE_GATEWAY", "0")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting the squadron binary")?;
        if let Some(pid) = child.id() {
            pin(&pid.to_string(), SERVER_CPU);
        }
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let admin = timeout(STEP_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(token) = line.split_whitespace().find(|w| w.starts_with("pk_")) {
                    return Ok(token.to_owned());
                }
            }
            anyhow::Ok(String::new())
        })
        .await
        .context("the server printed no admin token in time")??;
        ensure!(
            !admin.is_empty(),
            "the server exited before printing its admin token"
        );
        // Keep reading its stdout, so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let server = Server {
            addr,
            admin,
            client: Client::builder().tcp_nodelay(true).build()?,
            running: Running::Process(child),
            _db: db,
        };
        let ready = async {
            loop {
                let res = server.client.get(server.url("/readyz")).send().await;
                if res.is_ok_and(|r| r.status().is_success()) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        timeout(STEP_TIMEOUT, ready)
            .await
            .context("the server did not become ready")?;
        Ok(server)
    }

    /// The server's resident memory, in KiB (in process: the whole program's).
    fn rss_kib(&self) -> u64 {
        match &self.running {
            Running::InProcess(_) => rss_kib(),
            Running::Process(child) => child.id().map_or(0, |pid| rss_kib_of(&pid.to_string())),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Provider `fake` at the upstream, and model `bench` for its `fake-model`.
    async fn register(&self, upstream: SocketAddr) -> anyhow::Result<()> {
        let provider = json!({
            "name": "fake", "base_url": format!("http://{upstream}/v1"), "api_key": UPSTREAM_KEY,
        });
        let model = json!({ "name": SQUADRON_MODEL, "provider": "fake", "model": UPSTREAM_MODEL });
        for (path, body) in [
            ("/v1/core/add/provider", provider),
            ("/v1/core/add/model", model),
        ] {
            let res = self
                .client
                .post(self.url(path))
                .bearer_auth(&self.admin)
                .json(&body)
                .timeout(STEP_TIMEOUT)
                .send()
                .await
                .with_context(|| format!("POST {path}"))?;
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            ensure!(status.is_success(), "POST {path}: {status}: {text}");
        }
        Ok(())
    }

    /// Shuts the server down: gracefully in process, by SIGKILL as a process.
    async fn stop(self) -> anyhow::Result<()> {
        let Server {
            client, running, ..
        } = self;
        drop(client);
        match running {
            Running::InProcess(app) => app.stop(STEP_TIMEOUT).await?,
            Running::Process(mut child) => child.kill().await.context("stopping the server")?,
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring and printing

/// Milliseconds, to the microsecond.
fn ms(duration: Option<Duration>) -> String {
    duration.map_or("-".into(), |d| format!("{:.3}", d.as_secs_f64() * 1000.0))
}

/// `through`'s percentile minus `direct`'s, in milliseconds (negative when faster).
fn added(through: &[Duration], direct: &[Duration], p: f64) -> String {
    match (percentile(through, p), percentile(direct, p)) {
        (Some(t), Some(d)) => format!("{:+.3}", (t.as_secs_f64() - d.as_secs_f64()) * 1000.0),
        _ => "-".into(),
    }
}
