//! Every open live stream (WebSocket or SSE), by the credential that opened it. Two things
//! need that: a cap on how many streams one credential holds, and revocation, which must end
//! a credential's streams at once instead of at their next reconnect.
//!
//! [`Streams::revoke`] is the one call that does the latter (the cluster's invalidations can
//! call it for a revocation made on another node).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::LiveConnection;
use crate::credentials::Principal;
use crate::error::ApiError;

/// How long a revoked credential is remembered here: longer than any request takes between
/// authenticating and opening its stream, which is the race this closes.
const REMEMBER_REVOKED: Duration = Duration::from_secs(60);

pub struct Streams(Arc<Inner>);

struct Inner {
    open: DashMap<Uuid, Entry>,
    /// Credentials revoked lately, so a stream authenticated just before a revocation but
    /// opened just after it is refused all the same.
    revoked: DashMap<Uuid, Instant>,
    /// 0: no cap.
    max_per_credential: usize,
    /// The server's shutdown: every stream's end is a child of it.
    shutdown: CancellationToken,
}

struct Entry {
    count: usize,
    /// Cancelled when the credential is revoked (or the server stops): every stream of it
    /// watches this.
    ended: CancellationToken,
}

/// One open stream. Dropping it lets the credential open another.
pub struct StreamGuard {
    inner: Arc<Inner>,
    credential: Uuid,
    ended: CancellationToken,
    _counted: LiveConnection,
}

impl Streams {
    pub fn new(max_per_credential: usize, shutdown: CancellationToken) -> Streams {
        Streams(Arc::new(Inner {
            open: DashMap::new(),
            revoked: DashMap::new(),
            max_per_credential,
            shutdown,
        }))
    }

    /// Registers a stream of `principal` over `transport` (`ws` or `sse`), or refuses it: 429
    /// when the credential already holds its share, 401 when it was just revoked.
    pub fn open(
        &self,
        principal: &Principal,
        transport: &'static str,
    ) -> Result<StreamGuard, ApiError> {
        let credential = principal.credential();
        let max = self.0.max_per_credential;
        let ended = {
            let mut entry = self.0.open.entry(credential).or_insert_with(|| Entry {
                count: 0,
                ended: self.0.shutdown.child_token(),
            });
            if max > 0 && entry.count >= max {
                metrics::counter!("squadron_live_refused_total", "reason" => "cap").increment(1);
                return Err(ApiError::TooManyStreams(format!(
                    "this credential already holds {max} live connections; close one first"
                )));
            }
            entry.count += 1;
            entry.ended.clone()
        };
        // Counted first, checked second: a revocation between the two finds the entry above
        // and cancels it, so no stream can slip past one.
        let guard = StreamGuard {
            inner: self.0.clone(),
            credential,
            ended,
            _counted: LiveConnection::open(transport),
        };
        if self.0.revoked.contains_key(&credential) {
            return Err(ApiError::Unauthorized(
                "this credential has been revoked".into(),
            ));
        }
        Ok(guard)
    }

    /// Ends every open stream of `credential` (an API token or squad key id), now and for
    /// any stream that was about to open with it.
    pub fn revoke(&self, credential: Uuid) {
        let now = Instant::now();
        self.0
            .revoked
            .retain(|_, at| now.duration_since(*at) < REMEMBER_REVOKED);
        self.0.revoked.insert(credential, now);
        if let Some(entry) = self.0.open.get(&credential) {
            entry.ended.cancel();
        }
    }
}

impl StreamGuard {
    /// Cancelled when the stream must end: its credential was revoked, or the server stops.
    pub fn ended(&self) -> &CancellationToken {
        &self.ended
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let last = match self.inner.open.get_mut(&self.credential) {
            Some(mut entry) => {
                entry.count = entry.count.saturating_sub(1);
                entry.count == 0
            }
            None => false,
        };
        if last {
            self.inner
                .open
                .remove_if(&self.credential, |_, entry| entry.count == 0);
        }
    }
}
