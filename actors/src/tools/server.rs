//! One MCP server's connection, as an actor. It connects (in a task, so it keeps answering),
//! lists the server's tools, listens for the server's "tools changed" news, and when the
//! connection fails or drops, tries again with doubling backoff. Tool calls do not pass
//! through it: callers borrow its [`Peer`] and call on their own tasks, so one slow tool
//! never holds up another.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, Tool};
use rmcp::service::{ClientInitializeError, NotificationContext, Peer, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ServiceExt};
use tokio_util::sync::CancellationToken;

use super::{ServerSpec, ServerStatus, ToolSettings, Transport};
use crate::Alive;

pub enum ServerMsg {
    /// Connect (again).
    Connect,
    /// A connection attempt of generation `.0` ended.
    Connected(u64, Result<Connection, String>),
    /// The connection of generation `.0` closed.
    Closed(u64),
    /// The server said its tools changed (on connection `.0`).
    ToolsChanged(u64),
    /// The tools listed again on connection `.0`.
    ToolsListed(u64, Result<Vec<Tool>, String>),
    Status(RpcReplyPort<ServerStatus>),
    /// The live connection to call tools on, or why there is none.
    Peer(RpcReplyPort<Result<Peer<RoleClient>, String>>),
}

/// A connection that came up: its peer and its tools.
pub struct Connection {
    peer: Peer<RoleClient>,
    tools: Vec<Tool>,
}

pub struct McpServer;

pub struct ServerState {
    spec: Arc<ServerSpec>,
    settings: ToolSettings,
    /// Counts connection attempts, so news from an older connection is ignored.
    generation: u64,
    /// Failed attempts since the last success (for the backoff).
    failures: u32,
    peer: Option<Peer<RoleClient>>,
    /// A listing of the tools is under way (more news of changes waits for it).
    relisting: bool,
    /// Cancelled to drop the current connection (and end its program).
    hang_up: CancellationToken,
    /// Cancels `hang_up` when the state goes, however the actor ends: a killed or panicked
    /// actor runs no `post_stop`.
    _hang_up_on_drop: tokio_util::sync::DropGuard,
    /// The last tools listed; kept while the server is down, shown unavailable.
    tools: Arc<Vec<Tool>>,
    error: Option<String>,
    since: DateTime<Utc>,
    _alive: Alive,
}

impl ServerState {
    fn status(&self) -> ServerStatus {
        let state = match (&self.peer, &self.error) {
            (Some(_), _) => "connected",
            (None, Some(_)) => "down",
            (None, None) => "connecting",
        };
        ServerStatus {
            state,
            error: self.error.clone(),
            tools: self.tools.clone(),
            since: self.since,
        }
    }

    /// Marks the server down and schedules the next attempt.
    fn down(&mut self, myself: &ActorRef<ServerMsg>, error: String) {
        self.peer = None;
        self.hang_up.cancel();
        let base = self.settings.backoff.as_millis() as u64;
        let wait = Duration::from_millis(base.saturating_mul(1 << self.failures.min(16)))
            .min(self.settings.max_backoff);
        tracing::warn!(server = %self.spec.name, %error, retry_in_ms = wait.as_millis() as u64, "MCP server down");
        self.error = Some(error);
        self.since = Utc::now();
        self.failures = self.failures.saturating_add(1);
        myself.send_after(wait, || ServerMsg::Connect);
    }
}

impl Actor for McpServer {
    type Msg = ServerMsg;
    type State = ServerState;
    type Arguments = (Arc<ServerSpec>, ToolSettings);

