//! Agent tools: the account's MCP servers, and which of their tools each agent may use.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::unique;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(McpServers::Table)
                    .col(pk_uuid(McpServers::Id))
                    .col(uuid(McpServers::OrgId))
                    .col(string(McpServers::Name))
                    // `http` (streamable HTTP) or `stdio` (a program the server runs).
                    .col(string(McpServers::Transport))
                    .col(text_null(McpServers::Url))
                    .col(text_null(McpServers::Command))
                    .col(json(McpServers::Args))
                    // HTTP headers or the program's environment, as a JSON object, sealed.
                    .col(text_null(McpServers::SecretsSealed))
                    .col(timestamp_with_time_zone(McpServers::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(McpServers::Table, McpServers::OrgId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_mcp_servers_org_name",
            McpServers::Table,
            &[McpServers::OrgId, McpServers::Name],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AgentTools::Table)
                    .col(uuid(AgentTools::AgentId))
                    .col(uuid(AgentTools::ServerId))
                    // One tool's name, or `*` for all of the server's tools.
                    .col(string(AgentTools::Tool))
                    .primary_key(
                        Index::create()
                            .col(AgentTools::AgentId)
                            .col(AgentTools::ServerId)
                            .col(AgentTools::Tool),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(AgentTools::Table, AgentTools::AgentId)
                            .to(Agents::Table, Agents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    // A server agents use cannot be deleted (the API says 409 first).
                    .foreign_key(
                        ForeignKey::create()
                            .from(AgentTools::Table, AgentTools::ServerId)
                            .to(McpServers::Table, McpServers::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;

        // The tool calls and results that led to an agent's reply, as OpenAI messages.
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(json_null(Messages::Steps))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(Messages::Steps)
                    .to_owned(),
            )
            .await?;
        for table in [AgentTools::Table.into_iden(), McpServers::Table.into_iden()] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum McpServers {
    Table,
    Id,
    OrgId,
    Name,
    Transport,
    Url,
    Command,
    Args,
    SecretsSealed,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AgentTools {
    Table,
    AgentId,
    ServerId,
    Tool,
}

#[derive(DeriveIden, Clone, Copy)]
enum Agents {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Messages {
    Table,
    Steps,
}
