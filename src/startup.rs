//! Building the server: database, migrations, first-start bootstrap, actors, router, listener.
//! `build` binds the listener, so callers (tests) can ask for port 0 and read the real one.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;
use squadron_actors::knowledge::{Deps as KnowledgeDeps, IngestSettings, KnowledgeMsg};
use squadron_actors::live::LiveHub;
use squadron_actors::secrets::Sealer;
use squadron_actors::store::{self, tokens::Role, tokens::TokenFormat};
use squadron_actors::tools::ToolSettings;
use squadron_actors::{Core, Settings};
use squadron_migrations::Migrator;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::caches::Caches;
use crate::config::Config;
use crate::directory::Directory;
use crate::gateway::Gateway;
use crate::knowledge::GatewayEmbedder;
use crate::ratelimit::RateLimits;
use crate::state::{App, AppState};
use crate::usage::Usage;

pub struct Server {
    listener: TcpListener,
    state: AppState,
    root: JoinHandle<()>,
    knowledge: JoinHandle<()>,
    tools: JoinHandle<()>,
    /// The admin token made on first start with an empty database, if this start made one.
    pub admin_token: Option<String>,
}

/// Connects to the configured database and brings its schema up to date.
pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    }
    let url = config.database_url();
    let db = store::connect(&url)
        .await
        .with_context(|| format!("connecting to the database at {}", redact(&url)))?;
    Migrator::up(&db, None)
        .await
        .context("running migrations")?;
    Ok(db)
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// `squadron token create`: a token for `org` (created if needed); returns the secret.
pub async fn create_token(
    config: &Config,
    org: &str,
    name: &str,
    role: Role,
    format: TokenFormat,
) -> anyhow::Result<String> {
    let db = connect(config).await?;
    let org = store::orgs::find_or_create(&db, org).await?;
    Ok(store::tokens::create(&db, org.id, name, role, format)
        .await?
        .secret)
}

/// On an empty database: organization `default` and its first admin token.
async fn bootstrap(db: &DatabaseConnection) -> anyhow::Result<Option<String>> {
    if store::orgs::count(db).await? > 0 {
        return Ok(None);
    }
    let org = store::orgs::find_or_create(db, "default").await?;
    let minted =
        store::tokens::create(db, org.id, "bootstrap admin", Role::Admin, TokenFormat::Pk).await?;
    Ok(Some(minted.secret))
}

