//! Under load: squads writing at once never see a 5xx (no "database is locked", no duplicate
//! sequence numbers), and a server killed and restarted under that load runs exactly one
//! actor per squad and per agent in use.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::helpers::{body, eventually, on_postgres, spawn_app, SetUp, TestApp, TestDb};

const SQUADS: usize = 10;
const AGENTS: usize = 3;

/// What the writers got back: responses by status, and requests that got no response.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, usize>,
    unanswered: usize,
}

impl Tally {
    fn server_errors(&self) -> usize {
        self.statuses.range(500..).map(|(_, n)| n).sum()
    }

    fn ok(&self) -> usize {
        self.statuses.range(200..300).map(|(_, n)| n).sum()
    }
}

/// The writers' shared tally and their stop flag.
#[derive(Clone, Default)]
struct Load {
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
}

impl Load {
    fn ok(&self) -> usize {
        self.tally.lock().unwrap().ok()
    }

    /// Waits until `n` more writes than now have succeeded: progress, not wall time.
    async fn progress(&self, n: usize, within: Duration) {
        let target = self.ok() + n;
        let deadline = Instant::now() + within;
        while self.ok() < target {
            assert!(
                Instant::now() < deadline,
                "{n} writes within {within:?}: {:?}",
                self.tally.lock().unwrap().statuses
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One writer per agent of `squads`: each creates a task, comments on it and writes a
/// document, round after round, until `rounds` are done or the load is stopped.
async fn write_load(base: String, squads: Vec<SetUp>, rounds: usize, load: Load) -> Tally {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut writers = Vec::new();
    for squad in &squads {
        for (name, key) in &squad.agent_keys {
            let (base, client, load) = (base.clone(), client.clone(), load.clone());
            let (name, key) = (name.clone(), key.clone());
            writers.push(tokio::spawn(async move {
                let send = |path: String, body: serde_json::Value| {
                    let res = client
                        .post(format!("{base}{path}"))
                        .bearer_auth(&key)
                        .header("x-agent-name", &name)
                        .json(&body)
                        .send();
                    let load = load.clone();
                    async move {
                        let res = res.await;
                        let mut t = load.tally.lock().unwrap();
                        match &res {
                            Ok(r) => *t.statuses.entry(r.status().as_u16()).or_default() += 1,
                            Err(_) => t.unanswered += 1,
                        }
                        res.ok().filter(|r| r.status().is_success())
                    }
                };
                for round in 0..rounds {
                    if load.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let title = format!("{name} task {round}");
                    let Some(res) = send("/api/tasks".into(), json!({ "title": title })).await
                    else {
                        continue;
                    };
                    let task = body(res).await["data"]["id"].as_str().unwrap().to_owned();
                    let comment = json!({ "content": format!("progress on {title}") });
                    send(format!("/api/tasks/{task}/comments"), comment).await;
                    let doc = json!({ "title": title, "content": "notes", "type": "draft", "task_id": task });
                    send("/api/documents".into(), doc).await;
                }
            }));
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    std::mem::take(&mut *load.tally.lock().unwrap())
}

async fn set_up_squads(app: &TestApp) -> Vec<SetUp> {
    let mut squads = Vec::new();
    for s in 0..SQUADS {
        let agents: Vec<_> = (0..AGENTS)
            .map(|a| json!({ "name": format!("Agent{a}"), "role": "Writer" }))
            .collect();
        squads.push(
            app.set_up(json!({ "name": format!("Squad {s}"), "agents": agents }))
                .await,
        );
    }
    squads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_squads_of_three_agents_writing_at_once_never_get_a_5xx() {
    let app = spawn_app().await;
    let squads = set_up_squads(&app).await;
    let tally = write_load(app.url(""), squads, 10, Load::default()).await;
    assert_eq!(tally.unanswered, 0, "every request was answered");
    assert_eq!(
        tally.server_errors(),
        0,
        "no 5xx under concurrent writes: {:?}",
        tally.statuses
    );
    assert_eq!(tally.ok(), SQUADS * AGENTS * 10 * 3, "{:?}", tally.statuses);
}

/// The squadron binary serving `db` on `port`, as its own process.
struct Process {
    child: Child,
}

impl Process {
    fn start(db: &TestDb, data_dir: &std::path::Path, port: u16) -> Process {
        let child = Command::new(env!("CARGO_BIN_EXE_squadron"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--database-url", &db.url])
            .args([
                "--rate-tasks",
                "0",
                "--rate-default",
                "0",
                "--rate-heartbeat",
                "0",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("start the squadron binary");
        Process { child }
    }

    async fn ready(&self, app: &TestApp) {
        eventually("the server is ready", || async {
            let res = app.anon(Method::GET, "/readyz").send().await;
            res.is_ok_and(|r| r.status() == 200)
        })
        .await;
    }

    fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_under_write_load_leaves_one_actor_per_squad_and_agent() {
    let db = TestDb::fresh().await;
    let data_dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let token = Command::new(env!("CARGO_BIN_EXE_squadron"))
        .args(["token", "create", "--org", "default", "--name", "load test"])
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(["--database-url", &db.url])
        .output()
        .expect("squadron token create");
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let admin = String::from_utf8(token.stdout).unwrap().trim().to_owned();

    let mut server = Process::start(&db, data_dir.path(), port);
    let app = TestApp::remote(([127, 0, 0, 1], port).into(), &admin);
    server.ready(&app).await;
    let squads = set_up_squads(&app).await;

    let load = Load::default();
    let writers = tokio::spawn(write_load(base.clone(), squads, 10_000, load.clone()));
    // Every agent writes a few times, then the server is killed mid-write and started again
    // on the same database while the writers keep going; they stop once every agent could
    // have written a few times more.
    let enough = SQUADS * AGENTS * 6;
    load.progress(enough, Duration::from_secs(60)).await;
    server.kill();
    let server = Process::start(&db, data_dir.path(), port);
    server.ready(&app).await;
    load.progress(enough, Duration::from_secs(60)).await;
    load.stop.store(true, Ordering::Relaxed);
    let tally = tokio::time::timeout(Duration::from_secs(60), writers)
        .await
        .expect("the writers finish")
        .unwrap();

    assert_eq!(
        app.metric("squadron_actors_alive{kind=\"squad\"}").await,
        SQUADS as f64,
        "one actor per squad"
    );
    assert_eq!(
        app.metric("squadron_actors_alive{kind=\"agent\"}").await,
        (SQUADS * AGENTS) as f64,
        "one actor per agent"
    );
    assert_eq!(
        tally.server_errors(),
        0,
        "no 5xx across the restart: {:?}",
        tally.statuses
    );
}

/// A write PostgreSQL gives up on (a serialization failure, SQLSTATE 40001, raised by the
/// database itself through a test hook) is run again, and lands once; one that keeps failing
/// is a 503 the client may retry, with nothing half-stored and no sequence number used up.
#[tokio::test]
async fn a_write_postgres_cannot_serialize_is_run_again_not_failed() {
    if !on_postgres() {
        eprintln!("PostgreSQL only: on SQLite a writer queues for the lock instead");
        return;
    }
    let app = spawn_app().await;
    let squad = app.set_up_squad(&["Ada"]).await;
    let hook = |what: &str| format!("/api/_test/squads/{}/{what}", squad.squad_id);
    let (app, hook) = (&app, &hook);
    let fail_commits = |n: u32| async move {
        let res = app.post(&hook("fail-commits"), json!({ "n": n })).await;
        assert_eq!(res.status(), 202);
    };
    // Recording no events answers the squad's last sequence number.
    let last_seq = || async {
        let res = app.post(&hook("flood"), json!({ "n": 0 })).await;
        body(res).await["data"].as_i64().unwrap()
    };
    let ada = |method: Method, path: &str| app.as_agent(squad.key("Ada"), "Ada", method, path);
    let create = |title: &'static str| {
        ada(Method::POST, "/api/tasks")
            .json(&json!({ "title": title }))
            .send()
    };
    let titles = || async {
        let res = ada(Method::GET, "/api/tasks").send().await.unwrap();
        body(res).await["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["title"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    // Two conflicts, then the third attempt commits, once.
    let before = last_seq().await;
    fail_commits(2).await;
    assert_eq!(create("after two conflicts").await.unwrap().status(), 201);
    assert_eq!(titles().await, ["after two conflicts"]);
    let after_first = last_seq().await;
    let per_task = after_first - before;
    assert!(per_task > 0);

    // Conflicts on every attempt: a 503, no task, no sequence number used.
    fail_commits(100).await;
    let res = create("never stored").await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(body(res).await["error"], "the database is busy; try again");
    fail_commits(0).await;
    assert_eq!(titles().await, ["after two conflicts"]);
    assert_eq!(
        last_seq().await,
        after_first,
        "the failed attempts used no number"
    );
    assert_eq!(create("then one more").await.unwrap().status(), 201);
    assert_eq!(
        last_seq().await - after_first,
        per_task,
        "no gap in the sequence"
    );
}
