//! The spool: where accepted events wait, on local disk, while the broker
//! cannot take them. An event is appended and fsynced before its `202`, so
//! an outage of Kafka costs latency, never an event. A forwarder drains the
//! spool to Kafka in order once the broker is back; a restart resumes where
//! the last acknowledged record left off. While the spool holds anything,
//! new events join its end, so each tenant's events keep their order.
//!
//! Layout: segment files (`segment.rs`) and a `position` file naming the
//! first record Kafka has not acknowledged. Forwarded records are
//! re-sent after a crash between the broker's acknowledgement and the
//! position update; they carry their event_id, and duplicates are removed
//! downstream like any re-delivery.

pub mod forward;
mod segment;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tracing::{info, warn};

use crate::metrics::Metrics;
pub use segment::SpoolRecord;
use segment::{list_segments, segment_path, FormatError, SegmentReader};

/// A segment is closed for appends at this size, so that drained data can be
/// deleted a segment at a time.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool is full ({pending_bytes} of {max_bytes} bytes waiting for the broker)")]
    Full { pending_bytes: u64, max_bytes: u64 },
    #[error("spool directory {dir} is in use by another Attest process")]
    Locked { dir: PathBuf },
    #[error("spool I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("spool segment {path} is damaged before its end ({problem}); move it aside to start, and keep it for recovery")]
    Damaged { path: PathBuf, problem: FormatError },
    #[error("spool task failed: {0}")]
    Task(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the first record not yet acknowledged by Kafka starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    seq: u64,
    offset: u64,
}

/// Records read for forwarding, and the position after them.
pub struct Chunk {
    pub records: Vec<SpoolRecord>,
    end: Position,
    bytes: u64,
}

struct Head {
    seq: u64,
    file: File,
    len: u64,
}

