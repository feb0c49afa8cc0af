//! Agent tools: each account's Model Context Protocol servers, one [`server::McpServer`]
//! actor per server under the [`ToolsSupervisor`]. A server that is down is reported with its
//! error and retried on its own; it never takes another server (or the supervisor) with it.
//! A server actor that panics is started again.
//!
//! The HTTP layer holds [`Tools`]: it starts and stops servers, reads their status and tools,
//! and calls tools (on its own task, bounded by a timeout).

mod server;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject, Tool};
use uuid::Uuid;

use server::McpServer;
pub use server::ServerMsg;

/// How an MCP server is reached.
#[derive(Clone, Debug)]
pub enum Transport {
    /// Streamable HTTP at `url`, with extra headers.
    Http {
        url: String,
        headers: BTreeMap<String, String>,
        /// Whether it may be at a private address (the server's outward policy decides).
        allow_private: bool,
    },
    /// A program we run, speaking MCP on its stdin and stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
    },
}

/// A server to connect, its secrets opened.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub transport: Transport,
}

#[derive(Clone, Debug)]
pub struct ToolSettings {
    /// The first reconnection's wait; each next one doubles, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// How long connecting (and listing tools) may take.
    pub connect_timeout: Duration,
    /// Checks an HTTP server's address before every connection: DNS may have changed its
    /// answer since the server was added.
    pub guard: Option<UrlGuard>,
}

/// `check(url, allow_private)`: why a URL may not be connected to now, if so.
pub type UrlCheck =
    dyn Fn(String, bool) -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync;

/// The server's outward policy for MCP URLs (see [`UrlCheck`]).
#[derive(Clone)]
pub struct UrlGuard(pub Arc<UrlCheck>);

impl std::fmt::Debug for UrlGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlGuard")
    }
}

impl Default for ToolSettings {
    fn default() -> Self {
        ToolSettings {
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(20),
            guard: None,
        }
    }
}

/// What a server is doing, and the tools it last listed.
#[derive(Clone, Debug)]
pub struct ServerStatus {
    /// `connecting`, `connected` or `down`.
    pub state: &'static str,
    pub error: Option<String>,
    pub tools: Arc<Vec<Tool>>,
    /// When it entered this state.
    pub since: DateTime<Utc>,
}

impl ServerStatus {
    fn not_running() -> ServerStatus {
        ServerStatus {
            state: "down",
            error: Some("not running on this server".into()),
            tools: Arc::new(Vec::new()),
            since: Utc::now(),
        }
    }
}

/// What a tool answered, as text for a model.
#[derive(Clone, Debug)]
pub struct ToolOutput {
    pub text: String,
    /// The tool reported an error (its text says what).
    pub is_error: bool,
}

impl From<CallToolResult> for ToolOutput {
    /// Its text blocks, else its structured content, else its blocks as JSON.
    fn from(result: CallToolResult) -> ToolOutput {
        let texts: Vec<&str> = result
            .content
            .iter()
            .filter_map(|block| block.as_text().map(|t| t.text.as_str()))
            .collect();
        let text = if !texts.is_empty() {
            texts.join("\n")
        } else if let Some(structured) = &result.structured_content {
            structured.to_string()
        } else {
            serde_json::to_string(&result.content).unwrap_or_default()
        };
        ToolOutput {
            text,
            is_error: result.is_error == Some(true),
        }
    }
}

/// Why a tool call gave no result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    Unavailable(String),
    #[error("the tool failed: {0}")]
    Failed(String),
    #[error("the tool did not answer within {0}s")]
    TimedOut(u64),
}

pub enum ToolsMsg {
    /// Connect a server (replacing its running actor, if any); replies once its actor runs.
    Start(ServerSpec, ractor::RpcReplyPort<()>),
    /// Disconnect a server and forget it.
    Stop(Uuid),
}

/// The handle the HTTP layer holds.
#[derive(Clone)]
pub struct Tools {
    supervisor: ActorRef<ToolsMsg>,
    servers: Arc<DashMap<Uuid, ActorRef<ServerMsg>>>,
}

impl Tools {
    /// Starts the server's actor (which connects on its own); once this returns, its
    /// status reads `connecting` or better.
    pub async fn start_server(&self, spec: ServerSpec) {
        let started = ractor::call_t!(self.supervisor, |reply| ToolsMsg::Start(spec, reply), 5_000);
        if let Err(err) = started {
            tracing::error!(error = %err, "the tools supervisor did not start a server");
        }
    }

    pub fn stop_server(&self, id: Uuid) {
        let _ = self.supervisor.cast(ToolsMsg::Stop(id));
    }

    /// Stops the supervisor and every server (their programs end with them).
    pub fn stop(&self) {
        self.supervisor.stop(Some("shutdown".into()));
    }

