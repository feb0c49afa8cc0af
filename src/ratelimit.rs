//! Rate limits per credential and route class (GCRA, via governor). Agents sharing one IP
//! never share a bucket; the key is who is calling, not where from.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use uuid::Uuid;

use crate::config::Config;
use crate::error::ApiError;

/// Which bucket a request draws from; seed 002's classes plus the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteClass {
    Heartbeat,
    Tasks,
    Default,
    Gateway,
}

impl RouteClass {
    pub fn of(path: &str) -> RouteClass {
        if path == "/api/heartbeat" {
            RouteClass::Heartbeat
        } else if path == "/api/tasks" || path.starts_with("/api/tasks/") {
            RouteClass::Tasks
        } else if crate::error::is_gateway_path(path) {
            RouteClass::Gateway
        } else {
            RouteClass::Default
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RouteClass::Heartbeat => "heartbeat",
            RouteClass::Tasks => "tasks",
            RouteClass::Default => "default",
            RouteClass::Gateway => "gateway",
        }
    }
}

/// Who a bucket belongs to: a credential, and for a shared squad key, the agent using it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RateKey {
    pub credential: Uuid,
    pub agent: Option<Uuid>,
}

type Limiter =
    RateLimiter<RateKey, DashMapStateStore<RateKey>, DefaultClock, StateInformationMiddleware>;

/// A request that was let through, and what is left of its bucket.
pub struct Allowed {
    pub limit: u32,
    pub remaining: u32,
}

struct ClassLimit {
    per_minute: u32,
    limiter: Limiter,
}

pub struct RateLimits {
    classes: [Option<ClassLimit>; 4],
    clock: DefaultClock,
}

impl RateLimits {
    /// A limit of 0 turns the class's limit off.
    pub fn new(config: &Config) -> RateLimits {
        let class = |per_minute: u32| {
            NonZeroU32::new(per_minute).map(|n| ClassLimit {
                per_minute,
                limiter: RateLimiter::dashmap(Quota::per_minute(n)).with_middleware(),
            })
        };
        RateLimits {
            classes: [
                class(config.rate_heartbeat),
                class(config.rate_tasks),
                class(config.rate_default),
                class(config.rate_gateway),
            ],
            clock: DefaultClock::default(),
        }
    }

    fn class(&self, class: RouteClass) -> Option<&ClassLimit> {
        self.classes[class as usize].as_ref()
    }

    pub fn check(&self, class: RouteClass, key: &RateKey) -> Result<Option<Allowed>, ApiError> {
        let Some(limit) = self.class(class) else {
            return Ok(None);
        };
        match limit.limiter.check_key(key) {
            Ok(snapshot) => Ok(Some(Allowed {
                limit: limit.per_minute,
                remaining: snapshot.remaining_burst_capacity(),
            })),
            Err(not_until) => {
                metrics::counter!("squadron_rate_limited_total", "class" => class.label())
                    .increment(1);
                let wait = not_until.wait_time_from(self.clock.now());
                Err(ApiError::RateLimited {
                    limit: limit.per_minute,
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                })
            }
        }
    }

    /// Drops buckets that are full again, so memory follows active callers only.
    pub fn forget_idle(&self) {
        for limit in self.classes.iter().flatten() {
            limit.limiter.retain_recent();
            limit.limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fall_in_their_classes() {
        assert_eq!(RouteClass::of("/api/heartbeat"), RouteClass::Heartbeat);
        assert_eq!(RouteClass::of("/api/tasks"), RouteClass::Tasks);
        assert_eq!(RouteClass::of("/api/tasks/1/comments"), RouteClass::Tasks);
        assert_eq!(RouteClass::of("/api/tasksx"), RouteClass::Default);
        assert_eq!(RouteClass::of("/v1/chat/completions"), RouteClass::Gateway);
        assert_eq!(RouteClass::of("/api/v1/agents"), RouteClass::Default);
    }

    #[test]
    fn a_bucket_empties_then_says_when_to_retry() {
        let mut config = Config::defaults();
        config.rate_heartbeat = 3;
        let limits = RateLimits::new(&config);
        let key = RateKey {
            credential: Uuid::new_v4(),
            agent: None,
        };
        for expected in [2, 1, 0] {
            let allowed = limits.check(RouteClass::Heartbeat, &key).unwrap().unwrap();
            assert_eq!((allowed.limit, allowed.remaining), (3, expected));
        }
        match limits.check(RouteClass::Heartbeat, &key) {
            Err(ApiError::RateLimited {
                limit: 3,
                retry_after_secs,
            }) => {
                assert!((1..=20).contains(&retry_after_secs))
            }
            other => panic!("expected a rate limit, got {:?}", other.map(|_| ())),
        }
        let other = RateKey {
            credential: Uuid::new_v4(),
            agent: None,
        };
        assert!(
            limits.check(RouteClass::Heartbeat, &other).is_ok(),
            "buckets are per credential"
        );
    }
}
