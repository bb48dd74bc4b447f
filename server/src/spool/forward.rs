//! The forwarder: moves spooled events to Kafka, oldest first, and moves the
//! spool's position only past records the broker acknowledged.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Spool, SpoolError};
use crate::backoff::Backoff;
use crate::produce::EventProducer;

const IDLE_CHECK: Duration = Duration::from_millis(500);
const RETRY_INITIAL: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Runs until `stop`. Records stay in the spool until acknowledged; a stop
/// or crash in between re-sends them on the next start (same event_id).
pub async fn run(
    spool: Arc<Spool>,
    producer: EventProducer,
    batch: usize,
    batch_bytes: u64,
    stop: CancellationToken,
) {
    // Not jittered: one forwarder per process, draining its own spool.
    let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX).without_jitter();
    loop {
        let reader = spool.clone();
        let chunk =
            tokio::task::spawn_blocking(move || reader.read_chunk(batch, batch_bytes)).await;
        let wait = match chunk {
            Ok(Ok(None)) => {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = spool.appended() => {}
                    _ = tokio::time::sleep(IDLE_CHECK) => {}
                }
                continue;
            }
            Ok(Ok(Some(chunk))) => {
                // Enqueued in order (each send is first polled in order), so
                // one tenant's events keep their order on its partition.
                let sends = chunk
                    .records
                    .iter()
                    .map(|r| producer.send_event(&r.topic, &r.key, &r.event_id, &r.payload));
                let results = futures::future::join_all(sends).await;
                let failed = results.iter().filter(|r| r.is_err()).count();
                if failed == 0 {
                    // The commit fsyncs the position: off the async workers.
                    let (writer, records) = (spool.clone(), chunk.records.len());
                    let committed =
                        tokio::task::spawn_blocking(move || writer.commit(&chunk)).await;
                    match committed.unwrap_or_else(|e| Err(SpoolError::Task(e.to_string()))) {
                        Ok(()) => {
                            info!(records, "forwarded spooled events to Kafka");
                            backoff.reset();
                            continue;
                        }
                        Err(error) => {
                            warn!(%error, "cannot record the spool position; the chunk will be sent again");
                            backoff.next_delay()
                        }
                    }
                } else {
                    let wait = backoff.next_delay();
                    warn!(
                        failed,
                        of = results.len(),
                        retry_in_ms = wait.as_millis() as u64,
                        "broker still refuses spooled events"
                    );
                    wait
                }
            }
            Ok(Err(error)) => {
                warn!(%error, "cannot read the spool");
                backoff.next_delay()
            }
            Err(error) => {
                warn!(%error, "spool reader task failed");
                backoff.next_delay()
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
