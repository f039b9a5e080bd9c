//! The `[media] max_sessions` guard: how many PeerConnections are alive, how many may be, and
//! how many new sessions were refused for it. Past capacity, new sessions get a clear error
//! (Janus 490 on `create`/`attach`) instead of every live session degrading.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Wait after the last PeerConnection is gone before trimming the heap.
const TRIM_DELAY: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, Default)]
struct Counters {
    live: AtomicUsize,
    refused: AtomicU64,
}

/// Live PeerConnections against the configured limit; shared by the engine and the API.
#[derive(Debug, Clone)]
pub struct Capacity {
    limit: usize,
    counters: Arc<Counters>,
}

/// One PeerConnection's place in the count: given back when dropped.
#[derive(Debug)]
pub struct Slot(Arc<Counters>);

impl Drop for Slot {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // The PeerConnection's tasks finish freeing shortly after it is dropped.
        let counters = self.0.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                tokio::time::sleep(TRIM_DELAY).await;
                if counters.live.load(Ordering::Acquire) == 0 {
                    release_freed_memory();
                }
            });
        }
    }
}

/// Once the last PeerConnection is gone, hands the allocator's free pages back to the system
/// (glibc keeps what the media tasks freed in its per-thread arenas otherwise, so an idle
/// gateway would keep its peak RSS). Rare (only at zero) and short, so a runtime task does it.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            /// glibc's `malloc_trim(3)`: returns free heap pages to the system.
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim only walks the allocator's own free lists; 0 = keep no padding.
        unsafe {
            malloc_trim(0);
        }
    }
}

impl Capacity {
    /// A guard allowing `limit` live PeerConnections; 0 = no limit.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            counters: Arc::default(),
        }
    }

    /// The configured limit (0 = none).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// PeerConnections alive now.
    pub fn live(&self) -> usize {
        self.counters.live.load(Ordering::Acquire)
    }

    /// Sessions, handles and PeerConnections refused for capacity since start.
    pub fn refused(&self) -> u64 {
        self.counters.refused.load(Ordering::Relaxed)
    }

    /// Whether a new session may start; a `false` is counted as a refusal.
    pub fn admit(&self) -> bool {
        let ok = self.limit == 0 || self.live() < self.limit;
        if !ok {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Takes a place for a new PeerConnection; `None` (counted as a refusal) when full.
    pub(super) fn take(&self) -> Option<Slot> {
        let taken = self
            .counters
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (self.limit == 0 || n < self.limit).then_some(n + 1)
            });
        match taken {
            Ok(_) => Some(Slot(self.counters.clone())),
            Err(_) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_counted_and_given_back() {
        let c = Capacity::new(2);
        let a = c.take().unwrap();
        let _b = c.take().unwrap();
        assert_eq!(c.live(), 2);
        assert!(!c.admit());
        assert!(c.take().is_none());
        assert_eq!(c.refused(), 2);
        drop(a);
        assert_eq!(c.live(), 1);
        assert!(c.admit());
        assert!(c.take().is_some());
    }

    #[test]
    fn zero_is_no_limit() {
        let c = Capacity::new(0);
        let slots: Vec<_> = (0..1000).map(|_| c.take().unwrap()).collect();
        assert!(c.admit());
        assert_eq!((c.live(), c.refused()), (1000, 0));
        drop(slots);
        assert_eq!(c.live(), 0);
    }
}
