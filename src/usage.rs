//! Token usage (`calls`, `last_used_at`) counted in memory and written in batches, so a
//! request costs no database write. The final flush runs at graceful shutdown.

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use sea_orm::{DatabaseConnection, DbErr};
use squadron_actors::store;
use uuid::Uuid;

#[derive(Clone, Copy, Debug)]
pub struct Pending {
    pub calls: i64,
    pub last_used_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct Usage {
    pending: DashMap<Uuid, Pending>,
}

impl Usage {
    pub fn record(&self, token_id: Uuid) {
        let now = Utc::now();
        self.pending
            .entry(token_id)
            .and_modify(|p| {
                p.calls += 1;
                p.last_used_at = now;
            })
            .or_insert(Pending {
                calls: 1,
                last_used_at: now,
            });
    }

    /// What has been counted for the token but not written yet.
    pub fn pending(&self, token_id: Uuid) -> Option<Pending> {
        self.pending.get(&token_id).map(|p| *p)
    }

    /// Writes every pending count. A count that fails to write is put back for the next flush.
    pub async fn flush(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let ids: Vec<Uuid> = self.pending.iter().map(|e| *e.key()).collect();
        for id in ids {
            let Some((_, p)) = self.pending.remove(&id) else {
                continue;
            };
            if let Err(err) = store::tokens::add_usage(db, id, p.calls, p.last_used_at).await {
                self.pending
                    .entry(id)
                    .and_modify(|q| {
                        q.calls += p.calls;
                        q.last_used_at = q.last_used_at.max(p.last_used_at);
                    })
                    .or_insert(p);
                return Err(err);
            }
        }
        Ok(())
    }
}
