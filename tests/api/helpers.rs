//! `spawn_app()`: a server started in-process on 127.0.0.1:0 with a fresh database (SQLite by
//! default, PostgreSQL when `TEST_DATABASE_URL` is set), plus typed helpers to talk to it over
//! real HTTP, WebSocket and SSE. Logs are quiet unless `TEST_LOG` is set.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::{Method, RequestBuilder, Response};
use sea_orm::ConnectionTrait;
use serde_json::Value;
use squadron::config::Config;
use squadron::startup;
use squadron_actors::store::tokens::{Role, TokenFormat};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

#[path = "../support/database_url.rs"]
mod database_url;
use database_url::with_database;

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// A squad after setup: its id, its key, each agent's own key by name, and the setup reply.
pub struct SetUp {
    pub squad_id: String,
    pub squad_key: String,
    pub agent_keys: std::collections::HashMap<String, String>,
    pub setup: Value,
}

impl SetUp {
    pub fn key(&self, agent: &str) -> &str {
        &self.agent_keys[agent]
    }
}

/// A database for one test; the SQLite file lives as long as this does.
pub struct TestDb {
    pub url: String,
    _dir: tempfile::TempDir,
}

/// Whether the suite runs on PostgreSQL (`TEST_DATABASE_URL` set) rather than SQLite.
pub fn on_postgres() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty())
}

impl TestDb {
    pub async fn fresh() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match std::env::var("TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                let name = format!("squadron_test_{}", Uuid::new_v4().simple());
                let admin = sea_orm::Database::connect(&admin_url)
                    .await
                    .expect("connect to TEST_DATABASE_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                with_database(&admin_url, &name)
            }
            _ => format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display()),
        };
        TestDb { url, _dir: dir }
    }
}

/// A TCP proxy in front of the test's PostgreSQL that a test can cut and restore, to see how
/// the server behaves when its database goes away.
pub struct DbProxy {
    pub url: String,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl DbProxy {
    /// Proxies the database of `url` (`postgres://user@host:port/db`).
    pub async fn start(url: &str) -> DbProxy {
        use std::sync::atomic::Ordering;
        let rest = url.split_once('@').expect("user@host in the URL").1;
        let upstream = rest.split('/').next().unwrap().to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url.replace(&upstream, &listener.local_addr().unwrap().to_string());
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let links = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let (open, links) = (open.clone(), links.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        continue; // dropped: the connection is refused in effect
                    }
                    let upstream = upstream.clone();
                    links.lock().unwrap().push(tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    }));
                }
            }
        });
        DbProxy {
            url,
            open,
            links,
            accept,
        }
    }

    /// Breaks every open connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// The admin token of organization `default`, made on the first start.
    pub admin: String,
    pub config: Config,
    pub client: reqwest::Client,
    db: Option<TestDb>,
    stop: Option<oneshot::Sender<()>>,
    serving: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// A server whose configuration `tweak` may change first.
pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::fresh().await;
    start(db, None, tweak).await
}

fn test_config(db: &TestDb) -> Config {
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.database_url = Some(db.url.clone());
    // Local state (such as the generated secret key) goes beside the test's database.
    config.data_dir = db._dir.path().to_owned();
    // Limits are tested on their own; other tests should never meet them.
    config.rate_heartbeat = 100_000;
    config.rate_tasks = 100_000;
    config.rate_default = 100_000;
    config.rate_gateway = 100_000;
    config.auth_fail_burst = 100_000;
    // Usage is flushed only at shutdown unless a test asks otherwise.
    config.usage_flush_ms = 3_600_000;
    config
}

/// Starts a server on `db`. `admin` carries the admin token across a restart.
pub async fn start(db: TestDb, admin: Option<String>, tweak: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        squadron::telemetry::init(squadron::config::LogFormat::Text);
    }
    let mut config = test_config(&db);
    tweak(&mut config);
    let server = startup::build(config.clone()).await.expect("server builds");
    let addr = server.local_addr();
    let admin = server
        .admin_token
        .clone()
        .or(admin)
        .expect("an admin token");
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        admin,
        config,
        client: client(),
        db: Some(db),
        stop: Some(stop),
        serving: Some(serving),
    }
}