    pub async fn status(&self, id: Uuid) -> ServerStatus {
        let Some(actor) = self.servers.get(&id).map(|a| a.clone()) else {
            return ServerStatus::not_running();
        };
        ractor::call_t!(actor, ServerMsg::Status, 5_000)
            .unwrap_or_else(|_| ServerStatus::not_running())
    }

    /// Calls `tool` on server `id` with `arguments`, within `timeout`. The outcome and time
    /// are counted in `squadron_tool_calls_total` and `squadron_tool_call_seconds`.
    pub async fn call(
        &self,
        id: Uuid,
        tool: &str,
        arguments: JsonObject,
        timeout: Duration,
    ) -> Result<ToolOutput, CallError> {
        let started = Instant::now();
        let result = self.call_unmetered(id, tool, arguments, timeout).await;
        let outcome = match &result {
            Ok(r) if r.is_error => "error",
            Ok(_) => "ok",
            Err(CallError::Unavailable(_)) => "unavailable",
            Err(CallError::Failed(_)) => "failed",
            Err(CallError::TimedOut(_)) => "timeout",
        };
        // No label names an account's server or tool: metrics are the operator's.
        metrics::histogram!("squadron_tool_call_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("squadron_tool_calls_total", "outcome" => outcome).increment(1);
        result
    }

    async fn call_unmetered(
        &self,
        id: Uuid,
        tool: &str,
        arguments: JsonObject,
        timeout: Duration,
    ) -> Result<ToolOutput, CallError> {
        let actor = self
            .servers
            .get(&id)
            .map(|a| a.clone())
            .ok_or_else(|| CallError::Unavailable("the MCP server is not running".into()))?;
        let peer = ractor::call_t!(actor, ServerMsg::Peer, 5_000)
            .map_err(|e| CallError::Unavailable(e.to_string()))?
            .map_err(CallError::Unavailable)?;
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        match tokio::time::timeout(timeout, peer.call_tool(params)).await {
            Ok(Ok(result)) => Ok(result.into()),
            Ok(Err(err)) => Err(CallError::Failed(err.to_string())),
            Err(_) => Err(CallError::TimedOut(timeout.as_secs())),
        }
    }
}

pub struct ToolsSupervisor;

pub struct SupervisorState {
    settings: ToolSettings,
    servers: Arc<DashMap<Uuid, ActorRef<ServerMsg>>>,
    /// Each running server actor's spec, to start it again if it panics.
    running: HashMap<ActorId, Arc<ServerSpec>>,
    _alive: crate::Alive,
}

impl SupervisorState {
    async fn spawn(&mut self, myself: &ActorRef<ToolsMsg>, spec: Arc<ServerSpec>) {
        let args = (spec.clone(), self.settings.clone());
        match Actor::spawn_linked(None, McpServer, args, myself.get_cell()).await {
            Ok((actor, _)) => {
                self.running.insert(actor.get_id(), spec.clone());
                if let Some(old) = self.servers.insert(spec.id, actor) {
                    self.running.remove(&old.get_id());
                    old.stop(Some("replaced".into()));
                }
            }
            Err(err) => {
                tracing::error!(server = %spec.name, error = %err, "an MCP server actor failed to start")
            }
        }
    }
}

impl Actor for ToolsSupervisor {
    type Msg = ToolsMsg;
    type State = SupervisorState;
    type Arguments = (ToolSettings, Arc<DashMap<Uuid, ActorRef<ServerMsg>>>);

    async fn pre_start(
        &self,
        _myself: ActorRef<ToolsMsg>,
        (settings, servers): Self::Arguments,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        Ok(SupervisorState {
            settings,
            servers,
            running: HashMap::new(),
            _alive: crate::Alive::new("tools"),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ToolsMsg>,
        msg: ToolsMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ToolsMsg::Start(spec, reply) => {
                state.spawn(&myself, Arc::new(spec)).await;
                let _ = reply.send(());
            }
            ToolsMsg::Stop(id) => {
                if let Some((_, actor)) = state.servers.remove(&id) {
                    state.running.remove(&actor.get_id());
                    actor.stop(Some("deleted".into()));
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<ToolsMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, err) = event {
            if let Some(spec) = state.running.remove(&cell.get_id()) {
                tracing::error!(server = %spec.name, panic = %err, "an MCP server actor panicked; starting it again");
                state.servers.remove(&spec.id);
                state.spawn(&myself, spec).await;
            }
        }
        Ok(())
    }
}

/// Starts the supervisor, with no servers yet.
pub async fn start(
    settings: ToolSettings,
) -> Result<(Tools, tokio::task::JoinHandle<()>), ractor::SpawnErr> {
    let servers = Arc::new(DashMap::new());
    let (supervisor, handle) =
        Actor::spawn(None, ToolsSupervisor, (settings, servers.clone())).await?;
    Ok((
        Tools {
            supervisor,
            servers,
        },
        handle,
    ))
}
