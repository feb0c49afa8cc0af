//! Command line and configuration: every setting is a flag with an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "squadron",
    version,
    about = "A real-time coordination server for squads of AI agents"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage organization API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print it alone on stdout (the organization is created if needed).
    Create {
        /// Organization name.
        #[arg(long)]
        org: String,
        /// A label to recognise the token by.
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value_t = RoleArg::Admin)]
        role: RoleArg,
        /// `pk` for `pk_...` (SquadOS) or `msq` for `msq-...` (OpenAI-style clients).
        #[arg(long, value_enum, default_value_t = FormatArg::Pk)]
        format: FormatArg,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum RoleArg {
    Admin,
    Member,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum FormatArg {
    Pk,
    Msq,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    #[arg(
        long,
        env = "SQUADRON_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: SocketAddr,
    /// Database URL: `postgres://...` or `sqlite://...`. Default: SQLite in the data directory.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Where the embedded database and other local state live.
    #[arg(
        long,
        env = "SQUADRON_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Log output: human-readable text or one JSON object per line. Levels via RUST_LOG.
    #[arg(long, env = "SQUADRON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Requests per minute per credential to /api/heartbeat.
    #[arg(
        long,
        env = "SQUADRON_RATE_HEARTBEAT",
        default_value_t = 10,
        global = true
    )]
    pub rate_heartbeat: u32,
    /// Requests per minute per credential to /api/tasks*.
    #[arg(long, env = "SQUADRON_RATE_TASKS", default_value_t = 30, global = true)]
    pub rate_tasks: u32,
    /// Requests per minute per credential to the rest of /api.
    #[arg(
        long,
        env = "SQUADRON_RATE_DEFAULT",
        default_value_t = 60,
        global = true
    )]
    pub rate_default: u32,
    /// Requests per minute per credential to the OpenAI-compatible gateway, /v1.
    #[arg(
        long,
        env = "SQUADRON_RATE_GATEWAY",
        default_value_t = 600,
        global = true
    )]
    pub rate_gateway: u32,
    /// Largest request body, in bytes, for Mission Control JSON (/api, except /api/v1).
    #[arg(long, env = "SQUADRON_BODY_LIMIT_API", default_value_t = 10 * 1024, global = true)]
    pub body_limit_api: usize,
    /// Largest request body, in bytes, for SquadOS (/api/v1) and the gateway (/v1).
    #[arg(long, env = "SQUADRON_BODY_LIMIT_GATEWAY", default_value_t = 4 * 1024 * 1024, global = true)]
    pub body_limit_gateway: usize,
    /// Seconds without messages after which a squad's actor stops (it restarts on demand); 0 keeps it.
    #[arg(
        long,
        env = "SQUADRON_ACTOR_IDLE_SECS",
        default_value_t = 300,
        global = true
    )]
    pub actor_idle_secs: u64,
    /// Events a live subscriber may fall behind before it is told to resync.
    #[arg(
        long,
        env = "SQUADRON_LIVE_BUFFER",
        default_value_t = 1024,
        global = true
    )]
    pub live_buffer: usize,
    /// Bytes of events one live WebSocket may have queued for it; a client slower than that
    /// holds up its subscriptions, which then lag and are told to resync.
    #[arg(long, env = "SQUADRON_LIVE_OUTBOX_BYTES", default_value_t = 256 * 1024, global = true)]
    pub live_outbox_bytes: usize,
    /// Seconds a live WebSocket may take to accept one message before it is closed (a client
    /// that stopped reading).
    #[arg(
        long,
        env = "SQUADRON_LIVE_SEND_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub live_send_timeout_secs: u64,
    /// Live streams (WebSocket and SSE) one credential may hold open at once; 0: no limit.
    #[arg(
        long,
        env = "SQUADRON_LIVE_MAX_CONNECTIONS_PER_CREDENTIAL",
        default_value_t = 100,
        global = true
    )]
    pub live_max_connections_per_credential: usize,
    /// Seconds a client may take to send a request's headers before its connection is closed.
    #[arg(
        long,
        env = "SQUADRON_HEADER_READ_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub header_read_timeout_secs: u64,
    /// Seconds a request body may go without a byte arriving before the request fails.
    #[arg(
        long,
        env = "SQUADRON_BODY_READ_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub body_read_timeout_secs: u64,
    /// How long a browser's live-connection ticket stays valid, in seconds.
    #[arg(
        long,
        env = "SQUADRON_TICKET_TTL_SECS",
        default_value_t = 30,
        global = true
    )]
    pub ticket_ttl_secs: u64,
    /// The URL clients reach this server at, for the links it hands out (setup URLs).
    /// Default: `http://` and the bind address.
    #[arg(long, env = "SQUADRON_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// How long a squad's one-time setup token stays valid, in seconds.
    #[arg(long, env = "SQUADRON_SETUP_TTL_SECS", default_value_t = 24 * 3600, global = true)]
    pub setup_ttl_secs: u64,
    /// How many MiB of vectors the embedded (SQLite) search index keeps in memory; the vector
    /// stores searched least recently make room first. PostgreSQL's pgvector needs none.
    #[arg(
        long,
        env = "SQUADRON_VECTOR_CACHE_MB",
        default_value_t = 256,
        global = true
    )]
    pub vector_cache_mb: usize,
    /// How often agents' presence (status, last heartbeat) is written, in milliseconds.
    #[arg(
        long,
        env = "SQUADRON_PRESENCE_FLUSH_MS",
        default_value_t = 1_000,
        global = true
    )]
    pub presence_flush_ms: u64,
    /// The key that seals provider secrets at rest: 64 hex characters. Default: generated
    /// once into `<data-dir>/secret.key`. Losing it makes stored provider keys unreadable.
    #[arg(
        long,
        env = "SQUADRON_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    pub secret_key: Option<String>,
    /// How long an upstream provider may take to answer (and between streamed chunks), in seconds.
    #[arg(
        long,
        env = "SQUADRON_UPSTREAM_TIMEOUT_SECS",
        default_value_t = 120,
        global = true
    )]
    pub upstream_timeout_secs: u64,
    /// Let members' `/v1/core/scrape-url` fetch private, loopback and link-local addresses too
    /// (admins may unless `--upstream-forbid-private`).
    #[arg(long, env = "SQUADRON_SCRAPE_ALLOW_PRIVATE", global = true)]
    pub scrape_allow_private: bool,
    /// Reach no private, loopback or link-local address for anyone, admins included: no
    /// provider, MCP server or scraped page there (off: admins may, members never).
    #[arg(long, env = "SQUADRON_UPSTREAM_FORBID_PRIVATE", global = true)]
    pub upstream_forbid_private: bool,
    /// How often token usage (calls, last used) is written to the database, in milliseconds.
    #[arg(
        long,
        env = "SQUADRON_USAGE_FLUSH_MS",
        default_value_t = 5_000,
        global = true
    )]
    pub usage_flush_ms: u64,
    /// Where uploaded files are kept: `s3://bucket/prefix` (configured by the usual `AWS_*`
    /// variables) or `file:///path`. Default: `<data-dir>/files`.
    #[arg(long, env = "SQUADRON_OBJECT_STORE", global = true)]
    pub object_store: Option<String>,
    /// Largest file upload, in bytes.
    #[arg(long, env = "SQUADRON_MAX_FILE_BYTES", default_value_t = 512 * 1024 * 1024, global = true)]
    pub max_file_bytes: u64,
    /// An ingest's first retry of a failed embedding call waits this long (then twice as long
    /// each time), in milliseconds.
    #[arg(
        long,
        env = "SQUADRON_INGEST_BACKOFF_MS",
        default_value_t = 500,
        global = true
    )]
    pub ingest_backoff_ms: u64,
    /// Let admins add stdio MCP servers: programs this server runs, as itself (off: only
    /// streamable HTTP servers).
    #[arg(long, env = "SQUADRON_ALLOW_STDIO_SERVERS", global = true)]
    pub allow_stdio_servers: bool,
    /// Let members too add MCP servers at private, loopback and link-local addresses (admins
    /// may unless `--upstream-forbid-private`).
    #[arg(long, env = "SQUADRON_MCP_ALLOW_PRIVATE", global = true)]
    pub mcp_allow_private: bool,
    /// An MCP server's first reconnection waits this long (then twice as long each time, up
    /// to 30 s), in milliseconds.
    #[arg(
        long,
        env = "SQUADRON_MCP_BACKOFF_MS",
        default_value_t = 500,
        global = true
    )]
    pub mcp_backoff_ms: u64,
    /// Rounds of tool calls an agent may make in one chat turn before it must answer.
    #[arg(
        long,
        env = "SQUADRON_TOOL_MAX_STEPS",
        default_value_t = 8,
        global = true
    )]
    pub tool_max_steps: u32,
    /// How long one tool call may take, in seconds; a whole turn's tool calls, 4 times that.
    #[arg(
        long,
        env = "SQUADRON_TOOL_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub tool_timeout_secs: u64,
    /// Failed authentications a client address may make in a row before it is refused (429)
    /// without its credential being looked up; 0 turns this off.
    #[arg(
        long,
        env = "SQUADRON_AUTH_FAIL_BURST",
        default_value_t = 20,
        global = true
    )]
    pub auth_fail_burst: u32,
    /// Failed authentications per minute a client address is allowed after its burst.
    #[arg(
        long,
        env = "SQUADRON_AUTH_FAIL_PER_MINUTE",
        default_value_t = 10,
        global = true
    )]
    pub auth_fail_per_minute: u32,
    /// When set, `/metrics` answers only `Authorization: Bearer <this token>`.
    #[arg(
        long,
        env = "SQUADRON_METRICS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
}

impl Config {
    /// The defaults, ignoring the command line (tests start from this).
    pub fn defaults() -> Config {
        Cli::parse_from(["squadron"]).config
    }

    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.bind),
        }
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("squadron.db").display()
            ),
        }
    }
}
