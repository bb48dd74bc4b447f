//! What the event detail page says about an event's seal (docs/INTEGRITY.md,
//! section 13): checked when the page asks, from what ClickHouse holds now,
//! against the digest that sealed the event and the published keys.

use serde::{Deserialize, Serialize};

/// Where an event was sealed, as the page names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealPlace {
    /// The digest's hash, 64 hex digits.
    pub digest_hash: String,
    /// The chain: the Kafka topic and partition the event was read from.
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// Events sealed by the digest, and this event's place among them.
    pub row_count: u64,
    pub leaf_index: u64,
    pub sealed_at: i64,
    pub key_id: String,
}

/// Who redacted an event, and what (docs/INTEGRITY.md, section 14).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactionNote {
    pub request_id: String,
    /// The fields erased (`actor.ip`, `metadata.<key>`, …).
    pub fields: Vec<String>,
    pub requested_by: String,
    pub approved_by: String,
    pub reason: String,
    /// Epoch milliseconds.
    pub executed_at: i64,
    pub key_id: String,
}

/// The verdict on one stored event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SealVerdict {
    /// The event as stored hashes to the leaf its digest sealed, the
    /// digest's leaves hash to its signed root, and the signature holds
    /// under a published key valid when it was made.
    Verified { place: SealPlace },
    /// Some fields were erased by an approved redaction: the event as
    /// stored hashes to the content hash its signed redaction record
    /// names, and the record's original content hash gives the leaf the
    /// digest sealed (which verifies as for `Verified`).
    Redacted {
        place: SealPlace,
        redaction: RedactionNote,
    },
    /// No digest holds the event: its batch was stored moments ago and
    /// its digest is being written, or it was stored while sealing was off.
    Unsealed { sealing_on: bool },
    /// The event as stored no longer hashes to the leaf its digest sealed:
    /// it was changed after it was written.
    Altered { place: SealPlace },
    /// The digest's stored leaves no longer hash to its signed root.
    LeavesAltered { place: SealPlace },
    /// The digest itself fails its check: its hash, its signature, or its
    /// key (the problem says which).
    DigestInvalid { place: SealPlace, problem: String },
    /// A redaction record would explain the stored event, but it does not
    /// verify (a forged or altered record).
    RedactionInvalid { place: SealPlace, problem: String },
    /// The row's `content_hash` column, which Search and the dashboards
    /// count events by, is not the hash of its content: a row inserted or
    /// changed outside Attest, counted as an event apart from its
    /// original. Judged before any digest: whatever its seal says of the
    /// content, the row itself is not one Attest wrote.
    IdentityForged {
        stored_hash: String,
        content_hash: String,
    },
}

impl SealVerdict {
    /// A failure the page shows as an error, not a notice.
    pub fn failed(&self) -> bool {
        matches!(
            self,
            SealVerdict::Altered { .. }
                | SealVerdict::LeavesAltered { .. }
                | SealVerdict::DigestInvalid { .. }
                | SealVerdict::RedactionInvalid { .. }
                | SealVerdict::IdentityForged { .. }
        )
    }

