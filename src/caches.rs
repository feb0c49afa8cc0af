//! What this server keeps in memory about credentials and accounts, in one place with one way
//! to invalidate it: the active tokens and keys ([`TokenAuth`]), the live tickets issued with
//! them, the live streams open on them, and the accounts' models and providers ([`Routes`]).
//! Whatever revokes, deletes or changes one of those says so with one [`Change`]; a cluster
//! node that learns of a change made on another calls [`Caches::invalidate`] the same way.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::Config;
use crate::credentials::tickets::Tickets;
use crate::credentials::TokenAuth;
use crate::gateway::routes::Routes;
use crate::live::streams::Streams;

/// What changed, as much as a cache needs to know to drop what it holds of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A token or key was revoked or deleted: `id` is its id, `hash` its stored hash.
    Credential { id: Uuid, hash: String },
    /// An account's providers or models were added or deleted.
    Account { org_id: Uuid },
}

pub struct Caches {
    pub tokens: TokenAuth,
    pub tickets: Tickets,
    /// Open live streams by credential: their cap, and their end on revocation.
    pub streams: Streams,
    /// The accounts' models and providers, resolved without a query (shared with the
    /// gateway service, which fills it).
    pub routes: Arc<Routes>,
}

impl Caches {
    pub fn new(config: &Config, shutdown: CancellationToken) -> Caches {
        Caches {
            tokens: TokenAuth::new(config),
            tickets: Tickets::new(Duration::from_secs(config.ticket_ttl_secs)),
            streams: Streams::new(config.live_max_connections_per_credential, shutdown),
            routes: Arc::default(),
        }
    }

    /// Drops what every cache holds of `change`, at once: a revoked credential stops
    /// authenticating, its tickets are void and its open streams end.
    pub fn invalidate(&self, change: &Change) {
        match change {
            Change::Credential { id, hash } => {
                self.tokens.evict(hash);
                self.tickets.void(*id);
                self.streams.revoke(*id);
            }
            Change::Account { org_id } => self.routes.forget(*org_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_travels_as_json_and_back() {
        let change = Change::Credential {
            id: Uuid::nil(),
            hash: "abc".into(),
        };
        let json = serde_json::to_string(&change).unwrap();
        assert_eq!(
            json,
            r#"{"change":"credential","id":"00000000-0000-0000-0000-000000000000","hash":"abc"}"#
        );
        assert_eq!(serde_json::from_str::<Change>(&json).unwrap(), change);
    }
}
