//! Credentials recently found to be no one's (or revoked), remembered by hash so that
//! presenting one again costs no look-up. Bounded: two generations of at most half the
//! capacity each; when the newer fills up, the older is dropped. Tokens and keys are random,
//! so one that was unknown never becomes valid later, and a revoked one stays revoked: an
//! entry needs no invalidation, only a bound.

use std::collections::HashMap;
use std::sync::Mutex;

/// Credentials remembered at most.
const CAPACITY: usize = 10_000;

/// Why a credential was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    UnknownToken,
    UnknownKey,
    Revoked,
}

#[derive(Default)]
pub struct RecentUnknown {
    generations: Mutex<[HashMap<String, Refusal>; 2]>,
}

impl RecentUnknown {
    pub fn get(&self, hash: &str) -> Option<Refusal> {
        let [newer, older] = &*self.lock();
        newer.get(hash).or_else(|| older.get(hash)).copied()
    }

    pub fn insert(&self, hash: String, refusal: Refusal) {
        let mut generations = self.lock();
        if generations[0].len() >= CAPACITY / 2 {
            generations.swap(0, 1);
            generations[0] = HashMap::new();
        }
        generations[0].insert(hash, refusal);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let [newer, older] = &*self.lock();
        newer.len() + older.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [HashMap<String, Refusal>; 2]> {
        // The maps hold no invariant a panic could break halfway.
        self.generations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_recent_ones_and_stays_bounded() {
        let unknown = RecentUnknown::default();
        unknown.insert("first".into(), Refusal::Revoked);
        assert_eq!(unknown.get("first"), Some(Refusal::Revoked));
        assert_eq!(unknown.get("other"), None);
        for i in 0..3 * CAPACITY {
            unknown.insert(format!("hash-{i}"), Refusal::UnknownToken);
            assert!(unknown.len() <= CAPACITY);
        }
        assert_eq!(unknown.get("first"), None, "the oldest are forgotten");
        let last = format!("hash-{}", 3 * CAPACITY - 1);
        assert_eq!(unknown.get(&last), Some(Refusal::UnknownToken));
    }
}
