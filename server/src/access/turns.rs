//! How many of one viewer's reads run in ClickHouse at once.
//!
//! A Dashboard asks a dozen panel queries at once (the page's resources
//! resolve together, and so do the browser's calls after a filter
//! changes). Over three months of every tenant each reads millions of
//! rows; let all twelve loose on a small ClickHouse and each gets a twelfth
//! of its CPU, so most run past the search time limit (which counts from a
//! query's start) and the page shows errors where each query alone takes
//! 1–2 s. Taking turns, in the order asked, each query runs at nearly full
//! speed and within its limit, and the panels at the top of the page
//! answer first. The turns are per viewer (per access grant), so one
//! viewer's dashboard never queues another's search.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Every viewer's turns, shared by all requests of one process.
#[derive(Clone)]
pub struct ReadTurns {
    at_once: usize,
    /// Weak, so a viewer's entry lives only while one of their requests
    /// does; dead entries are swept when a new viewer arrives.
    viewers: Arc<Mutex<HashMap<String, Weak<Semaphore>>>>,
}

impl ReadTurns {
    /// `at_once` reads per viewer run together (at least one).
    pub fn new(at_once: usize) -> ReadTurns {
        ReadTurns {
            at_once: at_once.max(1),
            viewers: Arc::default(),
        }
    }

    /// The turns of the viewer holding `access_id`, shared by all their
    /// requests in flight.
    pub fn of(&self, access_id: &str) -> ViewerTurns {
        // A poisoned lock only means another request panicked while it
        // held it; the map itself is still whole.
        let mut viewers = self
            .viewers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(live) = viewers.get(access_id).and_then(Weak::upgrade) {
            return ViewerTurns(live);
        }
        viewers.retain(|_, turns| turns.strong_count() > 0);
        let fresh = Arc::new(Semaphore::new(self.at_once));
        viewers.insert(access_id.to_owned(), Arc::downgrade(&fresh));
        ViewerTurns(fresh)
    }
}

/// One viewer's turns, held by each of their requests.
#[derive(Clone)]
pub struct ViewerTurns(Arc<Semaphore>);

impl ViewerTurns {
    /// Waits for a turn (first come, first served); the read runs while
    /// the returned permit lives.
    pub async fn take(&self) -> Option<OwnedSemaphorePermit> {
        // `acquire_owned` fails only on a closed semaphore, and these are
        // never closed; were one, the read would run without a turn
        // rather than not at all.
        self.0.clone().acquire_owned().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_viewers_reads_take_turns_and_another_viewer_does_not_wait() {
        let turns = ReadTurns::new(1);
        let alice = turns.of("alice");
        let first = alice.take().await;
        assert!(first.is_some());
        // Another request of the same viewer shares the turns...
        let second = turns.of("alice");
        let waiting = tokio::time::timeout(Duration::from_millis(50), second.take()).await;
        assert!(waiting.is_err(), "a second read ran beside the first");
        // ...while another viewer's read runs at once.
        let bob = turns.of("bob");
        let ran = tokio::time::timeout(Duration::from_millis(50), bob.take()).await;
        assert!(matches!(ran, Ok(Some(_))), "bob waited for alice's turn");
        drop(first);
        let next = tokio::time::timeout(Duration::from_millis(50), second.take()).await;
        assert!(matches!(next, Ok(Some(_))), "the turn was not handed on");
    }

    #[tokio::test]
    async fn turns_come_in_the_order_asked() {
        let turns = ReadTurns::new(1);
        let viewer = turns.of("v");
        let held = viewer.take().await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for panel in 0..4 {
            let viewer = viewer.clone();
            let order = order.clone();
            waiting.push(tokio::spawn(async move {
                let _turn = viewer.take().await;
                order.lock().unwrap().push(panel);
            }));
            // Each asks after the previous is queued.
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(held);
        for task in waiting {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_viewer_without_requests_leaves_no_entry() {
        let turns = ReadTurns::new(2);
        drop(turns.of("gone"));
        let _kept = turns.of("here");
        let viewers = turns.viewers.lock().unwrap();
        assert_eq!(viewers.keys().collect::<Vec<_>>(), vec!["here"]);
    }

    #[test]
    fn at_least_one_read_runs() {
        let turns = ReadTurns::new(0);
        assert_eq!(turns.of("v").0.available_permits(), 1);
    }
}
