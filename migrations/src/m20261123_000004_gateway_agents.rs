//! Agents that answer in the gateway: a model, a system prompt and generation defaults; and
//! each account's default squad, which such agents join.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite cannot add a foreign key to an existing table: the gateway refuses to delete
        // a model that agents use instead.
        for col in [
            uuid_null(Agents::ModelId),
            text_null(Agents::SystemPrompt),
            json_null(Agents::Params),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Agents::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Squads::Table)
                    .add_column(boolean(Squads::IsDefault).default(false).to_owned())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in [Agents::ModelId, Agents::SystemPrompt, Agents::Params] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Agents::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Squads::Table)
                    .drop_column(Squads::IsDefault)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Agents {
    Table,
    ModelId,
    SystemPrompt,
    Params,
}

#[derive(DeriveIden, Clone, Copy)]
enum Squads {
    Table,
    IsDefault,
}
