//! Which stored upstreams may reach private addresses: granted when an admin stores one
//! (unless the operator forbids it), checked again at every call (see `src/outbound.rs`).
//! Rows from before default to no: a member's old provider at 127.0.0.1 stops working.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Providers::Table)
                    .add_column(boolean(Providers::AllowPrivate).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(McpServers::Table)
                    .add_column(boolean(McpServers::AllowPrivate).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(McpServers::Table)
                    .drop_column(McpServers::AllowPrivate)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Providers::Table)
                    .drop_column(Providers::AllowPrivate)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Providers {
    Table,
    AllowPrivate,
}

#[derive(DeriveIden)]
enum McpServers {
    Table,
    AllowPrivate,
}
