//! `/v1/core`: the account's MCP servers and their tools. A server is streamable HTTP (a URL
//! and headers) or stdio (a program we run: admins only, and only where the server's
//! configuration allows it). Headers and environments are sealed at rest and masked in reads.
//! Each server runs as an actor (see `squadron_actors::tools`), connected while it exists.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use squadron_actors::store::tokens::Role;
use squadron_actors::store::{self, entity::mcp_server, tools as store_tools};
use squadron_actors::tools::{ServerSpec, Transport};
use utoipa::ToSchema;
use uuid::Uuid;

use super::providers::{check_headers, mask, name, refused, ByName, Removed};
use crate::api::extract::Json;
use crate::api::openai::{list, List};
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::state::AppState;

const MAX_ARGS: usize = 64;
const MAX_SECRETS: usize = 32;

/// A server's connection spec, its secrets opened.
pub fn spec_of(state: &AppState, s: &mcp_server::Model) -> Result<ServerSpec, ApiError> {
    let secrets: BTreeMap<String, String> = match &s.secrets_sealed {
        Some(sealed) => {
            let json = state.sealer.open(sealed).ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!(
                    "MCP server {} secrets do not open with this server's key",
                    s.id
                ))
            })?;
            serde_json::from_str(&json).map_err(|e| ApiError::Internal(e.into()))?
        }
        None => BTreeMap::new(),
    };
    let transport = match (s.transport.as_str(), &s.url, &s.command) {
        ("http", Some(url), _) => Transport::Http {
            url: url.clone(),
            headers: secrets,
            allow_private: state
                .outbound
                .reach_stored(s.allow_private)
                .allows_private(),
        },
        ("stdio", _, Some(command)) => Transport::Stdio {
            command: command.clone(),
            args: serde_json::from_value(s.args.clone()).unwrap_or_default(),
            env: secrets,
        },
        _ => {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "MCP server {} has no usable transport",
                s.id
            )))
        }
    };
    Ok(ServerSpec {
        id: s.id,
        org_id: s.org_id,
        name: s.name.clone(),
        transport,
    })
}

/// Whether this server may run `s` (stdio servers only where configured).
fn runnable(state: &AppState, s: &mcp_server::Model) -> bool {
    s.transport != "stdio" || state.config.allow_stdio_servers
}

/// Connects every account's servers; at start.
pub async fn connect_all(state: &AppState) -> Result<(), ApiError> {
    for server in store_tools::all_servers(state.db()).await? {
        if !runnable(state, &server) {
            continue;
        }
        match spec_of(state, &server) {
            Ok(spec) => state.tools.start_server(spec).await,
            Err(err) => {
                tracing::error!(server = %server.id, error = %err, "an MCP server cannot be connected")
            }
        }
    }
    Ok(())
}

#[derive(Serialize, ToSchema)]
pub struct ServerView {
    id: Uuid,
    name: String,
    /// `http` or `stdio`.
    transport: String,
    /// Userinfo and query values masked.
    url: Option<String>,
    command: Option<String>,
    args: Vec<String>,
    /// Header (http) or environment (stdio) names, values masked.
    #[schema(value_type = Object)]
    secrets: BTreeMap<String, String>,
    /// `connecting`, `connected`, `down` or `disabled` (stdio servers where they are off).
    status: String,
    error: Option<String>,
    /// Tools it offers (the last ones listed, while it is down).
    tools: usize,
    status_since: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

async fn view(state: &AppState, s: mcp_server::Model) -> Result<ServerView, ApiError> {
    let secrets = match spec_of(state, &s)?.transport {
        Transport::Http { headers, .. } => headers,
        Transport::Stdio { env, .. } => env,
    };
    let (status, error, tools, since) = if runnable(state, &s) {
        let status = state.tools.status(s.id).await;
        (
            status.state.to_owned(),
            status.error,
            status.tools.len(),
            status.since,
        )
    } else {
        let error = "stdio servers are turned off on this server (--allow-stdio-servers)";
        (
            "disabled".to_owned(),
            Some(error.to_owned()),
            0,
            s.created_at,
        )
    };
    Ok(ServerView {
        id: s.id,
        name: s.name,
        transport: s.transport,
        url: s.url.as_deref().map(crate::outbound::mask_url),
        command: s.command,
        args: serde_json::from_value(s.args).unwrap_or_default(),
        secrets: secrets.iter().map(|(k, v)| (k.clone(), mask(v))).collect(),
        status,
        error,
        tools,
        status_since: since,
        created_at: s.created_at,
    })
}

/// The account's MCP servers, with their connection status; secrets masked.
#[utoipa::path(get, path = "/v1/core/servers", tag = "tools",
    responses((status = 200, body = List<ServerView>), (status = 401)))]
