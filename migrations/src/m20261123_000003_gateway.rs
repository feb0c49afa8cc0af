//! The gateway: upstream providers (their secrets encrypted) and the account's models.

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
                    .table(Providers::Table)
                    .col(pk_uuid(Providers::Id))
                    .col(uuid(Providers::OrgId))
                    .col(string(Providers::Name))
                    .col(string(Providers::BaseUrl))
                    // Sealed with the server's secret key; never stored or shown in the clear.
                    .col(text_null(Providers::ApiKeySealed))
                    .col(text_null(Providers::HeadersSealed))
                    .col(timestamp_with_time_zone(Providers::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Providers::Table, Providers::OrgId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_providers_org_name",
            Providers::Table,
            &[Providers::OrgId, Providers::Name],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Models::Table)
                    .col(pk_uuid(Models::Id))
                    .col(uuid(Models::OrgId))
                    .col(string(Models::Name))
                    .col(uuid(Models::ProviderId))
                    .col(string(Models::UpstreamModel))
                    // `chat` or `embedding`.
                    .col(string(Models::Kind))
                    .col(integer_null(Models::Dimensions))
                    .col(timestamp_with_time_zone(Models::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Models::Table, Models::OrgId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    // A provider that models use cannot be deleted (the API says 409 first).
                    .foreign_key(
                        ForeignKey::create()
                            .from(Models::Table, Models::ProviderId)
                            .to(Providers::Table, Providers::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_models_org_name",
            Models::Table,
            &[Models::OrgId, Models::Name],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [Models::Table.into_iden(), Providers::Table.into_iden()] {
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
}

#[derive(DeriveIden, Clone, Copy)]
enum Providers {
    Table,
    Id,
    OrgId,
    Name,
    BaseUrl,
    ApiKeySealed,
    HeadersSealed,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Models {
    Table,
    Id,
    OrgId,
    Name,
    ProviderId,
    UpstreamModel,
    Kind,
    Dimensions,
    CreatedAt,
}
