//! The board: tasks, atomic claims, assignees, comments with @mentions, and the notifications
//! they cause. Rules: never notify the author, never for a `done` task; the author, the
//! mentioned and the assigned are subscribed to the thread, and subscribers hear of comments.

use std::collections::HashSet;

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{task_brief, AgentRef, Author, Events, SquadState};
use crate::agent::AgentMsg;
use crate::domain::{Mentions, Priority, TaskStatus};
use crate::store::entity::{comment, notification, task, task_assignee, task_subscription};
use crate::{store, CoreError};

#[derive(Clone, Debug)]
pub struct NewTask {
    pub title: String,
    pub description: String,
    pub priority: Priority,
    pub assignees: Vec<AgentRef>,
}

#[derive(Clone, Debug, Default)]
pub struct TaskPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub status: Option<TaskStatus>,
    pub priority: Option<Priority>,
    pub position: Option<i32>,
}

fn refs(agents: &[AgentRef]) -> Value {
    json!(agents
        .iter()
        .map(|a| json!({ "id": a.id, "name": a.name }))
        .collect::<Vec<_>>())
}

impl SquadState {
    async fn task(&self, id: Uuid) -> Result<task::Model, CoreError> {
        store::tasks::get(&self.shared.db, self.squad.id, id)
            .await?
            .ok_or(CoreError::NotFound("task"))
    }

    /// Subscribes agents to a task's thread (already subscribed ones are left alone).
    async fn subscribe(
        &self,
        txn: &DatabaseTransaction,
        task_id: Uuid,
        agents: &[Uuid],
    ) -> Result<(), CoreError> {
        let existing: HashSet<Uuid> = store::tasks::subscribers(txn, task_id)
            .await?
            .into_iter()
            .collect();
        let now = Utc::now();
        let new: Vec<_> = agents
            .iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .filter(|a| !existing.contains(a))
            .map(|&agent_id| task_subscription::ActiveModel {
                id: Set(Uuid::new_v4()),
                task_id: Set(task_id),
                agent_id: Set(agent_id),
                created_at: Set(now),
            })
            .collect();
        if !new.is_empty() {
            task_subscription::Entity::insert_many(new)
                .exec(txn)
                .await?;
        }
        Ok(())
    }

    /// Stores a notification for each recipient (never the author, never for a done task)
    /// and adds a `notification.created` event for each.
    #[allow(clippy::too_many_arguments)]
    async fn notifications(
        &self,
        txn: &DatabaseTransaction,
        task: &task::Model,
        by: &Author,
        recipients: &[AgentRef],
        kind: &str,
        content: &str,
        message_id: Option<Uuid>,
        events: &mut Events,
    ) -> Result<Vec<notification::Model>, CoreError> {
        if task.status == TaskStatus::Done.as_str() {
            return Ok(Vec::new());
        }
        let mut stored = Vec::new();
        for agent in recipients.iter().filter(|a| Some(a.id) != by.agent_id()) {
            let n = notification::ActiveModel {
                id: Set(Uuid::new_v4()),
                squad_id: Set(self.squad.id),
                agent_id: Set(agent.id),
                task_id: Set(Some(task.id)),
                message_id: Set(message_id),
                kind: Set(kind.to_owned()),
                content: Set(content.to_owned()),
                created_at: Set(Utc::now()),
                delivered_at: Set(None),
                failed_at: Set(None),
            }
            .insert(txn)
            .await?;
            events.push((
                "notification.created",
                json!({
                    "message": format!("{} was notified ({kind})", agent.name),
                    "by": by.json(),
                    "task": task_brief(task),
                    "agent": { "id": agent.id, "name": agent.name },
                    "notification": crate::agent::view(&n),
                }),
            ));
            stored.push(n);
        }
        Ok(stored)
    }