    /// The headline, in words.
    pub fn headline(&self) -> &'static str {
        match self {
            SealVerdict::Verified { .. } => "Verified",
            SealVerdict::Redacted { .. } => "Redacted (verified)",
            SealVerdict::Unsealed { .. } => "Not sealed",
            SealVerdict::Altered { .. } => "Changed after it was sealed",
            SealVerdict::LeavesAltered { .. } => "Its digest's leaves were changed",
            SealVerdict::DigestInvalid { .. } => "Its digest fails its check",
            SealVerdict::RedactionInvalid { .. } => "Its redaction record fails its check",
            SealVerdict::IdentityForged { .. } => "Stored under a forged content hash",
        }
    }

    /// One sentence saying what was checked and found, and for a failure
    /// what it means.
    pub fn explanation(&self, received_ms_ago: i64) -> String {
        match self {
            SealVerdict::Verified { place } => format!(
                "The event as stored now hashes to leaf {} of {} sealed in digest {}, \
                 those leaves hash to the digest's signed root, and its signature holds \
                 under key {}.",
                place.leaf_index.saturating_add(1),
                place.row_count,
                short(&place.digest_hash),
                place.key_id
            ),
            SealVerdict::Redacted { place, redaction } => format!(
                "{} erased by redaction request {}, requested by {} and approved by {}, \
                 executed {} UTC (reason: {}). The event as stored hashes to the content \
                 hash its redaction record names (signed with key {}), and the original \
                 content hash in that record gives leaf {} of {} sealed in digest {}, whose \
                 signature holds under key {}.",
                redaction.fields.join(", "),
                redaction.request_id,
                redaction.requested_by,
                redaction.approved_by,
                crate::timefmt::utc_millis(redaction.executed_at),
                redaction.reason,
                redaction.key_id,
                place.leaf_index.saturating_add(1),
                place.row_count,
                short(&place.digest_hash),
                place.key_id
            ),
            SealVerdict::Unsealed { sealing_on: true } if received_ms_ago < UNSEALED_GRACE_MS => {
                "Stored moments ago: the writer seals each batch right after storing it, \
                 so its digest is on its way."
                    .to_owned()
            }
            SealVerdict::Unsealed { sealing_on: true } => {
                "No digest holds this event. Events stored while sealing was off are \
                 never sealed; otherwise run `attest integrity check`, which names \
                 what is missing."
                    .to_owned()
            }
            SealVerdict::Unsealed { sealing_on: false } => {
                "Sealing is off on this installation (integrity.seal), so this event \
                 has no digest."
                    .to_owned()
            }
            SealVerdict::Altered { place } => format!(
                "The event as stored no longer hashes to the leaf digest {} sealed on \
                 {} UTC: a stored field was changed after the event was written. \
                 Treat the fields above as untrusted.",
                short(&place.digest_hash),
                crate::timefmt::utc_millis(place.sealed_at)
            ),
            SealVerdict::LeavesAltered { place } => format!(
                "The leaves stored for digest {} no longer hash to its signed root: \
                 the integrity tables were changed after sealing.",
                short(&place.digest_hash)
            ),
            SealVerdict::DigestInvalid { place, problem } => {
                format!("Digest {}: {problem}.", short(&place.digest_hash))
            }
            SealVerdict::RedactionInvalid { problem, .. } => format!(
                "The event as stored differs from what was sealed, and the {problem}: \
                 treat the fields above as untrusted."
            ),
            SealVerdict::IdentityForged {
                stored_hash,
                content_hash,
            } => format!(
                "This row's content hash column is {}…, but its content hashes to {}…: \
                 the row was inserted or changed outside Attest, and Search and the \
                 dashboards count it as an event apart from the one Attest stored. \
                 Treat it as untrusted; `attest integrity check` names every such row.",
                short(stored_hash),
                short(content_hash)
            ),
        }
    }

    pub fn place(&self) -> Option<&SealPlace> {
        match self {
            SealVerdict::Verified { place }
            | SealVerdict::Redacted { place, .. }
            | SealVerdict::RedactionInvalid { place, .. }
            | SealVerdict::Altered { place }
            | SealVerdict::LeavesAltered { place }
            | SealVerdict::DigestInvalid { place, .. } => Some(place),
            SealVerdict::Unsealed { .. } | SealVerdict::IdentityForged { .. } => None,
        }
    }

    /// How bad it is, for choosing among several digests holding the same
    /// event (a digest left by a crash and the one sealing the rows again):
    /// the worst finding is the one shown.
    pub fn severity(&self) -> u8 {
        match self {
            SealVerdict::Unsealed { .. } => 0,
            SealVerdict::Verified { .. } => 1,
            SealVerdict::Redacted { .. } => 2,
            SealVerdict::DigestInvalid { .. } => 3,
            SealVerdict::RedactionInvalid { .. } => 4,
            SealVerdict::LeavesAltered { .. } => 5,
            SealVerdict::Altered { .. } => 6,
            SealVerdict::IdentityForged { .. } => 7,
        }
    }

    /// The redaction, for a redacted event.
    pub fn redaction(&self) -> Option<&RedactionNote> {
        match self {
            SealVerdict::Redacted { redaction, .. } => Some(redaction),
            _ => None,
        }
    }
}

