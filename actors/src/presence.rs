//! Presence (status, last heartbeat, current task) is written behind: agent actors record it
//! here and a periodic flush writes it in one transaction. Reads overlay what is not yet
//! written, so nobody sees it late; a crash loses at most one flush interval of presence.

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::store::begin_write;
use crate::store::entity::agent::{self, Entity as Agents};

#[derive(Clone, Debug, PartialEq)]
pub struct PresenceRow {
    pub status: String,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    pub current_task_id: Option<Uuid>,
}

#[derive(Default)]
pub struct Presence {
    pending: DashMap<Uuid, PresenceRow>,
}

impl Presence {
    pub fn record(&self, agent_id: Uuid, row: PresenceRow) {
        self.pending.insert(agent_id, row);
    }

    /// Brings `agent` up to date with presence not yet written.
    pub fn overlay(&self, agent: &mut agent::Model) {
        if let Some(row) = self.pending.get(&agent.id) {
            agent.status = row.status.clone();
            agent.last_heartbeat_at = row.last_heartbeat_at;
            agent.current_task_id = row.current_task_id;
        }
    }

    /// Writes everything pending in one transaction. Rows that fail go back for next time,
    /// unless a newer row for the same agent arrived meanwhile.
    pub async fn flush(&self, db: &DatabaseConnection) -> Result<usize, DbErr> {
        let ids: Vec<Uuid> = self.pending.iter().map(|e| *e.key()).collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let rows: Vec<(Uuid, PresenceRow)> = ids
            .iter()
            .filter_map(|id| self.pending.remove(id))
            .collect();
        let result = async {
            let txn = begin_write(db).await?;
            for (id, row) in &rows {
                Agents::update_many()
                    .col_expr(agent::Column::Status, Expr::value(row.status.clone()))
                    .col_expr(
                        agent::Column::LastHeartbeatAt,
                        Expr::value(row.last_heartbeat_at),
                    )
                    .col_expr(
                        agent::Column::CurrentTaskId,
                        Expr::value(row.current_task_id),
                    )
                    .filter(agent::Column::Id.eq(*id))
                    .exec(&txn)
                    .await?;
            }
            txn.commit().await
        }
        .await;
        if let Err(err) = result {
            for (id, row) in rows {
                self.pending.entry(id).or_insert(row);
            }
            return Err(err);
        }
        Ok(rows.len())
    }
}