    /// Notifications for agents just assigned to `task` (the author excepted, as always).
    async fn notify_assigned(
        &self,
        txn: &DatabaseTransaction,
        task: &task::Model,
        by: &Author,
        assigned: &[AgentRef],
        events: &mut Events,
    ) -> Result<Vec<notification::Model>, CoreError> {
        let content = format!("You were assigned to \"{}\"", task.title);
        self.notifications(
            txn,
            task,
            by,
            assigned,
            "assignment",
            &content,
            None,
            events,
        )
        .await
    }

    /// Adds assignees not yet on the task; returns the ones added.
    async fn add_assignees(
        &self,
        txn: &DatabaseTransaction,
        task_id: Uuid,
        agents: &[AgentRef],
    ) -> Result<Vec<AgentRef>, CoreError> {
        let current = store::tasks::assignees(txn, &[task_id]).await?;
        let current: HashSet<Uuid> = current
            .get(&task_id)
            .into_iter()
            .flatten()
            .map(|(_, a)| a.id)
            .collect();
        let mut added: Vec<AgentRef> = Vec::new();
        for agent in agents {
            if current.contains(&agent.id) || added.contains(agent) {
                continue;
            }
            task_assignee::ActiveModel {
                id: Set(Uuid::new_v4()),
                task_id: Set(task_id),
                agent_id: Set(agent.id),
                assigned_at: Set(Utc::now()),
            }
            .insert(txn)
            .await?;
            added.push(agent.clone());
        }
        let ids: Vec<Uuid> = added.iter().map(|a| a.id).collect();
        self.subscribe(txn, task_id, &ids).await?;
        Ok(added)
    }

    pub(super) async fn create_task(
        &mut self,
        by: Author,
        new: NewTask,
    ) -> Result<task::Model, CoreError> {
        let txn = store::begin_write(&self.shared.db).await?;
        let status = TaskStatus::Inbox.as_str();
        let position = store::tasks::max_position(&txn, self.squad.id, status)
            .await?
            .map_or(0, |p| p + 1);
        let now = Utc::now();
        let task = task::ActiveModel {
            id: Set(Uuid::new_v4()),
            squad_id: Set(self.squad.id),
            title: Set(new.title),
            description: Set(new.description),
            status: Set(status.to_owned()),
            priority: Set(new.priority.as_str().to_owned()),
            position: Set(position),
            created_by: Set(by.agent_id()),
            claimed_by: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            deleted_at: Set(None),
        }
        .insert(&txn)
        .await?;
        if let Some(author) = by.agent_id() {
            self.subscribe(&txn, task.id, &[author]).await?;
        }
        let added = self.add_assignees(&txn, task.id, &new.assignees).await?;
        let mut events: Events = vec![(
            "task.created",
            json!({
                "message": format!("{} created task \"{}\"", by.name(), task.title),
                "by": by.json(),
                "task": { "id": task.id, "title": task.title, "status": task.status, "priority": task.priority },
                "assignees": refs(&added),
            }),
        )];
        let notes = self
            .notify_assigned(&txn, &task, &by, &added, &mut events)
            .await?;
        self.commit_and_notify(txn, events, notes).await?;
        Ok(task)
    }

    pub(super) async fn update_task(
        &mut self,
        by: Author,
        id: Uuid,
        patch: TaskPatch,
    ) -> Result<task::Model, CoreError> {
        let before = self.task(id).await?;
        let mut active: task::ActiveModel = before.clone().into();
        let mut changed = Vec::new();
        if let Some(title) = patch.title {
            active.title = Set(title);
            changed.push("title");
        }
        if let Some(description) = patch.description {
            active.description = Set(description);
            changed.push("description");
        }
        if let Some(priority) = patch.priority {
            active.priority = Set(priority.as_str().to_owned());
            changed.push("priority");
        }
        let txn = store::begin_write(&self.shared.db).await?;
        let new_status = patch
            .status
            .map(|s| s.as_str())
            .filter(|s| *s != before.status);
        if let Some(status) = new_status {
            active.status = Set(status.to_owned());
            // A moved card goes to the end of its new column unless a position is given.
            let end = store::tasks::max_position(&txn, self.squad.id, status)
                .await?
                .map_or(0, |p| p + 1);
            active.position = Set(end);
        }
        if let Some(position) = patch.position {
            active.position = Set(position);
            changed.push("position");
        }
        active.updated_at = Set(Utc::now());
        let task = active.update(&txn).await?;
        let mut events: Events = Vec::new();
        if let Some(status) = new_status {
            events.push((
                "task.status_changed",
                json!({
                    "message": format!(
                        "{} moved \"{}\" to {}",
                        by.name(),
                        task.title,
                        status.replace('_', " ")
                    ),
                    "by": by.json(),
                    "task": task_brief(&task),
                    "from": before.status,
                    "to": status,
                }),
            ));
        }
        if !changed.is_empty() {
            events.push((
                "task.updated",
                json!({
                    "message": format!("{} updated task \"{}\"", by.name(), task.title),
                    "by": by.json(),
                    "task": task_brief(&task),
                    "fields": changed,
                }),
            ));
        }
        self.commit(txn, events).await?;
        Ok(task)
    }

