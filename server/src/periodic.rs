//! The one loop every background refresh runs: do the work now, then again
//! every interval, until the server stops. A stop during the wait ends it
//! at once; a stop during the work lets the work finish.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub async fn every<F, Fut>(interval: Duration, stop: CancellationToken, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        work().await;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_at_once_and_stops_during_the_wait() {
        let stop = CancellationToken::new();
        let mut runs = 0;
        let stopper = stop.clone();
        every(Duration::from_secs(3600), stop, || {
            runs += 1;
            stopper.cancel();
            async {}
        })
        .await;
        assert_eq!(runs, 1);
    }
}
