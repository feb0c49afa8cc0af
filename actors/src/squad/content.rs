//! Documents (deliverables, research, protocols, drafts) and watch items of the squad.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::json;
use uuid::Uuid;

use super::{Author, SquadState};
use crate::domain::{DocKind, WatchStatus};
use crate::store::entity::{document, watch_item};
use crate::{store, CoreError};

/// A document's fields; on create `title` and `kind` are required, on update all optional.
#[derive(Clone, Debug, Default)]
pub struct DocFields {
    pub title: Option<String>,
    pub content: Option<String>,
    pub kind: Option<DocKind>,
    /// `Some(None)` detaches it from its task.
    pub task_id: Option<Option<Uuid>>,
}

#[derive(Clone, Debug, Default)]
pub struct WatchFields {
    pub title: Option<String>,
    pub description: Option<String>,
    pub status: Option<WatchStatus>,
    pub url: Option<Option<String>>,
}

impl SquadState {
    async fn check_task(&self, task_id: Option<Option<Uuid>>) -> Result<(), CoreError> {
        if let Some(Some(id)) = task_id {
            if store::tasks::get(&self.shared.db, self.squad.id, id)
                .await?
                .is_none()
            {
                return Err(CoreError::Invalid(format!(
                    "task_id {id} is not a task of this squad"
                )));
            }
        }
        Ok(())
    }

    pub(super) async fn save_document(
        &mut self,
        by: Author,
        id: Option<Uuid>,
        fields: DocFields,
    ) -> Result<document::Model, CoreError> {
        self.check_task(fields.task_id).await?;
        let now = Utc::now();
        let mut active = match id {
            Some(id) => {
                let doc = store::content::document(&self.shared.db, self.squad.id, id)
                    .await?
                    .ok_or(CoreError::NotFound("document"))?;
                document::ActiveModel::from(doc)
            }
            None => document::ActiveModel {
                id: Set(Uuid::new_v4()),
                squad_id: Set(self.squad.id),
                content: Set(String::new()),
                task_id: Set(None),
                created_by: Set(by.agent_id()),
                created_at: Set(now),
                ..Default::default()
            },
        };
        if let Some(title) = fields.title {
            active.title = Set(title);
        }
        if let Some(content) = fields.content {
            active.content = Set(content);
        }
        if let Some(kind) = fields.kind {
            active.kind = Set(kind.as_str().to_owned());
        }
        if let Some(task_id) = fields.task_id {
            active.task_id = Set(task_id);
        }
        active.updated_at = Set(now);
        let txn = store::begin_write(&self.shared.db).await?;
        let doc = if id.is_some() {
            active.update(&txn).await?
        } else {
            active.insert(&txn).await?
        };
        let (kind, verb) = if id.is_some() {
            ("document.updated", "updated")
        } else {
            ("document.created", "wrote")
        };
        let event = json!({
            "message": format!("{} {verb} {} \"{}\"", by.name(), doc.kind, doc.title),
            "by": by.json(),
            "document": { "id": doc.id, "title": doc.title, "type": doc.kind, "task_id": doc.task_id },
        });
        self.commit(txn, vec![(kind, event)]).await?;
        Ok(doc)
    }

    pub(super) async fn delete_document(
        &mut self,
        by: Author,
        id: Uuid,
    ) -> Result<document::Model, CoreError> {
        let doc = store::content::document(&self.shared.db, self.squad.id, id)
            .await?
            .ok_or(CoreError::NotFound("document"))?;
        let txn = store::begin_write(&self.shared.db).await?;
        document::Entity::delete_by_id(id).exec(&txn).await?;
        let event = json!({
            "message": format!("{} deleted \"{}\"", by.name(), doc.title),
            "by": by.json(),
            "document": { "id": doc.id, "title": doc.title, "type": doc.kind },
        });
        self.commit(txn, vec![("document.deleted", event)]).await?;
        Ok(doc)
    }

    pub(super) async fn save_watch_item(
        &mut self,
        by: Author,
        id: Option<Uuid>,
        fields: WatchFields,
    ) -> Result<watch_item::Model, CoreError> {
        let now = Utc::now();
        let mut active = match id {
            Some(id) => {
                let item = store::content::watch_item(&self.shared.db, self.squad.id, id)
                    .await?
                    .ok_or(CoreError::NotFound("watch item"))?;
                watch_item::ActiveModel::from(item)
            }
            None => watch_item::ActiveModel {
                id: Set(Uuid::new_v4()),
                squad_id: Set(self.squad.id),
                description: Set(String::new()),
                status: Set(WatchStatus::Watching.as_str().to_owned()),
                url: Set(None),
                created_at: Set(now),
                ..Default::default()
            },
        };
        if let Some(title) = fields.title {
            active.title = Set(title);
        }
        if let Some(description) = fields.description {
            active.description = Set(description);
        }
        if let Some(status) = fields.status {
            active.status = Set(status.as_str().to_owned());
        }
        if let Some(url) = fields.url {
            active.url = Set(url);
        }
        active.updated_at = Set(now);
        let txn = store::begin_write(&self.shared.db).await?;
        let item = if id.is_some() {
            active.update(&txn).await?
        } else {
            active.insert(&txn).await?
        };
        let (kind, verb) = if id.is_some() {
            ("watch_item.updated", "updated")
        } else {
            ("watch_item.created", "started watching")
        };
        let event = json!({
            "message": format!("{} {verb} \"{}\"", by.name(), item.title),
            "by": by.json(),
            "watch_item": { "id": item.id, "title": item.title, "status": item.status, "url": item.url },
        });
        self.commit(txn, vec![(kind, event)]).await?;
        Ok(item)
    }

    pub(super) async fn delete_watch_item(
        &mut self,
        by: Author,
        id: Uuid,
    ) -> Result<watch_item::Model, CoreError> {
        let item = store::content::watch_item(&self.shared.db, self.squad.id, id)
            .await?
            .ok_or(CoreError::NotFound("watch item"))?;
        let txn = store::begin_write(&self.shared.db).await?;
        watch_item::Entity::delete_by_id(id).exec(&txn).await?;
        let event = json!({
            "message": format!("{} stopped watching \"{}\"", by.name(), item.title),
            "by": by.json(),
            "watch_item": { "id": item.id, "title": item.title },
        });
        self.commit(txn, vec![("watch_item.deleted", event)])
            .await?;
        Ok(item)
    }
}
