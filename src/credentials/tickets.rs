//! Short-lived, single-use tickets that let a browser open the WebSocket, which cannot carry
//! an `Authorization` header: issued by `POST /api/live/tickets` ([`crate::live::tickets`]),
//! redeemed by `/api/live?ticket=...`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use rand::RngCore;
use uuid::Uuid;

use super::Principal;

pub struct Tickets {
    issued: DashMap<String, (Principal, Instant)>,
    ttl: Duration,
}

impl Tickets {
    pub fn new(ttl: Duration) -> Tickets {
        Tickets {
            issued: DashMap::new(),
            ttl,
        }
    }

    pub fn issue(&self, principal: Principal) -> (String, DateTime<Utc>) {
        let now = Instant::now();
        // Expired tickets go whenever a new one is made, so the map stays small.
        self.issued
            .retain(|_, (_, at)| now.duration_since(*at) < self.ttl);
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let ticket = format!("lt_{}", hex::encode(bytes));
        self.issued.insert(ticket.clone(), (principal, now));
        let expires = Utc::now() + self.ttl;
        (ticket, expires)
    }

    /// Voids the tickets issued to `credential` (it was revoked).
    pub fn void(&self, credential: Uuid) {
        self.issued
            .retain(|_, (principal, _)| principal.credential() != credential);
    }

    /// The ticket's principal, once: a second redemption fails.
    pub fn redeem(&self, ticket: &str) -> Option<Principal> {
        let (_, (principal, at)) = self.issued.remove(ticket)?;
        (at.elapsed() < self.ttl).then_some(principal)
    }
}