/// The tests' HTTP client (rustls's crypto provider installed first, as the server does).
pub fn client() -> reqwest::Client {
    squadron_actors::tls::install();
    reqwest::Client::new()
}

impl TestApp {
    /// The helpers, for a server that runs elsewhere (its own process) at `addr`.
    pub fn remote(addr: SocketAddr, admin: &str) -> TestApp {
        TestApp {
            addr,
            admin: admin.to_owned(),
            config: Config::defaults(),
            client: client(),
            db: None,
            stop: None,
            serving: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A request with no credentials.
    pub fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request as `token`.
    pub fn as_token(&self, token: &str, method: Method, path: &str) -> RequestBuilder {
        self.anon(method, path).bearer_auth(token)
    }

    /// A request as the default organization's admin.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.as_token(&self.admin, method, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.req(Method::POST, path)
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// A token for organization `org` (created if needed), made the way the CLI makes one.
    pub async fn org_token(&self, org: &str, role: Role) -> String {
        startup::create_token(&self.config, org, "test", role, TokenFormat::Pk)
            .await
            .expect("token created")
    }

    /// Creates a squad with agents named `agents` and returns its JSON.
    pub async fn squad(&self, name: &str, agents: &[&str]) -> Value {
        self.squad_as(&self.admin, name, agents).await
    }

    pub async fn squad_as(&self, token: &str, name: &str, agents: &[&str]) -> Value {
        let agents: Vec<Value> = agents
            .iter()
            .map(|a| serde_json::json!({ "name": a, "role": "Tester" }))
            .collect();
        let res = self
            .as_token(token, Method::POST, "/api/squads")
            .json(&serde_json::json!({ "name": name, "agents": agents }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "squad created");
        body(res).await["data"].clone()
    }

    /// Adds an agent through the squad's actor; returns the agent's JSON.
    pub async fn add_agent(&self, squad_id: &str, name: &str) -> Value {
        let res = self
            .post(
                &format!("/api/squads/{squad_id}/agents"),
                serde_json::json!({ "name": name }),
            )
            .await;
        assert_eq!(res.status(), 201, "agent added");
        body(res).await["data"].clone()
    }

    /// Creates a squad from `body` and redeems its setup token: its keys, ready to use.
    pub async fn set_up(&self, body: Value) -> SetUp {
        let res = self.post("/api/squads", body).await;
        assert_eq!(res.status(), 201, "squad created");
        let squad = crate::helpers::body(res).await["data"].clone();
        let id = squad["id"].as_str().unwrap().to_owned();
        let res = self
            .anon(Method::GET, &format!("/api/setup/{id}"))
            .header("x-setup-token", squad["setup_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "setup redeemed");
        let setup = crate::helpers::body(res).await["data"].clone();
        let agent_keys = setup["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_owned(),
                    a["api_key"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        SetUp {
            squad_id: id,
            squad_key: setup["api_key"].as_str().unwrap().to_owned(),
            agent_keys,
            setup,
        }
    }

    /// A squad of agents named `agents`, set up.
    pub async fn set_up_squad(&self, agents: &[&str]) -> SetUp {
        let agents: Vec<Value> = agents
            .iter()
            .map(|a| serde_json::json!({ "name": a, "role": "Tester" }))
            .collect();
        self.set_up(serde_json::json!({ "name": "Squad", "agents": agents }))
            .await
    }

    /// A request as `agent`, with `key` (a squad key or the agent's own).
    pub fn as_agent(&self, key: &str, agent: &str, method: Method, path: &str) -> RequestBuilder {
        self.as_token(key, method, path)
            .header("x-agent-name", agent)
    }

    /// A request as a person of the default organization, on `squad`'s routes.
    pub fn as_human(&self, squad_id: &str, method: Method, path: &str) -> RequestBuilder {
        self.req(method, path).header("x-squad-id", squad_id)
    }

    /// The value of a Prometheus sample whose line starts with `series` (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics_text().await;
        text.lines()
            .filter(|l| l.starts_with(series))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics_text(&self) -> String {
        let res = self.anon(Method::GET, "/metrics").send().await.unwrap();
        res.text().await.unwrap()
    }

    /// Graceful shutdown; returns the database so a test can start again on it.
    pub async fn stop(mut self) -> (TestDb, String) {
        self.stop.take().unwrap().send(()).ok();
        let serving = self.serving.take().unwrap();
        tokio::time::timeout(WAIT, serving)
            .await
            .expect("server stops in time")
            .expect("server task")
            .expect("server ran cleanly");
        (self.db.take().unwrap(), self.admin.clone())
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/api/live{}", self.addr, query)
    }

    /// A WebSocket to `/api/live` authenticated with `token` in the header.
    pub async fn ws(&self, token: &str) -> Ws {
        let mut request = self.ws_url("").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("ws connects");
        Ws(socket)
    }

    /// An SSE stream of the squad's events, resuming after `last_event_id` if given.
    pub async fn sse(&self, token: &str, squad_id: &str, last_event_id: Option<i64>) -> Sse {
        let mut req = self
            .as_token(token, Method::GET, "/api/squad/events")
            .header("x-squad-id", squad_id);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "SSE stream opens");
        Sse {
            stream: Box::pin(res.bytes_stream()),
            buffer: String::new(),
        }
    }
}

pub async fn body(res: Response) -> Value {
    let text = res.text().await.expect("body read");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body expected, got {text:?}"))
}

pub struct Ws(pub WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Ws {
    pub async fn send(&mut self, value: Value) {
        self.0
            .send(Message::Text(value.to_string().into()))
            .await
            .expect("ws send");
    }

    /// The next JSON message, failing the test after [`WAIT`].
    pub async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.0.next())
                .await
                .expect("a WebSocket message in time")
                .expect("socket open")
                .expect("no socket error");
            if let Message::Text(text) = msg {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    /// Subscribes and returns the `subscribed` acknowledgement.
    pub async fn subscribe(&mut self, squad_id: &str, since: Option<i64>) -> Value {
        self.send(serde_json::json!({ "op": "subscribe", "squad_id": squad_id, "since": since }))
            .await;
        self.next().await
    }

    /// The sequence numbers of the next `n` events.
    pub async fn seqs(&mut self, n: usize) -> Vec<i64> {
        let mut seqs = Vec::with_capacity(n);
        while seqs.len() < n {
            let msg = self.next().await;
            assert_eq!(msg["type"], "event", "expected an event, got {msg}");
            seqs.push(msg["seq"].as_i64().unwrap());
        }
        seqs
    }
}

type ByteStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// A minimal SSE reader: enough of the format for our own stream.
pub struct Sse {
    stream: ByteStream,
    buffer: String,
}

#[derive(Debug, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl Sse {
    pub fn from_response(res: Response) -> Sse {
        Sse {
            stream: Box::pin(res.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event (comments such as keep-alives are skipped), failing after [`WAIT`].
    pub async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent::default();
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("data:") {
                        event.data.push_str(v.trim_start());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.event = Some(v.trim().to_owned());
                    }
                }
                if !event.data.is_empty() {
                    return event;
                }
                continue;
            }
            let chunk = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("an SSE event in time")
                .expect("stream open")
                .expect("no stream error");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// Polls `observe` until it reports the work done, for as long as the work moves: it fails
/// only when what `observe` sees has not changed for [`WAIT`] (a stall), so a busy machine
/// makes the test slower, not red. Ten times [`WAIT`] bound it in all.
pub async fn while_progressing<F, Fut, P>(what: &str, mut observe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (bool, P)>,
    P: PartialEq + std::fmt::Debug,
{
    let started = tokio::time::Instant::now();
    let (mut done, mut seen) = observe().await;
    let mut moved = started;
    while !done {
        let now = tokio::time::Instant::now();
        assert!(
            now - moved < WAIT && now - started < 10 * WAIT,
            "{what}: no progress for {:?} (at {seen:?})",
            now - moved
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
        let (now_done, now_seen) = observe().await;
        if now_seen != seen {
            moved = tokio::time::Instant::now();
        }
        (done, seen) = (now_done, now_seen);
    }
}

/// Polls `check` until it holds, failing after [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
