//! The dead-letter inbox: the one implementation behind `attest dlq
//! list|replay` and the console's admin page `/dead-letters`.
//!
//! The writer sets aside what it cannot store (`crate::write`) in the
//! dead-letter topic. The inbox is every message of that topic without a
//! row in `attest_dead_letter_actions`; a letter leaves it only when an
//! admin redrives it (back onto its source topic, as ingest writes it) or
//! discards it with a written reason, and that row is written only after
//! the action took effect (docs/DESIGN.md, "Dead-letter inbox"). Every
//! action passes the admin gate, which records it in Attest's own trail
//! before it is done.

mod inbox;
mod read;
mod recheck;
pub mod waiting;

use crate::access::{AdminRefusal, Viewer};
use crate::store::StoreError;

pub use inbox::{DeadLetterInbox, Inbox, Letter};
pub use read::{read_all, DeadLetter};
pub use recheck::Recheck;

/// Most letters one audited action covers. A larger selection ("all that
/// now decode" after an incident) runs as several actions of this size,
/// each recorded before it is done, so each audit event's list of letters
/// stays within a metadata value's bound.
pub const MAX_PER_ACTION: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("cannot read the dead-letter topic: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("dead letters were still arriving after {0:?}; try again")]
    Timeout(std::time::Duration),
    #[error("cannot read what was done with dead letters: {0}")]
    Store(#[source] StoreError),
    /// The letters were sent back and acknowledged, but the record that
    /// they were could not be written: they stay in the inbox, and a
    /// second redrive is harmless (the table keeps one row per event).
    #[error(
        "redrove {sent} letter(s) but could not record it, so they still show; redriving them again does not duplicate them: {source}"
    )]
    NotRecorded {
        sent: usize,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    Refused(#[from] AdminRefusal),
    /// Bad input; the message names the field.
    #[error("{0}")]
    BadRequest(String),
    #[error("reading the dead-letter topic stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The operator at the command line: whoever holds the configuration is
/// trusted like an admin, as for `attest access grant`; their actions are
/// recorded under `name` (`--by`, default `$USER`).
pub fn operator(name: &str) -> Viewer {
    Viewer {
        access_id: "cli".to_owned(),
        name: name.to_owned(),
        tenants: Vec::new(),
        all_tenants: true,
        signed_in: false,
        role: app::session::Role::Admin,
    }
}