struct State {
    head: Head,
    position: Position,
    pending_records: u64,
    pending_bytes: u64,
    /// One entry per append still (partly) pending: where it ends and
    /// when it was made, oldest first. The front is the oldest waiting
    /// event's append time; one entry per append (not per record) keeps
    /// it small even through a long outage.
    appends: std::collections::VecDeque<(Position, i64)>,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
    active: AtomicBool,
    appended: Notify,
    metrics: Arc<Metrics>,
    /// Held for the life of the spool: one process per directory.
    _lock: File,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, cutting off a record that a
    /// crash left half-written at its end.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Spool>, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(SpoolError::Locked {
                dir: dir.to_owned(),
            });
        }
        let position = read_position(dir)?;
        let mut segments = list_segments(dir).map_err(io_err(dir))?;
        // Segments wholly before the position were drained; a crash came
        // between the position update and their deletion.
        for seq in segments.iter().filter(|s| **s < position.seq) {
            let path = segment_path(dir, *seq);
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
        segments.retain(|s| *s >= position.seq);
        let (mut pending_records, mut pending_bytes) = (0u64, 0u64);
        let last = segments.last().copied();
        for seq in &segments {
            let path = segment_path(dir, *seq);
            let start = if *seq == position.seq {
                position.offset
            } else {
                0
            };
            let mut reader = SegmentReader::open(&path, start).map_err(io_err(&path))?;
            loop {
                match reader.next_record().map_err(io_err(&path))? {
                    None => break,
                    Some(Ok(_)) => pending_records += 1,
                    Some(Err(problem)) if Some(*seq) == last => {
                        warn!(path = %path.display(), %problem, "cutting off a record left half-written by a crash; it was never acknowledged");
                        let file = OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .map_err(io_err(&path))?;
                        file.set_len(reader.offset()).map_err(io_err(&path))?;
                        file.sync_all().map_err(io_err(&path))?;
                        break;
                    }
                    Some(Err(problem)) => return Err(SpoolError::Damaged { path, problem }),
                }
            }
            pending_bytes += reader.offset() - start;
        }
        let head_seq = last.unwrap_or(position.seq);
        let head_path = segment_path(dir, head_seq);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&head_path)
            .map_err(io_err(&head_path))?;
        let len = file.metadata().map_err(io_err(&head_path))?.len();
        sync_dir(dir)?;
        if pending_records > 0 {
            info!(
                records = pending_records,
                bytes = pending_bytes,
                "spool holds events from before the restart; forwarding them"
            );
        }
        let spool = Spool {
            dir: dir.to_owned(),
            max_bytes,
            state: Mutex::new(State {
                head: Head {
                    seq: head_seq,
                    file,
                    len,
                },
                position,
                pending_records,
                pending_bytes,
                // What a previous run left has no append times here: it
                // counts from now, so its age reads low, never high.
                appends: if pending_records > 0 {
                    std::collections::VecDeque::from([(
                        Position {
                            seq: head_seq,
                            offset: len,
                        },
                        crate::ingest::now_ms(),
                    )])
                } else {
                    std::collections::VecDeque::new()
                },
            }),
            active: AtomicBool::new(pending_records > 0),
            appended: Notify::new(),
            metrics,
            _lock: lock,
        };
        spool.report(&spool.lock_state());
        Ok(Arc::new(spool))
    }

    /// True while the spool holds events: new ones must queue behind them.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// Appends the records and fsyncs them: when this returns `Ok`, they
    /// survive a crash of this process or of the machine.
    pub async fn append(self: &Arc<Self>, records: Vec<SpoolRecord>) -> Result<(), SpoolError> {
        let spool = self.clone();
        let done = tokio::task::spawn_blocking(move || spool.append_blocking(&records)).await;
        let result = done.unwrap_or_else(|join| {
            Err(SpoolError::Io {
                path: self.dir.clone(),
                source: io::Error::other(join.to_string()),
            })
        });
        if result.is_ok() {
            self.appended.notify_one();
        }
        result
    }

    fn append_blocking(&self, records: &[SpoolRecord]) -> Result<(), SpoolError> {
        let bytes: Vec<u8> = records.iter().flat_map(SpoolRecord::encode).collect();
        let mut state = self.lock_state();
        let total = bytes.len() as u64;
        if state.pending_bytes + total > self.max_bytes {
            return Err(SpoolError::Full {
                pending_bytes: state.pending_bytes,
                max_bytes: self.max_bytes,
            });
        }
        if state.head.len >= SEGMENT_BYTES {
            let seq = state.head.seq + 1;
            let path = segment_path(&self.dir, seq);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_err(&path))?;
            sync_dir(&self.dir)?;
            state.head = Head { seq, file, len: 0 };
        }
        let path = segment_path(&self.dir, state.head.seq);
        if let Err(source) = state
            .head
            .file
            .write_all(&bytes)
            .and_then(|()| state.head.file.sync_data())
        {
            // Take back whatever part was written, so the next append does
            // not land behind half a record. If even that fails, the next
            // start cuts the tail off (these records were never accepted).
            let keep = state.head.len;
            if let Err(error) = state.head.file.set_len(keep) {
                warn!(%error, path = %path.display(), "cannot take back a failed spool write");
            }
            return Err(SpoolError::Io { path, source });
        }
        state.head.len += total;
        state.pending_records += records.len() as u64;
        state.pending_bytes += total;
        let end = Position {
            seq: state.head.seq,
            offset: state.head.len,
        };
        state.appends.push_back((end, crate::ingest::now_ms()));
        self.active.store(true, Ordering::SeqCst);
        self.metrics.spool_appended.inc_by(records.len() as u64);
        self.report(&state);
        Ok(())
    }

    /// Up to `max` records and about `max_bytes` from the position on (at
    /// least one record, however large); `None` when all are forwarded.
    pub fn read_chunk(&self, max: usize, max_bytes: u64) -> Result<Option<Chunk>, SpoolError> {
        let (start, head) = {
            let state = self.lock_state();
            (
                state.position,
                Position {
                    seq: state.head.seq,
                    offset: state.head.len,
                },
            )
        };
        if start >= head {
            return Ok(None);
        }
        let mut records = Vec::new();
        let mut at = start;
        let mut bytes = 0u64;
        let room =
            |records: &Vec<SpoolRecord>, bytes: u64| records.len() < max && bytes < max_bytes;
        while room(&records, bytes) && at < head {
            let path = segment_path(&self.dir, at.seq);
            let mut reader = SegmentReader::open(&path, at.offset).map_err(io_err(&path))?;
            while room(&records, bytes) && (at.seq < head.seq || reader.offset() < head.offset) {
                match reader.next_record().map_err(io_err(&path))? {
                    Some(Ok(record)) => {
                        bytes += reader.offset() - at.offset;
                        at.offset = reader.offset();
                        records.push(record);
                    }
                    None => break,
                    Some(Err(problem)) => return Err(SpoolError::Damaged { path, problem }),
                }
            }
            if room(&records, bytes) && at.seq < head.seq {
                // This segment is done; the next one starts at 0.
                at = Position {
                    seq: at.seq + 1,
                    offset: 0,
                };
            } else {
                break;
            }
        }
        Ok((!records.is_empty()).then_some(Chunk {
            records,
            end: at,
            bytes,
        }))
    }

    /// Records that Kafka acknowledged every record of `chunk`: moves the
    /// position past it, durably, and deletes drained segments.
    pub fn commit(&self, chunk: &Chunk) -> Result<(), SpoolError> {
        let mut state = self.lock_state();
        write_position(&self.dir, chunk.end)?;
        for seq in state.position.seq..chunk.end.seq {
            let path = segment_path(&self.dir, seq);
            if let Err(error) = std::fs::remove_file(&path) {
                warn!(path = %path.display(), %error, "cannot delete a drained spool segment");
            }
        }
        state.position = chunk.end;
        state.pending_records = state
            .pending_records
            .saturating_sub(chunk.records.len() as u64);
        state.pending_bytes = state.pending_bytes.saturating_sub(chunk.bytes);
        // Appends wholly forwarded are no longer waiting.
        while state
            .appends
            .front()
            .is_some_and(|(end, _)| *end <= chunk.end)
        {
            state.appends.pop_front();
        }
        // Under the lock: no append can slip in between the check and the
        // switch back to sending straight to Kafka.
        if state.position
            >= (Position {
                seq: state.head.seq,
                offset: state.head.len,
            })
        {
            self.active.store(false, Ordering::SeqCst);
            info!("spool drained; events go straight to Kafka again");
        }
        self.metrics
            .spool_forwarded
            .inc_by(chunk.records.len() as u64);
        self.report(&state);
        Ok(())
    }

    /// Waits until something is appended (or returns at once if something
    /// was appended since the last wait).
    pub async fn appended(&self) {
        self.appended.notified().await;
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data behind
        // (files are the truth), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn report(&self, state: &State) {
        self.metrics
            .spool_pending_events
            .set(i64::try_from(state.pending_records).unwrap_or(i64::MAX));
        self.metrics
            .spool_pending_bytes
            .set(i64::try_from(state.pending_bytes).unwrap_or(i64::MAX));
        let oldest = match state.appends.front() {
            Some((_, at_ms)) if state.pending_records > 0 => *at_ms,
            _ => 0,
        };
        self.metrics.spool_oldest_pending(oldest);
    }
}