    pub(super) async fn delete_task(
        &mut self,
        by: Author,
        id: Uuid,
    ) -> Result<task::Model, CoreError> {
        let task = self.task(id).await?;
        let txn = store::begin_write(&self.shared.db).await?;
        let mut active: task::ActiveModel = task.into();
        active.deleted_at = Set(Some(Utc::now()));
        let task = active.update(&txn).await?;
        let failed = store::notifications::fail_for_task(&txn, id).await?;
        let events = vec![(
            "task.deleted",
            json!({
                "message": format!("{} deleted task \"{}\"", by.name(), task.title),
                "by": by.json(),
                "task": task_brief(&task),
            }),
        )];
        self.commit(txn, events).await?;
        for n in failed {
            if let Some(actor) = self.agents.get(&n.agent_id) {
                let _ = actor.cast(AgentMsg::Forget(vec![n.id]));
            }
        }
        Ok(task)
    }

    /// Exactly one of several racing agents wins: the actor handles one claim at a time.
    pub(super) async fn claim_task(
        &mut self,
        agent: AgentRef,
        id: Uuid,
    ) -> Result<task::Model, CoreError> {
        let task = self.task(id).await?;
        if let Some(holder) = task.claimed_by {
            let who = if holder == agent.id {
                "you".to_owned()
            } else {
                format!("agent {holder}")
            };
            return Err(CoreError::Conflict(format!(
                "task is already claimed by {who}"
            )));
        }
        if task.status == TaskStatus::Done.as_str() {
            return Err(CoreError::Conflict("task is done".into()));
        }
        let txn = store::begin_write(&self.shared.db).await?;
        let from = task.status.clone();
        let mut active: task::ActiveModel = task.into();
        active.claimed_by = Set(Some(agent.id));
        active.status = Set(TaskStatus::InProgress.as_str().to_owned());
        active.updated_at = Set(Utc::now());
        let task = active.update(&txn).await?;
        self.add_assignees(&txn, id, std::slice::from_ref(&agent))
            .await?;
        let events = vec![(
            "task.claimed",
            json!({
                "message": format!("{} claimed task \"{}\"", agent.name, task.title),
                "by": { "id": agent.id, "name": agent.name },
                "task": task_brief(&task),
                "from": from,
                "to": task.status,
            }),
        )];
        self.commit(txn, events).await?;
        Ok(task)
    }

    pub(super) async fn assign(
        &mut self,
        by: Author,
        id: Uuid,
        agents: Vec<AgentRef>,
    ) -> Result<task::Model, CoreError> {
        let task = self.task(id).await?;
        let txn = store::begin_write(&self.shared.db).await?;
        let added = self.add_assignees(&txn, id, &agents).await?;
        if added.is_empty() {
            return Ok(task);
        }
        let names: Vec<&str> = added.iter().map(|a| a.name.as_str()).collect();
        let mut events: Events = vec![(
            "task.assigned",
            json!({
                "message": format!("{} assigned {} to \"{}\"", by.name(), names.join(", "), task.title),
                "by": by.json(),
                "task": task_brief(&task),
                "assignees": refs(&added),
            }),
        )];
        let notes = self
            .notify_assigned(&txn, &task, &by, &added, &mut events)
            .await?;
        self.commit_and_notify(txn, events, notes).await?;
        Ok(task)
    }