    async fn pre_start(
        &self,
        myself: ActorRef<ServerMsg>,
        (spec, settings): Self::Arguments,
    ) -> Result<ServerState, ActorProcessingErr> {
        myself.cast(ServerMsg::Connect)?;
        let hang_up = CancellationToken::new();
        Ok(ServerState {
            spec,
            settings,
            generation: 0,
            failures: 0,
            peer: None,
            relisting: false,
            _hang_up_on_drop: hang_up.clone().drop_guard(),
            hang_up,
            tools: Arc::new(Vec::new()),
            error: None,
            since: Utc::now(),
            _alive: Alive::new("mcp_server"),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ServerMsg>,
        msg: ServerMsg,
        state: &mut ServerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ServerMsg::Connect => {
                state.hang_up.cancel();
                state.hang_up = CancellationToken::new();
                state._hang_up_on_drop = state.hang_up.clone().drop_guard();
                state.relisting = false;
                state.generation += 1;
                state.peer = None;
                let generation = state.generation;
                let (spec, hang_up) = (state.spec.clone(), state.hang_up.clone());
                let timeout = state.settings.connect_timeout;
                let guard = state.settings.guard.clone();
                tokio::spawn(async move {
                    let attempt = connect(&spec, &myself, generation, hang_up, guard);
                    let attempt =
                        tokio::time::timeout(timeout, attempt)
                            .await
                            .unwrap_or_else(|_| {
                                Err(format!("no answer within {}s", timeout.as_secs()))
                            });
                    let _ = myself.cast(ServerMsg::Connected(generation, attempt));
                });
            }
            ServerMsg::Connected(generation, attempt) if generation == state.generation => {
                match attempt {
                    Ok(connection) => {
                        tracing::info!(server = %state.spec.name, tools = connection.tools.len(), "MCP server connected");
                        state.peer = Some(connection.peer);
                        state.tools = Arc::new(connection.tools);
                        state.error = None;
                        state.failures = 0;
                        state.since = Utc::now();
                    }
                    Err(error) => state.down(&myself, error),
                }
            }
            ServerMsg::Closed(generation) if generation == state.generation => {
                state.down(&myself, "the connection closed".into());
            }
            ServerMsg::ToolsChanged(generation) if generation == state.generation => {
                // One listing at a time: a server that keeps announcing changes gets listed
                // again once the listing under way ends, not once per announcement.
                if let (Some(peer), false) = (state.peer.clone(), state.relisting) {
                    state.relisting = true;
                    let timeout = state.settings.connect_timeout;
                    tokio::spawn(async move {
                        let tools = list_tools(&peer, timeout).await;
                        let _ = myself.cast(ServerMsg::ToolsListed(generation, tools));
                    });
                }
            }
            ServerMsg::ToolsListed(generation, tools) if generation == state.generation => {
                state.relisting = false;
                match tools {
                    Ok(tools) => state.tools = Arc::new(tools),
                    Err(error) => {
                        tracing::warn!(server = %state.spec.name, %error, "listing tools again failed")
                    }
                }
            }
            ServerMsg::Status(reply) => {
                let _ = reply.send(state.status());
            }
            ServerMsg::Peer(reply) => {
                let peer = state.peer.clone().ok_or_else(|| match &state.error {
                    Some(error) => format!("the MCP server {} is down: {error}", state.spec.name),
                    None => format!("the MCP server {} is still connecting", state.spec.name),
                });
                let _ = reply.send(peer);
            }
            // News from a connection that has since been replaced.
            ServerMsg::Connected(..)
            | ServerMsg::Closed(_)
            | ServerMsg::ToolsChanged(_)
            | ServerMsg::ToolsListed(..) => {}
        }
        Ok(())
    }
}

/// Receives the server's notifications on one connection.
struct Listener {
    actor: ActorRef<ServerMsg>,
    generation: u64,
}

impl ClientHandler for Listener {
    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        info.capabilities = ClientCapabilities::default();
        info.client_info = Implementation::new("squadron", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.actor.cast(ServerMsg::ToolsChanged(self.generation));
    }
}

/// Tools a server offers at most: a server that lists more is refused.
const MAX_TOOLS: usize = 1_000;

/// The server's tools (every page), within `timeout` and [`MAX_TOOLS`].
async fn list_tools(peer: &Peer<RoleClient>, timeout: Duration) -> Result<Vec<Tool>, String> {
    let tools = tokio::time::timeout(timeout, peer.list_all_tools())
        .await
        .map_err(|_| "listing tools took too long".to_owned())?
        .map_err(|e| format!("listing tools: {e}"))?;
    if tools.len() > MAX_TOOLS {
        return Err(format!(
            "the server lists {} tools; at most {MAX_TOOLS} are taken",
            tools.len()
        ));
    }
    Ok(tools)
}

/// Why a connection could not be opened, for people: the deepest cause (`Connection refused`,
/// `No such file or directory`), not the transport's type names around it.
fn handshake_failed(err: &ClientInitializeError) -> String {
    // The transport's error is not given as a source: start from it.
    let mut cause: &(dyn std::error::Error + 'static) = match err {
        ClientInitializeError::TransportError { error, .. } => error.error.as_ref(),
        other => other,
    };
    while let Some(source) = cause.source() {
        cause = source;
    }
    format!("the MCP handshake failed: {cause}")
}

/// Opens a connection, lists its tools, and leaves a task that reports when it closes (or
/// closes it when `hang_up` is cancelled).
async fn connect(
    spec: &ServerSpec,
    actor: &ActorRef<ServerMsg>,
    generation: u64,
    hang_up: CancellationToken,
    guard: Option<super::UrlGuard>,
) -> Result<Connection, String> {
    let listener = Listener {
        actor: actor.clone(),
        generation,
    };
    let service: RunningService<RoleClient, Listener> = match &spec.transport {
        Transport::Http {
            url,
            headers,
            allow_private,
        } => {
            if let Some(guard) = guard {
                (guard.0)(url.clone(), *allow_private).await?;
            }
            let config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
            // Authorization too goes as given (`Bearer ...`, `Basic ...`).
            let mut custom = HashMap::new();
            for (name, value) in headers {
                let name = http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| format!("header {name:?}: {e}"))?;
                let value = http::HeaderValue::from_str(value)
                    .map_err(|e| format!("header {name:?}: {e}"))?;
                custom.insert(name, value);
            }
            let transport =
                StreamableHttpClientTransport::from_config(config.custom_headers(custom));
            listener
                .serve(transport)
                .await
                .map_err(|e| handshake_failed(&e))?
        }
        Transport::Stdio { command, args, env } => {
            let mut cmd = tokio::process::Command::new(command);
            // The program gets only what it is given, plus where to find programs and a
            // home: never this server's own environment (its keys, its database URL).
            cmd.args(args).env_clear();
            for inherited in ["PATH", "HOME", "LANG"] {
                if let Some(value) = std::env::var_os(inherited) {
                    cmd.env(inherited, value);
                }
            }
            cmd.envs(env);
            let (transport, _) = TokioChildProcess::builder(cmd)
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| format!("{command} could not be started: {e}"))?;
            listener
                .serve(transport)
                .await
                .map_err(|e| handshake_failed(&e))?
        }
    };
    // (The whole of `connect` runs within the connect timeout.)
    let tools = list_tools(service.peer(), Duration::from_secs(3_600)).await?;
    let peer = service.peer().clone();
    let actor = actor.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = service.waiting() => {
                let _ = actor.cast(ServerMsg::Closed(generation));
            }
            // Dropping the service (inside `waiting`) closes the connection.
            _ = hang_up.cancelled() => {}
        }
    });
    Ok(Connection { peer, tools })
}