fn read_position(dir: &Path) -> Result<Position, SpoolError> {
    let path = dir.join("position");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut parts = text.split_whitespace().map(str::parse::<u64>);
            match (parts.next(), parts.next()) {
                (Some(Ok(seq)), Some(Ok(offset))) => Ok(Position { seq, offset }),
                _ => Err(SpoolError::Io {
                    path,
                    source: io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unreadable position {text:?}"),
                    ),
                }),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let first = list_segments(dir)
                .map_err(io_err(dir))?
                .first()
                .copied()
                .unwrap_or(0);
            Ok(Position {
                seq: first,
                offset: 0,
            })
        }
        Err(source) => Err(SpoolError::Io { path, source }),
    }
}

/// Replaces the position file atomically: written aside, fsynced, renamed.
fn write_position(dir: &Path, position: Position) -> Result<(), SpoolError> {
    let tmp = dir.join("position.tmp");
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(format!("{} {}\n", position.seq, position.offset).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_err(&tmp))?;
    let path = dir.join("position");
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)
}

/// Makes file creations and renames in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> SpoolRecord {
        SpoolRecord {
            topic: "t".into(),
            key: "k".into(),
            event_id: format!("e-{i}"),
            payload: vec![7; 100],
        }
    }

    fn temp() -> PathBuf {
        std::env::temp_dir().join(format!("attest-spool-{}", uuid::Uuid::now_v7()))
    }

    #[tokio::test]
    async fn appended_records_are_read_in_order_and_survive_a_reopen() {
        let dir = temp();
        let metrics = Arc::new(Metrics::new());
        {
            let spool = Spool::open(&dir, 1 << 20, metrics.clone()).unwrap();
            assert!(!spool.is_active());
            spool.append((0..5).map(record).collect()).await.unwrap();
            spool.append(vec![record(5)]).await.unwrap();
            assert!(spool.is_active());
            let chunk = spool.read_chunk(4, u64::MAX).unwrap().unwrap();
            let ids: Vec<&str> = chunk.records.iter().map(|r| r.event_id.as_str()).collect();
            assert_eq!(ids, ["e-0", "e-1", "e-2", "e-3"]);
            spool.commit(&chunk).unwrap();
            assert!(spool.is_active());
            assert!(
                Spool::open(&dir, 1 << 20, metrics.clone()).is_err(),
                "the directory is locked"
            );
        }
        // Reopened as after a crash: the two unacknowledged records remain.
        let spool = Spool::open(&dir, 1 << 20, metrics.clone()).unwrap();
        assert!(spool.is_active());
        assert_eq!(metrics.spool_pending_events.get(), 2);
        let chunk = spool.read_chunk(100, u64::MAX).unwrap().unwrap();
        let ids: Vec<&str> = chunk.records.iter().map(|r| r.event_id.as_str()).collect();
        assert_eq!(ids, ["e-4", "e-5"]);
        spool.commit(&chunk).unwrap();
        assert!(!spool.is_active());
        assert!(spool.read_chunk(100, u64::MAX).unwrap().is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn the_oldest_waiting_append_time_follows_the_forwarding() {
        let dir = temp();
        let metrics = Arc::new(Metrics::new());
        let spool = Spool::open(&dir, 1 << 20, metrics.clone()).unwrap();
        assert_eq!(metrics.spool_oldest_pending_ms(), 0, "empty");
        let before = crate::ingest::now_ms();
        spool.append((0..3).map(record).collect()).await.unwrap();
        let first = metrics.spool_oldest_pending_ms();
        assert!(first >= before);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        spool.append(vec![record(3)]).await.unwrap();
        assert_eq!(
            metrics.spool_oldest_pending_ms(),
            first,
            "still the first append"
        );
        // Part of the first append forwarded: it still waits.
        let chunk = spool.read_chunk(2, u64::MAX).unwrap().unwrap();
        spool.commit(&chunk).unwrap();
        assert_eq!(metrics.spool_oldest_pending_ms(), first);
        // The rest of it forwarded: the second append is now the oldest.
        let chunk = spool.read_chunk(1, u64::MAX).unwrap().unwrap();
        spool.commit(&chunk).unwrap();
        let second = metrics.spool_oldest_pending_ms();
        assert!(second >= first + 20, "{second} vs {first}");
        let chunk = spool.read_chunk(10, u64::MAX).unwrap().unwrap();
        spool.commit(&chunk).unwrap();
        assert_eq!(metrics.spool_oldest_pending_ms(), 0, "drained");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_chunk_is_bounded_by_bytes_with_maximum_size_events() {
        let dir = temp();
        let metrics = Arc::new(Metrics::new());
        let spool = Spool::open(&dir, 64 << 20, metrics).unwrap();
        // Events at the batch body limit's scale: 1 MiB payloads.
        let big = |i: usize| SpoolRecord {
            payload: vec![1; 1 << 20],
            ..record(i)
        };
        spool.append((0..10).map(big).collect()).await.unwrap();
        let chunk = spool.read_chunk(1000, 3 << 20).unwrap().unwrap();
        assert_eq!(chunk.records.len(), 3, "3 MiB hold three 1 MiB events");
        assert!(chunk.bytes >= 3 << 20 && chunk.bytes < 4 << 20);
        // One event larger than the bound still moves: never stuck.
        spool.commit(&chunk).unwrap();
        let one = spool.read_chunk(1000, 1).unwrap().unwrap();
        assert_eq!(one.records.len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_full_spool_refuses_and_a_torn_tail_is_cut_off() {
        let dir = temp();
        let metrics = Arc::new(Metrics::new());
        {
            let spool = Spool::open(&dir, 300, metrics.clone()).unwrap();
            spool.append(vec![record(0), record(1)]).await.unwrap();
            assert!(matches!(
                spool.append(vec![record(2)]).await,
                Err(SpoolError::Full { .. })
            ));
        }
        // A crash in the middle of an append.
        let head = segment_path(&dir, 0);
        let mut file = OpenOptions::new().append(true).open(&head).unwrap();
        file.write_all(&record(3).encode()[..20]).unwrap();
        drop(file);
        let spool = Spool::open(&dir, 300, metrics).unwrap();
        let chunk = spool.read_chunk(100, u64::MAX).unwrap().unwrap();
        assert_eq!(chunk.records.len(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