    pub(super) async fn unassign(
        &mut self,
        by: Author,
        id: Uuid,
        agent_id: Uuid,
    ) -> Result<task::Model, CoreError> {
        let task = self.task(id).await?;
        let txn = store::begin_write(&self.shared.db).await?;
        let removed = task_assignee::Entity::delete_many()
            .filter(task_assignee::Column::TaskId.eq(id))
            .filter(task_assignee::Column::AgentId.eq(agent_id))
            .exec(&txn)
            .await?;
        if removed.rows_affected == 0 {
            return Err(CoreError::NotFound("assignee"));
        }
        let events = vec![(
            "task.unassigned",
            json!({
                "message": format!("{} unassigned an agent from \"{}\"", by.name(), task.title),
                "by": by.json(),
                "task": task_brief(&task),
                "agent_id": agent_id,
            }),
        )];
        self.commit(txn, events).await?;
        Ok(task)
    }

    /// `content` is already sanitized and within the limits; mentions are read from it here.
    pub(super) async fn comment(
        &mut self,
        by: Author,
        task_id: Uuid,
        content: String,
    ) -> Result<comment::Model, CoreError> {
        let task = self.task(task_id).await?;
        let mentions = Mentions::parse(&content);
        let squad_agents = store::squads::agents(&self.shared.db, self.squad.id).await?;
        let mentioned: Vec<AgentRef> = squad_agents
            .iter()
            .filter(|a| mentions.all || mentions.names.contains(&a.name_key))
            .map(|a| AgentRef {
                id: a.id,
                name: a.name.clone(),
            })
            .collect();
        let txn = store::begin_write(&self.shared.db).await?;
        let comment = comment::ActiveModel {
            id: Set(Uuid::new_v4()),
            task_id: Set(task_id),
            squad_id: Set(self.squad.id),
            from_agent_id: Set(by.agent_id()),
            from_human: Set(matches!(by, Author::Human)),
            content: Set(content),
            created_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await?;
        // Subscribers hear of the comment; the mentioned get a mention instead.
        let mentioned_ids: HashSet<Uuid> = mentioned.iter().map(|a| a.id).collect();
        let subscribers: HashSet<Uuid> = store::tasks::subscribers(&txn, task_id)
            .await?
            .into_iter()
            .collect();
        let followers: Vec<AgentRef> = squad_agents
            .iter()
            .filter(|a| subscribers.contains(&a.id) && !mentioned_ids.contains(&a.id))
            .map(|a| AgentRef {
                id: a.id,
                name: a.name.clone(),
            })
            .collect();
        let mut subscribe: Vec<Uuid> = mentioned_ids.iter().copied().collect();
        subscribe.extend(by.agent_id());
        self.subscribe(&txn, task_id, &subscribe).await?;

        let mut events: Events = vec![(
            "comment.created",
            json!({
                "message": format!("{} commented on \"{}\"", by.name(), task.title),
                "by": by.json(),
                "task": task_brief(&task),
                "comment": { "id": comment.id, "content": comment.content, "from_human": comment.from_human },
                "mentions": refs(&mentioned),
            }),
        )];
        let mut notes = self
            .notifications(
                &txn,
                &task,
                &by,
                &mentioned,
                "mention",
                &comment.content,
                Some(comment.id),
                &mut events,
            )
            .await?;
        let author = by.name().to_owned();
        let summary = format!(
            "{author} commented on \"{}\": {}",
            task.title, comment.content
        );
        notes.extend(
            self.notifications(
                &txn,
                &task,
                &by,
                &followers,
                "comment",
                &summary,
                Some(comment.id),
                &mut events,
            )
            .await?,
        );
        self.commit_and_notify(txn, events, notes).await?;
        Ok(comment)
    }
}
