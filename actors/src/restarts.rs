//! How often a supervisor restarts a child that keeps failing: the root its squads, a squad
//! its agents. Time is tokio's, so tests can run it under paused time.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// More than [`MAX_RESTARTS`] failures of one child within [`RESTART_WINDOW`], and it is left
/// stopped until the next request for it rather than restarted in a tight loop.
pub const MAX_RESTARTS: usize = 5;
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// The recent failures of each child that failed within the window.
pub struct RestartBudget<K> {
    recent: HashMap<K, VecDeque<Instant>>,
}

impl<K: Eq + Hash> Default for RestartBudget<K> {
    fn default() -> Self {
        RestartBudget {
            recent: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash> RestartBudget<K> {
    /// Records a failure of `child` and says whether it may be restarted now. Children whose
    /// failures have all left the window are forgotten, so the map holds only recent ones.
    pub fn allows(&mut self, child: K) -> bool {
        let now = Instant::now();
        self.recent.retain(|_, failures| {
            failures.retain(|at| now.duration_since(*at) < RESTART_WINDOW);
            !failures.is_empty()
        });
        let failures = self.recent.entry(child).or_default();
        failures.push_back(now);
        failures.len() <= MAX_RESTARTS
    }
}