pub async fn index(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
) -> Result<axum::Json<List<ServerView>>, ApiError> {
    let mut views = Vec::new();
    for server in store_tools::servers(state.db(), caller.org_id).await? {
        views.push(view(&state, server).await?);
    }
    Ok(list(views))
}

#[derive(Deserialize, ToSchema)]
pub struct AddServer {
    #[serde(alias = "serverName")]
    name: String,
    /// `http` or `stdio`; inferred from `url` or `command` when left out.
    #[serde(default)]
    transport: Option<String>,
    /// The streamable HTTP endpoint, e.g. `https://example.com/mcp`.
    #[serde(default)]
    url: Option<String>,
    /// Sent with every HTTP request (sealed at rest, masked in reads).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// The program to run (stdio).
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    /// The program's environment, on top of PATH, HOME and LANG (sealed, masked).
    #[serde(default)]
    env: BTreeMap<String, String>,
}

/// Add an MCP server; it is connected at once (`status` tells how that goes).
#[utoipa::path(post, path = "/v1/core/add/server", tag = "tools", request_body = AddServer,
    responses((status = 200, body = ServerView), (status = 400), (status = 401), (status = 403), (status = 409)))]
pub async fn add(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(body): Json<AddServer>,
) -> Result<axum::Json<ServerView>, ApiError> {
    let server_name = name("name", &body.name)?;
    let transport = match (body.transport.as_deref(), &body.url, &body.command) {
        (Some(t), _, _) => t.to_owned(),
        (None, Some(_), None) => "http".to_owned(),
        (None, None, Some(_)) => "stdio".to_owned(),
        _ => {
            return Err(ApiError::Validation(
                "give either url (streamable HTTP) or command (stdio)".into(),
            ))
        }
    };
    let mut allow_private = false;
    let (new, secrets) = match transport.as_str() {
        "http" => {
            let url = body.url.as_deref().map(str::trim).unwrap_or_default();
            let parsed = reqwest::Url::parse(url)
                .ok()
                .filter(|_| url.len() <= 2_000)
                .ok_or_else(|| ApiError::Validation("url must be an http(s) URL".into()))?;
            // Checked now and at every connection (see `crate::outbound`).
            let reach = state
                .outbound
                .reach_for(caller.role, state.config.mcp_allow_private);
            state.outbound.vet(&parsed, reach).await.map_err(refused)?;
            allow_private = reach.allows_private();
            if body.command.is_some() || !body.args.is_empty() || !body.env.is_empty() {
                return Err(ApiError::Validation(
                    "command, args and env are for stdio servers".into(),
                ));
            }
            check_headers(&body.headers)?;
            let new = store_tools::NewServer {
                name: server_name.clone(),
                transport,
                url: Some(url.to_owned()),
                command: None,
                args: Vec::new(),
                secrets_sealed: None,
                allow_private: false,
            };
            (new, body.headers)
        }
        "stdio" => {
            if caller.role != Role::Admin {
                return Err(ApiError::Forbidden(
                    "only admins may add stdio servers: they run a program on this server".into(),
                ));
            }
            if !state.config.allow_stdio_servers {
                return Err(ApiError::Forbidden(
                    "stdio servers are turned off on this server (--allow-stdio-servers)".into(),
                ));
            }
            let command = body.command.as_deref().map(str::trim).unwrap_or_default();
            if command.is_empty() || command.len() > 1_000 {
                return Err(ApiError::Validation("command is required for stdio".into()));
            }
            if body.url.is_some() || !body.headers.is_empty() {
                return Err(ApiError::Validation(
                    "url and headers are for http servers".into(),
                ));
            }
            if body.args.len() > MAX_ARGS || body.args.iter().any(|a| a.len() > 4_000) {
                return Err(ApiError::Validation(format!(
                    "at most {MAX_ARGS} args of 4,000 characters"
                )));
            }
            let new = store_tools::NewServer {
                name: server_name.clone(),
                transport,
                url: None,
                command: Some(command.to_owned()),
                args: body.args,
                secrets_sealed: None,
                allow_private: false,
            };
            (new, body.env)
        }
        other => {
            return Err(ApiError::Validation(format!(
                "transport must be http or stdio, not {other:?}"
            )))
        }
    };
    if secrets.len() > MAX_SECRETS
        || secrets
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 200 || v.len() > 8_000)
    {
        return Err(ApiError::Validation(format!(
            "at most {MAX_SECRETS} headers or variables, with names of 1 to 200 characters"
        )));
    }
    let new = store_tools::NewServer {
        secrets_sealed: (!secrets.is_empty()).then(|| {
            let json = serde_json::to_string(&secrets).expect("a map of strings serializes");
            state.sealer.seal(&json)
        }),
        allow_private,
        ..new
    };
    let server = match store_tools::insert_server(state.db(), caller.org_id, new).await {
        Ok(s) => s,
        Err(err) if store::is_unique_violation(&err) => {
            return Err(ApiError::Conflict(format!(
                "an MCP server named {server_name:?} exists"
            )))
        }
        Err(err) => return Err(err.into()),
    };
    state.tools.start_server(spec_of(&state, &server)?).await;
    Ok(axum::Json(view(&state, server).await?))
}