/// The key that seals provider secrets: from the configuration, or from `secret.key` in the
/// data directory, made on first start.
fn secret_key(config: &Config) -> anyhow::Result<[u8; 32]> {
    let parse = |hex_key: &str, from: &str| -> anyhow::Result<[u8; 32]> {
        let bytes = hex::decode(hex_key.trim()).with_context(|| format!("{from} is not hex"))?;
        bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("{from} must be 32 bytes (64 hex characters)"))
    };
    if let Some(key) = &config.secret_key {
        return parse(key, "the secret key");
    }
    let path = config.data_dir.join("secret.key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return parse(&existing, &path.display().to_string());
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let key = Sealer::generate_key();
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    std::io::Write::write_all(&mut file.open(&path)?, hex::encode(key).as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated the key that seals provider secrets");
    Ok(key)
}

pub async fn build(config: Config) -> anyhow::Result<Server> {
    // Before any client is made: the outbound ones, the object store's, MCP servers'.
    squadron_actors::tls::install();
    let sealer = Sealer::new(secret_key(&config)?);
    let outbound = Arc::new(
        crate::outbound::Outbound::new(&config).context("building the outward HTTP clients")?,
    );
    let db = connect(&config).await?;
    let admin_token = bootstrap(&db).await?;
    let hub = Arc::new(LiveHub::new(config.live_buffer));
    let settings = Settings {
        idle_after: (config.actor_idle_secs > 0)
            .then(|| Duration::from_secs(config.actor_idle_secs)),
        call_timeout: Duration::from_secs(10),
        setup_ttl: Duration::from_secs(config.setup_ttl_secs),
        vector_cache_bytes: config.vector_cache_mb.saturating_mul(1 << 20),
    };
    let (core, root) = Core::start(db, hub, settings)
        .await
        .context("starting actors")?;
    let objects = crate::knowledge::objects(&config)?;
    let shutdown = CancellationToken::new();
    let caches = Caches::new(&config, shutdown.clone());
    let gateway = Arc::new(Gateway::new(
        core.db().clone(),
        sealer.clone(),
        outbound.clone(),
        caches.routes.clone(),
    ));
    let (knowledge, knowledge_handle) = squadron_actors::knowledge::start(KnowledgeDeps {
        shared: core.shared.clone(),
        embedder: Arc::new(GatewayEmbedder::new(gateway.clone())),
        objects: objects.clone(),
        settings: IngestSettings {
            backoff: Duration::from_millis(config.ingest_backoff_ms),
            ..IngestSettings::default()
        },
        shutdown: shutdown.clone(),
    })
    .await
    .context("starting the knowledge supervisor")?;
    let (tools, tools_handle) = squadron_actors::tools::start(ToolSettings {
        backoff: Duration::from_millis(config.mcp_backoff_ms),
        guard: Some(crate::outbound::mcp_guard(outbound.clone())),
        ..ToolSettings::default()
    })
    .await
    .context("starting the tools supervisor")?;
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let state = AppState(Arc::new(App {
        limits: RateLimits::new(&config),
        caches,
        gateway,
        directory: Directory::default(),
        usage: Usage::default(),
        metrics: crate::metrics::handle(),
        sealer,
        outbound,
        shutdown,
        objects,
        knowledge,
        tools,
        core,
        config,
    }));
    let _ = state.knowledge.cast(KnowledgeMsg::Resume);
    crate::api::gateway::servers::connect_all(&state)
        .await
        .context("reading MCP servers")?;
    Ok(Server {
        listener,
        state,
        root,
        knowledge: knowledge_handle,
        tools: tools_handle,
        admin_token,
    })
}

impl Server {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then drains: live streams end, actors stop, and
    /// counted token usage is written.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Server {
            listener,
            state,
            root,
            knowledge,
            tools,
            ..
        } = self;
        let housekeeping = tokio::spawn(housekeeping(state.clone()));
        let cancel = state.shutdown.clone();
        let router = crate::router::build(state.clone());
        // Streams (SSE chunks, live events) are many small writes: Nagle would hold them back.
        let listener = listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "could not set TCP_NODELAY");
            }
        });
        let timeouts = crate::serve::Timeouts {
            header_read: Duration::from_secs(state.config.header_read_timeout_secs.max(1)),
            body_read: Duration::from_secs(state.config.body_read_timeout_secs.max(1)),
        };
        crate::serve::serve(listener, router, timeouts, async move {
            shutdown.await;
            tracing::info!("shutting down");
            cancel.cancel();
        })
        .await;
        state.shutdown.cancel();
        state.core.stop();
        state.knowledge.stop(Some("shutdown".into()));
        state.tools.stop();
        let _ = root.await;
        let _ = knowledge.await;
        let _ = tools.await;
        let _ = housekeeping.await;
        // After the actors stopped, so the last presence they recorded is written too.
        state
            .core
            .shared
            .presence
            .flush(state.db())
            .await
            .context("writing presence at shutdown")?;
        state
            .usage
            .flush(state.db())
            .await
            .context("writing token usage at shutdown")?;
        Ok(())
    }
}

/// Periodic chores until shutdown: write presence and token usage, forget idle rate buckets.
async fn housekeeping(state: AppState) {
    let every = |ms: u64| tokio::time::interval(Duration::from_millis(ms.max(10)));
    let mut presence = every(state.config.presence_flush_ms);
    let mut usage = every(state.config.usage_flush_ms);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = presence.tick() => {
                if let Err(err) = state.core.shared.presence.flush(state.db()).await {
                    tracing::warn!(error = %err, "could not write presence; will retry");
                }
            }
            _ = usage.tick() => {
                if let Err(err) = state.usage.flush(state.db()).await {
                    tracing::warn!(error = %err, "could not write token usage; will retry");
                }
                state.limits.forget_idle();
                state.caches.tokens.forget_idle();
            }
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
