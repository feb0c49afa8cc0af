//! MCP servers and the tools agents may use.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use super::entity::agent_tool::{self, Entity as AgentTools};
use super::entity::mcp_server::{self, Entity as Servers};

/// Every tool of a server, in `agent_tools.tool`.
pub const ALL_TOOLS: &str = "*";

pub struct NewServer {
    pub name: String,
    pub transport: String,
    pub url: Option<String>,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub secrets_sealed: Option<String>,
    /// May reach private addresses (see the server's outbound policy).
    pub allow_private: bool,
}

pub async fn insert_server(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    new: NewServer,
) -> Result<mcp_server::Model, DbErr> {
    mcp_server::ActiveModel {
        id: Set(Uuid::new_v4()),
        org_id: Set(org_id),
        name: Set(new.name),
        transport: Set(new.transport),
        url: Set(new.url),
        command: Set(new.command),
        args: Set(serde_json::json!(new.args)),
        secrets_sealed: Set(new.secrets_sealed),
        allow_private: Set(new.allow_private),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
}

/// The account's servers, by name.
pub async fn servers(
    db: &impl ConnectionTrait,
    org_id: Uuid,
) -> Result<Vec<mcp_server::Model>, DbErr> {
    Servers::find()
        .filter(mcp_server::Column::OrgId.eq(org_id))
        .order_by_asc(mcp_server::Column::Name)
        .all(db)
        .await
}

/// Every account's servers (to connect them at start).
pub async fn all_servers(db: &impl ConnectionTrait) -> Result<Vec<mcp_server::Model>, DbErr> {
    Servers::find().all(db).await
}

pub async fn server_by_name(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    name: &str,
) -> Result<Option<mcp_server::Model>, DbErr> {
    Servers::find()
        .filter(mcp_server::Column::OrgId.eq(org_id))
        .filter(mcp_server::Column::Name.eq(name))
        .one(db)
        .await
}

/// How many agents use one of the server's tools.
pub async fn agents_of_server(db: &impl ConnectionTrait, server_id: Uuid) -> Result<u64, DbErr> {
    AgentTools::find()
        .filter(agent_tool::Column::ServerId.eq(server_id))
        .count(db)
        .await
}

pub async fn delete_server(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    Servers::delete_by_id(id).exec(db).await.map(|_| ())
}

/// Replaces the tools an agent may use: (server, tool name or [`ALL_TOOLS`]).
pub async fn set_agent_tools(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
    tools: &[(Uuid, String)],
) -> Result<(), DbErr> {
    AgentTools::delete_many()
        .filter(agent_tool::Column::AgentId.eq(agent_id))
        .exec(db)
        .await?;
    if tools.is_empty() {
        return Ok(());
    }
    AgentTools::insert_many(
        tools
            .iter()
            .map(|(server_id, tool)| agent_tool::ActiveModel {
                agent_id: Set(agent_id),
                server_id: Set(*server_id),
                tool: Set(tool.clone()),
            }),
    )
    .exec(db)
    .await
    .map(|_| ())
}

/// The tools an agent may use, with their servers.
pub async fn agent_tools(
    db: &impl ConnectionTrait,
    agent_id: Uuid,
) -> Result<Vec<(agent_tool::Model, mcp_server::Model)>, DbErr> {
    let grants = AgentTools::find()
        .filter(agent_tool::Column::AgentId.eq(agent_id))
        .all(db)
        .await?;
    if grants.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = grants.iter().map(|g| g.server_id).collect();
    let servers = Servers::find()
        .filter(mcp_server::Column::Id.is_in(ids))
        .all(db)
        .await?;
    Ok(grants
        .into_iter()
        .filter_map(|g| {
            let server = servers.iter().find(|s| s.id == g.server_id)?.clone();
            Some((g, server))
        })
        .collect())
}