/// Delete an MCP server (it is disconnected); 409 while agents use its tools.
#[utoipa::path(post, path = "/v1/core/delete/server", tag = "tools", request_body = ByName,
    responses((status = 200, body = Removed), (status = 401), (status = 404), (status = 409)))]
pub async fn delete(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
    Json(body): Json<ByName>,
) -> Result<axum::Json<Removed>, ApiError> {
    let server = store_tools::server_by_name(state.db(), caller.org_id, body.name())
        .await?
        .ok_or_else(|| ApiError::not_found("MCP server"))?;
    let used = store_tools::agents_of_server(state.db(), server.id).await?;
    if used > 0 {
        return Err(ApiError::Conflict(format!(
            "MCP server {:?} is used by {used} agent(s); change them first",
            server.name
        )));
    }
    store_tools::delete_server(state.db(), server.id).await?;
    state.tools.stop_server(server.id);
    Ok(Removed::named(server.name))
}

#[derive(Serialize, ToSchema)]
pub struct ToolView {
    name: String,
    description: Option<String>,
    #[schema(value_type = Object)]
    input_schema: Value,
    /// The server's name.
    server: String,
    /// Whether its server is connected now.
    available: bool,
}

/// Every tool of the account's MCP servers (a server that is down shows the tools it last
/// listed, unavailable).
#[utoipa::path(get, path = "/v1/core/tools", tag = "tools",
    responses((status = 200, body = List<ToolView>), (status = 401)))]
pub async fn tools(
    State(state): State<AppState>,
    OrgAuth(caller): OrgAuth,
) -> Result<axum::Json<List<ToolView>>, ApiError> {
    let mut views = Vec::new();
    for server in store_tools::servers(state.db(), caller.org_id).await? {
        let status = state.tools.status(server.id).await;
        let available = status.state == "connected";
        for tool in status.tools.iter() {
            views.push(ToolView {
                name: tool.name.to_string(),
                description: tool.description.as_deref().map(str::to_owned),
                input_schema: Value::Object((*tool.input_schema).clone()),
                server: server.name.clone(),
                available,
            });
        }
    }
    Ok(list(views))
}
