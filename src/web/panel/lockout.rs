//! Failed-login accounting: after `max_failures` wrong passwords for one username within the
//! lock-out window, that username is refused (even with the right password) until the window
//! has passed since the last failure. Usernames, not addresses, are counted, so spreading
//! guesses over many addresses does not help; the price is that an attacker can keep a known
//! username locked, which the log shows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Most usernames tracked; beyond it entries older than the window are dropped first.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Counts failed logins per username.
#[derive(Debug)]
pub struct LoginGuard {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, Failures>>,
}

/// What a failed login led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    /// Consecutive failures so far in the window.
    pub count: u32,
    /// Whether this failure locked the username.
    pub locked: bool,
}

impl LoginGuard {
    /// Locks a username after `max_failures` failures (at least 1) within `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        LoginGuard {
            max_failures: max_failures.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn key(username: &str) -> String {
        username.to_lowercase()
    }

    /// Seconds until `username` may try again, or `None` when it is not locked.
    pub fn locked_for(&self, username: &str, now: Instant) -> Option<u64> {
        let map = self.lock();
        let f = map.get(&Self::key(username))?;
        let elapsed = now.saturating_duration_since(f.last);
        if f.count >= self.max_failures && elapsed < self.window {
            Some((self.window - elapsed).as_secs().max(1))
        } else {
            None
        }
    }

    /// Records a failed login.
    pub fn failed(&self, username: &str, now: Instant) -> FailureOutcome {
        let mut map = self.lock();
        if map.len() >= MAX_TRACKED {
            let window = self.window;
            map.retain(|_, f| now.saturating_duration_since(f.last) < window);
        }
        let entry = map.entry(Self::key(username)).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.saturating_duration_since(entry.last) >= self.window {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        FailureOutcome {
            count: entry.count,
            locked: entry.count == self.max_failures,
        }
    }

    /// Forgets the failures of `username` after a successful login.
    pub fn succeeded(&self, username: &str) {
        self.lock().remove(&Self::key(username));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_threshold_and_unlocks_after_the_window() {
        let g = LoginGuard::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(!g.failed("Admin", t0).locked);
        assert!(!g.failed("admin", t0).locked);
        assert_eq!(g.locked_for("admin", t0), None);
        assert!(
            g.failed("ADMIN", t0).locked,
            "case does not dodge the count"
        );
        assert_eq!(
            g.locked_for("admin", t0 + Duration::from_secs(10)),
            Some(50)
        );
        assert_eq!(g.locked_for("admin", t0 + Duration::from_secs(60)), None);
        assert_eq!(g.failed("admin", t0 + Duration::from_secs(61)).count, 1);
    }

    #[test]
    fn success_resets_the_count() {
        let g = LoginGuard::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        g.failed("a", t0);
        g.succeeded("a");
        assert!(!g.failed("a", t0).locked);
    }
}
