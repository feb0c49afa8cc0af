//! What the benchmark programs share: a server started in process on a fresh database
//! (SQLite, or a database of its own on a PostgreSQL server), percentiles, memory, and tables
//! that read as Markdown and as plain text.

// Each benchmark uses part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use sea_orm::ConnectionTrait;
use squadron::config::Config;
use squadron::startup;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

#[path = "../../tests/support/database_url.rs"]
mod database_url;
use database_url::with_database;

/// Where a benchmark's server keeps its data.
pub enum Backend {
    Sqlite,
    /// A PostgreSQL server (with pgvector) on which a database per server is made.
    Postgres {
        admin_url: String,
    },
}

impl Backend {
    pub fn label(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

/// An empty database for one server: a SQLite file in a temporary directory, or a database
/// of its own on the PostgreSQL server. The directory holds the server's other local state.
pub struct Database {
    pub url: String,
    /// The admin URL and the database's name, to drop it afterwards.
    postgres: Option<(String, String)>,
    pub dir: tempfile::TempDir,
}

impl Database {
    pub async fn fresh(backend: &Backend) -> anyhow::Result<Database> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let Backend::Postgres { admin_url } = backend else {
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            );
            return Ok(Database {
                url,
                postgres: None,
                dir,
            });
        };
        let name = format!("squadron_bench_{}", Uuid::new_v4().simple());
        let admin = sea_orm::Database::connect(admin_url.as_str())
            .await
            .context("connecting to the PostgreSQL admin URL")?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .context("creating the benchmark database")?;
        admin.close().await.ok();
        Ok(Database {
            url: with_database(admin_url, &name),
            postgres: Some((admin_url.clone(), name)),
            dir,
        })
    }

    /// Drops a PostgreSQL database (best effort); a SQLite file goes with its directory.
    pub async fn remove(self) {
        let Some((admin_url, name)) = self.postgres else {
            return;
        };
        let Ok(admin) = sea_orm::Database::connect(admin_url.as_str()).await else {
            return;
        };
        let dropped = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
        if let Err(err) = dropped {
            eprintln!("warning: could not drop database {name}: {err}");
        }
        admin.close().await.ok();
    }
}

/// A server's configuration for a benchmark: its state in `data_dir`, its data at
/// `database_url`, rate limits off, on a free loopback port.
pub fn config(data_dir: &Path, database_url: &str) -> Config {
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".parse().expect("a valid address");
    config.data_dir = data_dir.to_owned();
    config.database_url = Some(database_url.to_owned());
    config.rate_heartbeat = 0;
    config.rate_tasks = 0;
    config.rate_default = 0;
    config.rate_gateway = 0;
    config
}

/// A server running in this process, and the admin token its fresh database gave.
pub struct InProcess {
    pub addr: SocketAddr,
    pub admin: String,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    pub async fn start(config: Config) -> anyhow::Result<InProcess> {
        let server = startup::build(config)
            .await
            .context("building the server")?;
        let addr = server.local_addr();
        let admin = server
            .admin_token
            .clone()
            .context("a fresh database gives an admin token")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Ok(InProcess {
            addr,
            admin,
            stop,
            serving,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Graceful shutdown, waiting at most `within`.
    pub async fn stop(self, within: Duration) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        match tokio::time::timeout(within, self.serving).await {
            Ok(Ok(result)) => result.context("the server stopped with an error"),
            Ok(Err(join)) => bail!("the server task failed: {join}"),
            Err(_) => bail!("the server did not stop within {within:?}"),
        }
    }
}

/// This process's resident set size, in KiB (0 where /proc is not there).
pub fn rss_kib() -> u64 {
    rss_kib_of("self")
}

/// The resident set size of process `pid` (or `self`), in KiB (0 where it cannot be read).
pub fn rss_kib_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The CPU time the whole machine (every CPU, every process) has been busy since it started,
/// in seconds; `None` where /proc/stat cannot be read. Busy is all but idle and I/O wait.
pub fn machine_busy_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is within user)
    let busy: u64 = ticks.iter().take(8).sum::<u64>() - ticks.get(3)? - ticks.get(4)?;
    // The kernel counts in USER_HZ, 100 on every Linux.
    Some(busy as f64 / 100.0)
}

/// The nearest-rank percentile `p` (0 to 1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// A Markdown table whose columns line up in plain text too.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn print(&self) {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|row| row.get(c).map_or(0, String::len))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let cells: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(c, w)| format!("{:>w$}", cells.get(c).map_or("", String::as_str)))
                .collect();
            println!("| {} |", cells.join(" | "));
        };
        line(&self.header);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        println!("|-{}-|", rule.join("-|-"));
        for row in &self.rows {
            line(row);
        }
    }
}
