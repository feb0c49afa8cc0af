//! Knowledge: uploaded files, vector stores (SquadOS knowledge bases are the same rows), the
//! files in each store with their ingest state (a base's items are the same rows), the
//! chunks with their vectors, and the bases each agent consults. On
//! PostgreSQL a chunk's vector is a pgvector column (indexed per dimension when a store of
//! that dimension first appears); on SQLite it is a little-endian f32 blob.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use crate::util::{index, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Files::Table)
                    .col(pk_uuid(Files::Id))
                    .col(uuid(Files::OrgId))
                    .col(string(Files::Filename))
                    .col(string(Files::Purpose))
                    .col(big_integer(Files::Bytes))
                    .col(string(Files::ObjectKey))
                    .col(timestamp_with_time_zone(Files::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_files_org",
            Files::Table,
            &[Files::OrgId, Files::CreatedAt],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(VectorStores::Table)
                    .col(pk_uuid(VectorStores::Id))
                    .col(uuid(VectorStores::OrgId))
                    .col(string(VectorStores::Name))
                    .col(text(VectorStores::Description))
                    .col(uuid(VectorStores::ModelId))
                    .col(integer_null(VectorStores::Dimensions))
                    .col(json(VectorStores::Metadata))
                    .col(json_null(VectorStores::ExpiresAfter))
                    .col(timestamp_with_time_zone_null(VectorStores::ExpiresAt))
                    .col(timestamp_with_time_zone(VectorStores::LastActiveAt))
                    .col(timestamp_with_time_zone(VectorStores::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_vector_stores_org",
            VectorStores::Table,
            &[VectorStores::OrgId, VectorStores::CreatedAt],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(VectorStoreFiles::Table)
                    .col(pk_uuid(VectorStoreFiles::Id))
                    .col(uuid(VectorStoreFiles::VectorStoreId))
                    .col(uuid(VectorStoreFiles::FileId))
                    .col(uuid(VectorStoreFiles::OrgId))
                    // `in_progress`, `completed`, `failed` or `cancelled`.
                    .col(string(VectorStoreFiles::Status))
                    .col(json(VectorStoreFiles::ChunkingStrategy))
                    .col(json(VectorStoreFiles::Attributes))
                    // A knowledge base item's title, and whether it was given as `text` or
                    // as a `file`.
                    .col(string(VectorStoreFiles::Title))
                    .col(string(VectorStoreFiles::Source))
                    .col(big_integer(VectorStoreFiles::UsageBytes))
                    .col(integer(VectorStoreFiles::ChunkCount))
                    .col(json_null(VectorStoreFiles::LastError))
                    .col(timestamp_with_time_zone(VectorStoreFiles::CreatedAt))
                    .col(timestamp_with_time_zone(VectorStoreFiles::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(VectorStoreFiles::Table, VectorStoreFiles::VectorStoreId)
                            .to(VectorStores::Table, VectorStores::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(VectorStoreFiles::Table, VectorStoreFiles::FileId)
                            .to(Files::Table, Files::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_vector_store_files",
            VectorStoreFiles::Table,
            &[VectorStoreFiles::VectorStoreId, VectorStoreFiles::FileId],
        )
        .await?;
        index(
            manager,
            "idx_vector_store_files_status",
            VectorStoreFiles::Table,
            &[VectorStoreFiles::Status],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(Chunks::Table)
                    .col(pk_uuid(Chunks::Id))
                    .col(uuid(Chunks::VectorStoreId))
                    .col(uuid(Chunks::FileId))
                    .col(integer(Chunks::Seq))
                    .col(text(Chunks::Text))
                    .col(integer(Chunks::Tokens))
                    .col(integer(Chunks::Dims))
                    .col(blob_null(Chunks::Embedding))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Chunks::Table, Chunks::VectorStoreId)
                            .to(VectorStores::Table, VectorStores::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_chunks_store_file_seq",
            Chunks::Table,
            &[Chunks::VectorStoreId, Chunks::FileId, Chunks::Seq],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(VectorStoreFileBatches::Table)
                    .col(pk_uuid(VectorStoreFileBatches::Id))
                    .col(uuid(VectorStoreFileBatches::VectorStoreId))
                    // The files of the batch, as a JSON array of UUIDs.
                    .col(json(VectorStoreFileBatches::FileIds))
                    .col(timestamp_with_time_zone(VectorStoreFileBatches::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                VectorStoreFileBatches::Table,
                                VectorStoreFileBatches::VectorStoreId,
                            )
                            .to(VectorStores::Table, VectorStores::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AgentKnowledge::Table)
                    .col(uuid(AgentKnowledge::AgentId))
                    .col(uuid(AgentKnowledge::VectorStoreId))
                    .primary_key(
                        Index::create()
                            .col(AgentKnowledge::AgentId)
                            .col(AgentKnowledge::VectorStoreId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(AgentKnowledge::Table, AgentKnowledge::AgentId)
                            .to(Agents::Table, Agents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(AgentKnowledge::Table, AgentKnowledge::VectorStoreId)
                            .to(VectorStores::Table, VectorStores::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            // Dimensionless, so stores of any model share the table; each dimension gets its
            // own partial HNSW index over `vec::vector(d)` when first used.
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE chunks ADD COLUMN vec vector")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AgentKnowledge::Table.into_iden(),
            VectorStoreFileBatches::Table.into_iden(),
            Chunks::Table.into_iden(),
            VectorStoreFiles::Table.into_iden(),
            VectorStores::Table.into_iden(),
            Files::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Files {
    Table,
    Id,
    OrgId,
    Filename,
    Purpose,
    Bytes,
    ObjectKey,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum VectorStores {
    Table,
    Id,
    OrgId,
    Name,
    Description,
    ModelId,
    Dimensions,
    Metadata,
    ExpiresAfter,
    ExpiresAt,
    LastActiveAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum VectorStoreFiles {
    Table,
    Id,
    VectorStoreId,
    FileId,
    OrgId,
    Status,
    ChunkingStrategy,
    Attributes,
    Title,
    Source,
    UsageBytes,
    ChunkCount,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Chunks {
    Table,
    Id,
    VectorStoreId,
    FileId,
    Seq,
    Text,
    Tokens,
    Dims,
    Embedding,
}

#[derive(DeriveIden, Clone, Copy)]
enum AgentKnowledge {
    Table,
    AgentId,
    VectorStoreId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Agents {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum VectorStoreFileBatches {
    Table,
    Id,
    VectorStoreId,
    FileIds,
    CreatedAt,
}