/// How long after an event is stored its missing digest is expected
/// rather than suspicious: the writer seals a batch right after inserting
/// it, and a batch waits at most `writer.max_age` (1 s by default).
pub const UNSEALED_GRACE_MS: i64 = 60_000;

/// The first 12 hex digits of a hash, as the page and the logs abbreviate
/// it.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The verdict with when it was reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSeal {
    pub verdict: SealVerdict,
    pub checked_at: i64,
}

#[cfg(feature = "ssr")]
pub use source::{EventSeals, SharedSeals};

#[cfg(feature = "ssr")]
mod source {
    use std::sync::Arc;

    use super::EventSeal;
    use crate::store::StoreError;

    /// Checks one event's seal for the signed-in viewer; the server scopes
    /// it (another tenant's event is answered like a missing one).
    #[async_trait::async_trait]
    pub trait EventSeals: Send + Sync + 'static {
        /// `None`: no such event for this viewer. `at` and `content` pick
        /// among events sent with one id, as the detail page does.
        async fn event_seal(
            &self,
            tenant: &str,
            event_id: &str,
            at_ms: Option<i64>,
            content: Option<&str>,
        ) -> Result<Option<EventSeal>, StoreError>;
    }

    /// Provided per request by the server.
    #[derive(Clone)]
    pub struct SharedSeals(pub Arc<dyn EventSeals>);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place() -> SealPlace {
        SealPlace {
            digest_hash: "ab".repeat(32),
            topic: "attest.events.authentication".into(),
            partition: 1,
            first_offset: 10,
            last_offset: 19,
            row_count: 10,
            leaf_index: 3,
            sealed_at: 0,
            key_id: "k1".into(),
        }
    }

    #[test]
    fn the_worst_finding_wins_and_failures_are_errors() {
        let all = [
            SealVerdict::Unsealed { sealing_on: true },
            SealVerdict::Verified { place: place() },
            SealVerdict::Redacted {
                place: place(),
                redaction: note(),
            },
            SealVerdict::DigestInvalid {
                place: place(),
                problem: "bad signature".into(),
            },
            SealVerdict::RedactionInvalid {
                place: place(),
                problem: "bad signature".into(),
            },
            SealVerdict::LeavesAltered { place: place() },
            SealVerdict::Altered { place: place() },
        ];
        for pair in all.windows(2) {
            assert!(pair[0].severity() < pair[1].severity(), "{pair:?}");
        }
        assert_eq!(
            all.iter().filter(|v| v.failed()).count(),
            4,
            "unsealed, verified and redacted are not failures"
        );
    }

    fn note() -> RedactionNote {
        RedactionNote {
            request_id: "req-1".into(),
            fields: vec!["actor.ip".into(), "metadata.email".into()],
            requested_by: "alice".into(),
            approved_by: "bob".into(),
            reason: "GDPR erasure 7".into(),
            executed_at: 0,
            key_id: "k1".into(),
        }
    }

    #[test]
    fn a_redaction_names_its_request_fields_and_both_admins() {
        let v = SealVerdict::Redacted {
            place: place(),
            redaction: note(),
        };
        let text = v.explanation(0);
        for part in [
            "req-1",
            "actor.ip, metadata.email",
            "alice",
            "bob",
            "GDPR erasure 7",
            "leaf 4 of 10",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        assert!(!v.failed());
        assert_eq!(v.redaction(), Some(&note()));
    }

    #[test]
    fn explanations_name_the_digest_and_the_leaf_counting_from_one() {
        let v = SealVerdict::Verified { place: place() };
        let text = v.explanation(0);
        assert!(text.contains("leaf 4 of 10"), "{text}");
        assert!(text.contains("abababababab"), "{text}");
        assert!(!text.contains(&"ab".repeat(32)), "abbreviated: {text}");
        let fresh = SealVerdict::Unsealed { sealing_on: true }.explanation(5_000);
        let old = SealVerdict::Unsealed { sealing_on: true }.explanation(3_600_000);
        assert!(fresh.contains("on its way"), "{fresh}");
        assert!(old.contains("attest integrity check"), "{old}");
    }
}
