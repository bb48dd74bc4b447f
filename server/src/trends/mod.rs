//! Pipeline trends (docs/DESIGN.md, "Pipeline trends"): the pipeline
//! page's figures sampled every `trends.sample_every` into ClickHouse
//! (`attest_pipeline_samples`, migration 0018) by one server process, the
//! one elected through Kafka as the alert evaluator is (`alert::leader`,
//! role `trends`). The same process removes samples older than
//! `trends.keep_days`, a UTC day (a partition) at a time (and so the
//! processes' status reports, `health::procs`), and alert history older
//! than `alerts.keep_days`.
//!
//! One writer: the sampler checks its election before it collects and
//! again just before it inserts. Across a hand-over two processes could
//! both pass the second check within one interval; the samples carry
//! their sampler's id and the interval's start, so such a pair is visible
//! and the charts, which reduce each bucket, are not misled by it.

mod samples;

use std::sync::Arc;
use std::time::Duration;

use app::trends_model::{charted_series, sample_time, TrendWindow, Trends};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::alert::leader::{self, Leadership};
use crate::config::{KafkaConfig, TrendsConfig};
use crate::health::pipeline::PipelineCollector;
use crate::ingest::now_ms;
use crate::metrics::{histogram_buckets, Metrics};
use crate::store::{Store, StoreError, DAY_MS};
pub use samples::{samples_of, Reading};

/// The sampler's election (`alert::leader`).
const ROLE: &str = "trends";

/// The trends election's topic for `prefix`.
pub fn election_topic(prefix: &str) -> String {
    leader::topic(prefix, ROLE)
}

#[derive(Debug, thiserror::Error)]
pub enum TrendsStartError {
    #[error("cannot prepare the trends election topic: {0}")]
    Topic(#[from] crate::produce::ProduceError),
    #[error("cannot join the trends election: {0}")]
    Election(#[from] rdkafka::error::KafkaError),
}

pub struct Sampler {
    config: TrendsConfig,
    /// `alerts.keep_days`; 0 keeps alert history for ever.
    alert_keep_days: u32,
    store: Store,
    collector: Arc<PipelineCollector>,
    metrics: Arc<Metrics>,
    leadership: Arc<Leadership>,
    /// Written with every sample: which process took it.
    id: String,
}

impl Sampler {
    /// Joins the election; [`Sampler::run`] samples while elected.
    pub async fn start(
        config: TrendsConfig,
        alert_keep_days: u32,
        kafka: &KafkaConfig,
        store: Store,
        collector: Arc<PipelineCollector>,
        metrics: Arc<Metrics>,
        stop: &CancellationToken,
    ) -> Result<Arc<Sampler>, TrendsStartError> {
        leader::prepare(kafka, ROLE).await?;
        let leadership = leader::join(kafka, ROLE, stop.clone())?;
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let id = format!(
            "{host}/{}/{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        );
        Ok(Arc::new(Sampler {
            config,
            alert_keep_days,
            store,
            collector,
            metrics,
            leadership,
            id,
        }))
    }

    pub fn elected(&self) -> bool {
        self.leadership.elected()
    }

    /// Samples every `sample_every` and removes old data every
    /// `retention_every`, while elected, until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let retention = {
            let (sampler, stop) = (self.clone(), stop.clone());
            tokio::spawn(async move {
                crate::periodic::every(sampler.config.retention_every, stop, || sampler.retention())
                    .await
            })
        };
        let previous = tokio::sync::Mutex::new(None::<Reading>);
        crate::periodic::every(self.config.sample_every, stop, || async {
            let mut previous = previous.lock().await;
            self.round(&mut previous).await;
        })
        .await;
        let _ = retention.await;
    }

    async fn round(&self, previous: &mut Option<Reading>) {
        let elected = self.leadership.elected();
        self.metrics.trends_sampler.set(i64::from(elected));
        if !elected {
            // Rates start afresh once elected again: a stale reading
            // would average over the time another process sampled.
            *previous = None;
            return;
        }
        let snapshot = self.collector.snapshot().await;
        let now = now_ms();
        let reading = Reading::of(
            &snapshot,
            now,
            self.metrics.writer_rows_written.get(),
            histogram_buckets(&self.metrics.writer_insert_seconds),
        );
        let at = sample_time(now, millis(self.config.sample_every));
        let samples = samples_of(&snapshot, previous.as_ref(), &reading, at);
        *previous = Some(reading);
        // The collection took a while: another process may have been
        // elected meanwhile; it samples this interval.
        if !self.leadership.elected() {
            return;
        }
        match self.store.insert_samples(&samples, &self.id).await {
            Ok(()) => self
                .metrics
                .trends_samples_written
                .inc_by(u64::try_from(samples.len()).unwrap_or(0)),
            // The next interval samples again; a gap in the charts says
            // ClickHouse could not take this one.
            Err(error) => warn!(%error, "cannot write the pipeline's trend samples"),
        }
    }

    async fn retention(&self) {
        if !self.leadership.elected() {
            return;
        }
        let now = now_ms();
        let days = |n: u32| i64::from(n).saturating_mul(DAY_MS);
        match self
            .store
            .drop_samples_before(now.saturating_sub(days(self.config.keep_days)))
            .await
        {
            Ok(dropped) if !dropped.is_empty() => {
                info!(days = ?dropped, "trends retention dropped old days of samples")
            }
            Ok(_) => {}
            Err(error) => warn!(%error, "trends retention failed; trying again next round"),
        }
        // The processes' status reports (`health::procs`) are kept as
        // long as the samples: the same question, "what was it like then".
        match self
            .store
            .drop_statuses_before(now.saturating_sub(days(self.config.keep_days)))
            .await
        {
            Ok(dropped) if !dropped.is_empty() => {
                info!(days = ?dropped, "trends retention dropped old days of process reports")
            }
            Ok(_) => {}
            Err(error) => {
                warn!(%error, "process report retention failed; trying again next round")
            }
        }
        if self.alert_keep_days > 0 {
            let cutoff = now.saturating_sub(days(self.alert_keep_days));
            if let Err(error) = self.store.remove_alert_history_before(cutoff).await {
                warn!(%error, "alert history retention failed; trying again next round");
            }
        }
    }
}

/// What the pipeline page charts for `window`, ending now.
pub async fn read(
    store: &Store,
    sample_every: Duration,
    window: TrendWindow,
) -> Result<Trends, StoreError> {
    let to_ms = now_ms();
    let from_ms = to_ms.saturating_sub(window.span_ms());
    let sample_every_ms = millis(sample_every);
    let bucket_ms = window.bucket_ms(sample_every_ms);
    let series = store
        .trend_window(&charted_series(), from_ms, to_ms, bucket_ms)
        .await?;
    Ok(Trends {
        window,
        from_ms,
        to_ms,
        bucket_ms,
        sample_every_ms,
        series,
    })
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
