//! Limits of the live layer and of the HTTP edge against clients that hold on: sockets that
//! never read keep the server's memory bounded and are closed; a credential holds only so
//! many streams; a revoked credential's streams end and its tickets are void; half-sent
//! requests are not kept open forever.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{body, eventually, spawn_app, spawn_with, TestApp, TestDb, Ws};

/// What a WebSocket handshake came back with: 101, or the refusal's status and body.
async fn ws_handshake(url: &str) -> (u16, Option<Value>) {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => (101, None),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => (
            res.status().as_u16(),
            res.body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok()),
        ),
        Err(other) => panic!("unexpected handshake error: {other}"),
    }
}

async fn ws_with(app: &TestApp, token: &str) -> Result<Ws, (u16, Option<Value>)> {
    let mut request = app.ws_url("").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(Ws(socket)),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err((
            res.status().as_u16(),
            res.body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok()),
        )),
        Err(other) => panic!("unexpected handshake error: {other}"),
    }
}

/// A new organization token of the default organization: its id and secret.
async fn new_token(app: &TestApp, name: &str) -> (String, String) {
    let res = app
        .post("/api/v1/tokens", json!({ "name": name, "role": "admin" }))
        .await;
    assert_eq!(res.status(), 201);
    let token = body(res).await["data"].clone();
    (
        token["id"].as_str().unwrap().to_owned(),
        token["token"].as_str().unwrap().to_owned(),
    )
}

