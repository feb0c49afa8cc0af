//! Failed authentications per client address. After a burst of failures an address is
//! refused (429) before its credential is looked up, so guessing tokens costs the guesser and
//! not the database. GCRA over one instant per address: each failure moves the address's
//! "theoretical arrival time" on by one interval, and it may try again while that time is
//! less than a burst ahead of now.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Addresses tracked at most; beyond that new ones are not tracked (memory stays bounded,
/// and the tracked ones stay throttled).
const MAX_ADDRESSES: usize = 65_536;

pub struct FailureThrottle {
    /// How long one failure takes to be forgiven.
    interval: Duration,
    /// How far ahead of now an address's failures may run: the burst less the one in hand.
    tolerance: Duration,
    due: DashMap<IpAddr, Instant>,
}

impl FailureThrottle {
    /// `burst` failures in a row, then `per_minute`; `None` (no throttle) when either is 0.
    pub fn new(burst: u32, per_minute: u32) -> Option<FailureThrottle> {
        if burst == 0 || per_minute == 0 {
            return None;
        }
        let interval = Duration::from_secs(60) / per_minute;
        Some(FailureThrottle {
            interval,
            tolerance: interval * (burst - 1),
            due: DashMap::new(),
        })
    }

    /// How long `addr` must wait before it may try a credential again, if it must.
    pub fn wait(&self, addr: IpAddr) -> Option<Duration> {
        let ahead = self
            .due
            .get(&bucket(addr))?
            .checked_duration_since(Instant::now())?;
        ahead
            .checked_sub(self.tolerance)
            .filter(|wait| !wait.is_zero())
    }

    pub fn failed(&self, addr: IpAddr) {
        let now = Instant::now();
        let key = bucket(addr);
        if self.due.len() >= MAX_ADDRESSES && !self.due.contains_key(&key) {
            return;
        }
        let mut due = self.due.entry(key).or_insert(now);
        *due = (*due).max(now) + self.interval;
    }

    /// Drops the addresses whose failures are all forgiven.
    pub fn forget_idle(&self) {
        let now = Instant::now();
        self.due.retain(|_, due| *due > now);
        self.due.shrink_to_fit();
    }
}

/// The bucket an address falls in: itself for IPv4, its /64 for IPv6 (one host usually has
/// a whole /64 to pick from).
fn bucket(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_failures_then_a_wait_of_one_interval() {
        let throttle = FailureThrottle::new(3, 6).unwrap();
        let addr: IpAddr = "10.0.0.7".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(throttle.wait(addr), None);
            throttle.failed(addr);
        }
        let wait = throttle.wait(addr).expect("throttled after the burst");
        assert!(wait > Duration::from_secs(9) && wait <= Duration::from_secs(10));
        assert_eq!(throttle.wait("10.0.0.8".parse().unwrap()), None);
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_bucket() {
        let throttle = FailureThrottle::new(1, 1).unwrap();
        throttle.failed("2001:db8::1".parse().unwrap());
        assert!(throttle.wait("2001:db8::ffff".parse().unwrap()).is_some());
        assert!(throttle.wait("2001:db8:0:1::1".parse().unwrap()).is_none());
        throttle.failed("::ffff:10.0.0.1".parse().unwrap());
        assert!(throttle.wait("10.0.0.1".parse().unwrap()).is_some());
    }

    #[test]
    fn zero_turns_it_off() {
        assert!(FailureThrottle::new(0, 10).is_none());
        assert!(FailureThrottle::new(10, 0).is_none());
    }
}
