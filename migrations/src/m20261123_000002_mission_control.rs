//! Mission Control: setup tokens and keys, agent identity and presence, tasks, their
//! assignees, comments, thread subscriptions and notifications, documents and watch items.
//! The activity feed is the event log itself; it needs no table of its own.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{index, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One-time setup token (hash) and its expiry; `setup_used_at` makes it single-use.
        for col in [
            string_null(Squads::SetupTokenHash),
            timestamp_with_time_zone_null(Squads::SetupExpiresAt),
            timestamp_with_time_zone_null(Squads::SetupUsedAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Squads::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        for col in [
            text(Agents::SoulMd).default("").to_owned(),
            string(Agents::SoulMdHash).default("").to_owned(),
            integer(Agents::HeartbeatOffset).default(0).to_owned(),
            uuid_null(Agents::CurrentTaskId),
            timestamp_with_time_zone_null(Agents::ActivatedAt),
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
            .create_table(
                Table::create()
                    .table(SquadKeys::Table)
                    .col(pk_uuid(SquadKeys::Id))
                    .col(uuid(SquadKeys::OrgId))
                    .col(uuid(SquadKeys::SquadId))
                    // NULL for the squad's own key, which may act as any of its agents.
                    .col(uuid_null(SquadKeys::AgentId))
                    .col(string(SquadKeys::Prefix))
                    .col(string_uniq(SquadKeys::KeyHash))
                    .col(timestamp_with_time_zone(SquadKeys::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SquadKeys::Table, SquadKeys::SquadId)
                            .to(Squads::Table, Squads::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SquadKeys::Table, SquadKeys::AgentId)
                            .to(Agents::Table, Agents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .col(pk_uuid(Tasks::Id))
                    .col(uuid(Tasks::SquadId))
                    .col(string(Tasks::Title))
                    .col(text(Tasks::Description))
                    .col(string(Tasks::Status))
                    .col(string(Tasks::Priority))
                    .col(integer(Tasks::Position))
                    .col(uuid_null(Tasks::CreatedBy))
                    .col(uuid_null(Tasks::ClaimedBy))
                    .col(timestamp_with_time_zone(Tasks::CreatedAt))
                    .col(timestamp_with_time_zone(Tasks::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Tasks::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Tasks::Table, Tasks::SquadId)
                            .to(Squads::Table, Squads::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_tasks_squad_status",
            Tasks::Table,
            &[Tasks::SquadId, Tasks::Status],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(TaskAssignees::Table)
                    .col(pk_uuid(TaskAssignees::Id))
                    .col(uuid(TaskAssignees::TaskId))
                    .col(uuid(TaskAssignees::AgentId))
                    .col(timestamp_with_time_zone(TaskAssignees::AssignedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(TaskAssignees::Table, TaskAssignees::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(TaskAssignees::Table, TaskAssignees::AgentId)
                            .to(Agents::Table, Agents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_task_assignees",
            TaskAssignees::Table,
            &[TaskAssignees::TaskId, TaskAssignees::AgentId],
        )
        .await?;
        index(
            manager,
            "idx_task_assignees_agent",
            TaskAssignees::Table,
            &[TaskAssignees::AgentId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Comments::Table)
                    .col(pk_uuid(Comments::Id))
                    .col(uuid(Comments::TaskId))
                    .col(uuid(Comments::SquadId))
                    .col(uuid_null(Comments::FromAgentId))
                    .col(boolean(Comments::FromHuman))
                    .col(text(Comments::Content))
                    .col(timestamp_with_time_zone(Comments::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Comments::Table, Comments::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_comments_task",
            Comments::Table,
            &[Comments::TaskId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(TaskSubscriptions::Table)
                    .col(pk_uuid(TaskSubscriptions::Id))
                    .col(uuid(TaskSubscriptions::TaskId))
                    .col(uuid(TaskSubscriptions::AgentId))
                    .col(timestamp_with_time_zone(TaskSubscriptions::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(TaskSubscriptions::Table, TaskSubscriptions::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(TaskSubscriptions::Table, TaskSubscriptions::AgentId)
                            .to(Agents::Table, Agents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_task_subscriptions",
            TaskSubscriptions::Table,
            &[TaskSubscriptions::TaskId, TaskSubscriptions::AgentId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(pk_uuid(Notifications::Id))
                    .col(uuid(Notifications::SquadId))
                    .col(uuid(Notifications::AgentId))
                    .col(uuid_null(Notifications::TaskId))
                    .col(uuid_null(Notifications::MessageId))
                    .col(string(Notifications::Kind))
                    .col(text(Notifications::Content))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .col(timestamp_with_time_zone_null(Notifications::DeliveredAt))
                    .col(timestamp_with_time_zone_null(Notifications::FailedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Notifications::Table, Notifications::SquadId)
                            .to(Squads::Table, Squads::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Notifications::Table, Notifications::AgentId)
                            .to(Agents::Table, Agents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_notifications_agent_pending",
            Notifications::Table,
            &[Notifications::AgentId, Notifications::DeliveredAt],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Documents::Table)
                    .col(pk_uuid(Documents::Id))
                    .col(uuid(Documents::SquadId))
                    .col(string(Documents::Title))
                    .col(text(Documents::Content))
                    .col(string(Documents::Kind))
                    .col(uuid_null(Documents::TaskId))
                    .col(uuid_null(Documents::CreatedBy))
                    .col(timestamp_with_time_zone(Documents::CreatedAt))
                    .col(timestamp_with_time_zone(Documents::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Documents::Table, Documents::SquadId)
                            .to(Squads::Table, Squads::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_documents_squad",
            Documents::Table,
            &[Documents::SquadId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(WatchItems::Table)
                    .col(pk_uuid(WatchItems::Id))
                    .col(uuid(WatchItems::SquadId))
                    .col(string(WatchItems::Title))
                    .col(text(WatchItems::Description))
                    .col(string(WatchItems::Status))
                    .col(string_null(WatchItems::Url))
                    .col(timestamp_with_time_zone(WatchItems::CreatedAt))
                    .col(timestamp_with_time_zone(WatchItems::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WatchItems::Table, WatchItems::SquadId)
                            .to(Squads::Table, Squads::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_watch_items_squad",
            WatchItems::Table,
            &[WatchItems::SquadId],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WatchItems::Table.into_iden(),
            Documents::Table.into_iden(),
            Notifications::Table.into_iden(),
            TaskSubscriptions::Table.into_iden(),
            Comments::Table.into_iden(),
            TaskAssignees::Table.into_iden(),
            Tasks::Table.into_iden(),
            SquadKeys::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Squads {
    Table,
    Id,
    SetupTokenHash,
    SetupExpiresAt,
    SetupUsedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Agents {
    Table,
    Id,
    SoulMd,
    SoulMdHash,
    HeartbeatOffset,
    CurrentTaskId,
    ActivatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SquadKeys {
    Table,
    Id,
    OrgId,
    SquadId,
    AgentId,
    Prefix,
    KeyHash,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tasks {
    Table,
    Id,
    SquadId,
    Title,
    Description,
    Status,
    Priority,
    Position,
    CreatedBy,
    ClaimedBy,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum TaskAssignees {
    Table,
    Id,
    TaskId,
    AgentId,
    AssignedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Comments {
    Table,
    Id,
    TaskId,
    SquadId,
    FromAgentId,
    FromHuman,
    Content,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum TaskSubscriptions {
    Table,
    Id,
    TaskId,
    AgentId,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Notifications {
    Table,
    Id,
    SquadId,
    AgentId,
    TaskId,
    MessageId,
    Kind,
    Content,
    CreatedAt,
    DeliveredAt,
    FailedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Documents {
    Table,
    Id,
    SquadId,
    Title,
    Content,
    Kind,
    TaskId,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WatchItems {
    Table,
    Id,
    SquadId,
    Title,
    Description,
    Status,
    Url,
    CreatedAt,
    UpdatedAt,
}