/// Reads until the server ends the socket; returns how long that took.
async fn ws_ends(ws: &mut Ws, within: Duration) -> Duration {
    let started = Instant::now();
    tokio::time::timeout(within, async {
        loop {
            match ws.0.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the WebSocket was not ended within {within:?}"));
    started.elapsed()
}

/// Reads until the server ends the SSE response; returns how long that took.
async fn sse_ends(res: reqwest::Response, within: Duration) -> Duration {
    let started = Instant::now();
    let mut stream = res.bytes_stream();
    tokio::time::timeout(within, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await
    .unwrap_or_else(|_| panic!("the SSE stream was not ended within {within:?}"));
    started.elapsed()
}

async fn open_sse(app: &TestApp, token: &str, squad_id: &str) -> reqwest::Response {
    app.as_token(token, Method::GET, "/api/squad/events")
        .header("x-squad-id", squad_id)
        .send()
        .await
        .unwrap()
}

async fn ticket(app: &TestApp, token: &str) -> String {
    let res = app
        .as_token(token, Method::POST, "/api/live/tickets")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    body(res).await["data"]["ticket"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_revoked_or_deleted_token_ends_its_streams_and_voids_its_tickets() {
    let app = spawn_app().await;
    let squad = app.squad("Watched", &[]).await;
    let id = squad["id"].as_str().unwrap();

    for how in ["revoke", "delete"] {
        let (token_id, token) = new_token(&app, how).await;
        let mut ws = ws_with(&app, &token).await.expect("the WebSocket opens");
        assert_eq!(ws.subscribe(id, None).await["type"], "subscribed");
        let sse = open_sse(&app, &token, id).await;
        assert_eq!(sse.status(), 200);
        let unused = ticket(&app, &token).await;

        let res = match how {
            "revoke" => {
                app.post(&format!("/api/v1/tokens/{token_id}/revoke"), json!({}))
                    .await
            }
            _ => app
                .req(Method::DELETE, &format!("/api/v1/tokens/{token_id}"))
                .send()
                .await
                .unwrap(),
        };
        assert!(res.status().is_success(), "{how}: {}", res.status());

        let (ws_took, sse_took) = tokio::join!(
            ws_ends(&mut ws, Duration::from_secs(1)),
            sse_ends(sse, Duration::from_secs(1)),
        );
        eprintln!("{how}: WebSocket ended after {ws_took:?}, SSE after {sse_took:?}");
        assert_eq!(
            ws_handshake(&app.ws_url(&format!("?ticket={unused}")))
                .await
                .0,
            401,
            "{how}: a ticket issued before is void"
        );
    }

    // Deleting an agent ends the streams of its own key.
    let set_up = app.set_up_squad(&["Writer"]).await;
    let mut ws = ws_with(&app, set_up.key("Writer")).await.unwrap();
    assert_eq!(
        ws.subscribe(&set_up.squad_id, None).await["type"],
        "subscribed"
    );
    let agent_id = set_up.setup["agents"][0]["id"]
        .as_str()
        .expect("the agent's id in the setup reply")
        .to_owned();
    let res = app
        .req(
            Method::DELETE,
            &format!("/api/squads/{}/agents/{agent_id}", set_up.squad_id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    ws_ends(&mut ws, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_credential_holds_only_so_many_live_connections() {
    let app = spawn_with(|c| c.live_max_connections_per_credential = 3).await;
    let squad = app.squad("Watched", &[]).await;
    let id = squad["id"].as_str().unwrap();

    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(ws_with(&app, &app.admin).await.expect("under the cap"));
    }
    let sse = open_sse(&app, &app.admin, id).await;
    assert_eq!(sse.status(), 200, "SSE counts too: the third");

    let (status, refusal) = ws_with(&app, &app.admin).await.err().expect("refused");
    assert_eq!(status, 429);
    assert_eq!(refusal.expect("a JSON body")["code"], "RATE_LIMITED");
    let res = open_sse(&app, &app.admin, id).await;
    assert_eq!(res.status(), 429);
    assert_eq!(body(res).await["code"], "RATE_LIMITED");
    // A ticket is the same credential.
    let url = app.ws_url(&format!("?ticket={}", ticket(&app, &app.admin).await));
    assert_eq!(ws_handshake(&url).await.0, 429);

    // Another credential has its own share.
    let (_, other) = new_token(&app, "other").await;
    let mut others = ws_with(&app, &other).await.expect("another credential");
    assert_eq!(others.subscribe(id, None).await["type"], "subscribed");

    // Closing one makes room.
    drop(held.pop());
    let deadline = Instant::now() + crate::helpers::WAIT;
    while ws_with(&app, &app.admin).await.is_err() {
        assert!(Instant::now() < deadline, "a closed socket frees its place");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    drop(sse);
}

/// Whether the server closes `stream` within `within` (EOF or reset), without us sending more.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // a response (408 or 400) may come before the close
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn half_sent_requests_are_closed_after_the_read_timeouts() {
    let app = spawn_with(|c| {
        c.header_read_timeout_secs = 1;
        c.body_read_timeout_secs = 1;
    })
    .await;
    let started = Instant::now();
    // Half a head; nothing at all; a whole request then half of the next one.
    let mut half = TcpStream::connect(app.addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let mut kept_alive = TcpStream::connect(app.addr).await.unwrap();
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    kept_alive.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    // A body announced as 100 bytes of which 10 come.
    let mut slow_body = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/tokens HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":\"",
        app.admin
    );
    slow_body.write_all(head.as_bytes()).await.unwrap();

    let within = Duration::from_secs(5);
    assert!(closed_within(&mut half, within).await, "half a head");
    assert!(closed_within(&mut silent, within).await, "nothing sent");
    assert!(
        closed_within(&mut kept_alive, within).await,
        "half of a second request"
    );
    assert!(closed_within(&mut slow_body, within).await, "half a body");
    eprintln!("all four closed after {:?}", started.elapsed());
    // The server itself is fine.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

/// The squadron binary as its own process, for an honest measure of its memory.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// The process's resident memory, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kb * 1024
}

const STUCK: usize = 2_000;
const MIB: f64 = 1024.0 * 1024.0;

/// A WebSocket with a tiny receive window that subscribes to `squad_id`, reads its
/// `subscribed` reply, and never reads again.
async fn stuck_socket(
    addr: std::net::SocketAddr,
    token: &str,
    squad_id: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut request = format!("ws://{addr}/api/live")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    // Small buffers on our side too, so the test's own memory stays small.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (socket, _) = tokio_tungstenite::client_async_with_config(
        request,
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
        Some(config),
    )
    .await
    .expect("the stuck socket's handshake");
    let mut ws = Ws(socket);
    assert_eq!(ws.subscribe(squad_id, None).await["type"], "subscribed");
    ws.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_never_read_keep_memory_bounded_and_a_reader_gets_every_event() {
    tokio::time::timeout(
        Duration::from_secs(240),
        stuck_sockets_keep_memory_bounded(),
    )
    .await
    .expect("the stuck-socket test finishes in time");
}

async fn stuck_sockets_keep_memory_bounded() {
    // Both ends of 2,000 sockets live in this test's processes.
    rlimit::increase_nofile_limit(4 * STUCK as u64 + 1_000).expect("raise the fd limit");
    let db = TestDb::fresh().await;
    let data_dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let created = Command::new(env!("CARGO_BIN_EXE_squadron"))
        .args([
            "token",
            "create",
            "--org",
            "default",
            "--name",
            "memory test",
        ])
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(["--database-url", &db.url])
        .output()
        .expect("squadron token create");
    assert!(created.status.success());
    let admin = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let server = Process(
        Command::new(env!("CARGO_BIN_EXE_squadron"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--database-url", &db.url])
            .args(["--rate-default", "0", "--rate-tasks", "0"])
            .args(["--live-max-connections-per-credential", "0"])
            // Quicker than the default 10 s, so the test sees the stuck sockets closed.
            .args(["--live-send-timeout-secs", "3"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("start the squadron binary"),
    );
    let pid = server.0.id();
    let app = TestApp::remote(([127, 0, 0, 1], port).into(), &admin);
    eventually("the server is ready", || async {
        let res = app.anon(Method::GET, "/readyz").send().await;
        res.is_ok_and(|r| r.status() == 200)
    })
    .await;
    let squad = app.squad("Busy", &[]).await;
    let id = squad["id"].as_str().unwrap().to_owned();
    let flood = |n: u32| {
        let (app, id) = (&app, &id);
        async move {
            // A 503 says "try again" (on a busy machine the squad may not answer in time);
            // the reader's check counts whatever landed, so trying again is safe.
            for _ in 0..5 {
                let res = app
                    .post(
                        &format!("/api/_test/squads/{id}/flood"),
                        json!({ "n": n, "filler": 2000 }),
                    )
                    .await;
                if res.status() == 503 {
                    eprintln!("flood: 503 {}; trying again", res.text().await.unwrap());
                    continue;
                }
                assert_eq!(res.status(), 200, "the flood hook (built with test-hooks)");
                return body(res).await["data"].as_i64().unwrap();
            }
            panic!("the flood hook kept answering 503");
        }
    };
    // Warm up: an event went out and a socket came and went.
    flood(10).await;
    drop(app.ws(&admin).await);
    let idle = rss(pid);

    // A normal subscriber, reading everything as it comes (resyncing if it must).
    let mut reader = app.ws(&admin).await;
    let first = reader.subscribe(&id, None).await["last_seq"]
        .as_i64()
        .unwrap();
    let (last_tx, mut last_rx) = tokio::sync::watch::channel(i64::MAX);
    let reading = tokio::spawn({
        let id = id.clone();
        async move {
            let mut seen = BTreeSet::new();
            loop {
                let target = *last_rx.borrow_and_update();
                if seen.last().is_some_and(|&s| s >= target) {
                    return (first, seen);
                }
                let msg = tokio::select! {
                    msg = reader.next() => msg,
                    _ = last_rx.changed() => continue,
                };
                match msg["type"].as_str().unwrap() {
                    "event" => {
                        seen.insert(msg["seq"].as_i64().unwrap());
                    }
                    "resync" => {
                        let since = msg["last_seq"].as_i64().unwrap();
                        reader
                            .send(json!({ "op": "subscribe", "squad_id": id, "since": since }))
                            .await;
                    }
                    _ => {}
                }
            }
        }
    });

    let stuck: Vec<_> = futures::stream::iter(0..STUCK)
        .map(|_| stuck_socket(app.addr, &admin, &id))
        .buffer_unordered(50)
        .collect()
        .await;
    let with_sockets = rss(pid);

    // ~12,000 events of ~2 KB, while the RSS is watched.
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = tokio::spawn({
        let sampling = sampling.clone();
        async move {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss(pid));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        }
    });
    let mut last = 0;
    for _ in 0..120 {
        last = flood(100).await;
    }
    last_tx.send(last).unwrap();
    let (first, seen) = tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .expect("the reader gets every event in time")
        .unwrap();
    let missing: Vec<i64> = (first + 1..=last).filter(|s| !seen.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "the reader lost {} events, from {:?}",
        missing.len(),
        missing.first()
    );

    // The stuck ones are closed (the reader's socket went with its task).
    eventually("the sockets that never read are closed", || async {
        app.metric("squadron_live_connections{transport=\"ws\"}")
            .await
            .eq(&0.0)
    })
    .await;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.await.unwrap();
    drop(stuck);
    let after = rss(pid);
    eprintln!(
        "RSS: idle {:.0} MiB, {STUCK} sockets open {:.0} MiB, peak while {} events went out {:.0} MiB, after {:.0} MiB",
        idle as f64 / MIB,
        with_sockets as f64 / MIB,
        last - first,
        peak as f64 / MIB,
        after as f64 / MIB,
    );
    assert!(
        (peak.saturating_sub(idle) as f64) < 200.0 * MIB,
        "peak {:.0} MiB is more than 200 MiB above idle {:.0} MiB",
        peak as f64 / MIB,
        idle as f64 / MIB
    );
}
