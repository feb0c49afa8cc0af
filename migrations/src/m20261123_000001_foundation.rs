//! Organizations and their API tokens, squads and their agents, and the per-squad event log
//! that the live layer replays from.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use crate::util::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            // pgvector backs the knowledge bases; creating it here fails fast on a server without it.
            manager
                .get_connection()
                .execute_unprepared("CREATE EXTENSION IF NOT EXISTS vector")
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(pk_uuid(Organizations::Id))
                    .col(string_uniq(Organizations::Name))
                    .col(timestamp_with_time_zone(Organizations::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(pk_uuid(ApiTokens::Id))
                    .col(uuid(ApiTokens::OrgId))
                    .col(string(ApiTokens::Name))
                    .col(string(ApiTokens::Role))
                    .col(string(ApiTokens::Prefix))
                    .col(string_uniq(ApiTokens::TokenHash))
                    .col(string(ApiTokens::Status))
                    .col(timestamp_with_time_zone(ApiTokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiTokens::RevokedAt))
                    .col(timestamp_with_time_zone_null(ApiTokens::LastUsedAt))
                    .col(big_integer(ApiTokens::Calls).default(0))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiTokens::Table, ApiTokens::OrgId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_api_tokens_org",
            ApiTokens::Table,
            &[ApiTokens::OrgId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Squads::Table)
                    .col(pk_uuid(Squads::Id))
                    .col(uuid(Squads::OrgId))
                    .col(string(Squads::Name))
                    .col(text_null(Squads::Description))
                    .col(string_null(Squads::Workflow))
                    .col(timestamp_with_time_zone(Squads::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Squads::Table, Squads::OrgId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(manager, "idx_squads_org", Squads::Table, &[Squads::OrgId]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Agents::Table)
                    .col(pk_uuid(Agents::Id))
                    .col(uuid(Agents::SquadId))
                    .col(uuid(Agents::OrgId))
                    .col(string(Agents::Name))
                    // Names are unique per squad regardless of case: `@writer` and `@Writer` are one agent.
                    .col(string(Agents::NameKey))
                    .col(string(Agents::Role))
                    .col(text(Agents::Personality))
                    .col(json(Agents::Expertise))
                    .col(string(Agents::Status))
                    .col(integer(Agents::HeartbeatIntervalSecs))
                    .col(timestamp_with_time_zone_null(Agents::LastHeartbeatAt))
                    .col(timestamp_with_time_zone(Agents::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Agents::Table, Agents::SquadId)
                            .to(Squads::Table, Squads::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_agents_squad_name")
                    .table(Agents::Table)
                    .col(Agents::SquadId)
                    .col(Agents::NameKey)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(pk_uuid(Events::Id))
                    .col(uuid(Events::SquadId))
                    .col(big_integer(Events::Seq))
                    .col(string(Events::Kind))
                    .col(json(Events::Data))
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Events::Table, Events::SquadId)
                            .to(Squads::Table, Squads::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One sequence per squad, no gaps and no duplicates: replay with `since` depends on it.
        manager
            .create_index(
                Index::create()
                    .name("uq_events_squad_seq")
                    .table(Events::Table)
                    .col(Events::SquadId)
                    .col(Events::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Events::Table.into_iden(),
            Agents::Table.into_iden(),
            Squads::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Organizations {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiTokens {
    Table,
    Id,
    OrgId,
    Name,
    Role,
    Prefix,
    TokenHash,
    Status,
    CreatedAt,
    RevokedAt,
    LastUsedAt,
    Calls,
}

#[derive(DeriveIden, Clone, Copy)]
enum Squads {
    Table,
    Id,
    OrgId,
    Name,
    Description,
    Workflow,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Agents {
    Table,
    Id,
    SquadId,
    OrgId,
    Name,
    NameKey,
    Role,
    Personality,
    Expertise,
    Status,
    HeartbeatIntervalSecs,
    LastHeartbeatAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Events {
    Table,
    Id,
    SquadId,
    Seq,
    Kind,
    Data,
    CreatedAt,
}
