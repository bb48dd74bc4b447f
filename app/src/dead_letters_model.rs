//! The dead-letter inbox as the server reads it (`server/src/dlq/`) and the
//! admin page shows it (`pages/dead_letters.rs`): one page of waiting
//! letters with counts, and the report of an action. The rules both sides
//! apply (what names a letter, what a discard reason may be, how pages are
//! cut) are pure functions here, with tests.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a masked metadata value reads as: the key stays, the value never
/// leaves the server.
pub const MASK: &str = "•••";
/// The longest discard reason, in characters: a sentence or a ticket
/// reference, kept whole in the audit event.
pub const MAX_DISCARD_REASON: usize = 500;
/// Letters per page unless the page asks for another number.
pub const DEFAULT_PER_PAGE: u32 = 25;
pub const MAX_PER_PAGE: u32 = 200;
/// Most letters one request may name (selected ones); "all that now
/// decode" is not named letter by letter and has no such bound.
pub const MAX_NAMED: usize = 1_000;

/// A dead letter, by where it sits in the dead-letter topic: that place
/// never changes, so it names the letter in forms, actions and the table
/// of what was done. Written `partition/offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LetterId {
    pub partition: i32,
    pub offset: i64,
}

impl fmt::Display for LetterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.partition, self.offset)
    }
}

impl FromStr for LetterId {
    type Err = String;

    fn from_str(s: &str) -> Result<LetterId, String> {
        let bad = || format!("{s:?} does not name a dead letter (partition/offset)");
        let (p, o) = s.trim().split_once('/').ok_or_else(bad)?;
        let partition: i32 = p.parse().map_err(|_| bad())?;
        let offset: i64 = o.parse().map_err(|_| bad())?;
        if partition < 0 || offset < 0 {
            return Err(bad());
        }
        Ok(LetterId { partition, offset })
    }
}

/// `ids`: letters separated by commas (or whitespace), as the page's forms
/// send them. Sorted, each once; empty, malformed or too many is an error
/// that names the field.
pub fn parse_ids(ids: &str) -> Result<Vec<LetterId>, String> {
    let mut parsed = ids
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(LetterId::from_str)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("ids: {e}"))?;
    parsed.sort();
    parsed.dedup();
    if parsed.is_empty() {
        return Err("ids: select at least one dead letter".into());
    }
    if parsed.len() > MAX_NAMED {
        return Err(format!(
            "ids: {} letters named; at most {MAX_NAMED} per request (use \"all that now decode\")",
            parsed.len()
        ));
    }
    Ok(parsed)
}

/// `ids` written for a form field or an audit event: `0/3,0/4,1/9`.
pub fn join_ids(ids: &[LetterId]) -> String {
    ids.iter()
        .map(LetterId::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A discard's written reason, trimmed: required, at most
/// [`MAX_DISCARD_REASON`] characters, no control characters but line
/// breaks and tabs.
pub fn discard_reason(reason: &str) -> Result<String, String> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err("reason: say why these letters are discarded".into());
    }
    let chars = reason.chars().count();
    if chars > MAX_DISCARD_REASON {
        return Err(format!(
            "reason: {chars} characters; at most {MAX_DISCARD_REASON}"
        ));
    }
    if reason
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err("reason: contains a control character".into());
    }
    Ok(reason.to_owned())
}

/// Which page the viewer asked for, and how long pages are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxQuery {
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
    /// Only letters with this reason code.
    pub reason: Option<String>,
}

impl Default for InboxQuery {
    fn default() -> InboxQuery {
        InboxQuery {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
            reason: None,
        }
    }
}

/// The items `[start, end)` of page `page` (1-based, clamped to the last
/// page) of `total` items, `per_page` (clamped to 1..=MAX_PER_PAGE) each,
/// and how many pages there are (at least 1).
pub fn page_bounds(total: usize, page: u32, per_page: u32) -> (usize, usize, u32) {
    let per_page = per_page.clamp(1, MAX_PER_PAGE) as usize;
    let pages = total.div_ceil(per_page).max(1);
    let page = (page.max(1) as usize).min(pages);
    let start = (page - 1).saturating_mul(per_page);
    let end = start.saturating_add(per_page).min(total);
    (start, end, u32::try_from(pages).unwrap_or(u32::MAX))
}

/// One page of the inbox.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxPage {
    /// The dead-letter topic read.
    pub topic: String,
    /// Epoch ms when the topic was read.
    pub read_at_ms: i64,
    pub counts: InboxCounts,
    /// The waiting letters of this page, oldest first.
    pub letters: Vec<LetterView>,
    /// 1-based, as served (clamped to the last page).
    pub page: u32,
    pub pages: u32,
    pub per_page: u32,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxCounts {
    /// Letters waiting for an action (every reason).
    pub waiting: u64,
    /// Of those, the ones that now decode and validate.
    pub ready: u64,
    /// Waiting letters per reason code, by code.
    pub by_reason: Vec<(String, u64)>,
    /// Letters already acted on (they are not listed).
    pub redriven: u64,
    pub discarded: u64,
    /// Waiting letters matching the page's reason filter.
    pub matching: u64,
}

/// One waiting dead letter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LetterView {
    pub id: LetterId,
    /// The reason code (`unknown_schema_id`, `invalid_event`, …).
    pub reason: String,
    /// The writer's words, shortened, with nothing from the record itself
    /// where the error could quote it.
    pub detail: String,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    /// When it was written to the dead-letter topic (epoch ms).
    pub dead_lettered_at_ms: i64,
    pub size_bytes: u64,
    /// It decodes and validates now: a redrive would store it.
    pub ready: bool,
    /// Why it is not ready, or what a redrive would do.
    pub recheck: String,
    /// The decoded event, masked; `None` when it does not decode.
    pub preview: Option<Preview>,
    /// What can be said of a record that does not decode, without its
    /// bytes: size and framing.
    pub raw: String,
}

/// A decoded dead letter as the page shows it: metadata keys with their
/// values masked, and neither the actor's IP address nor user agent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    pub event_id: String,
    pub tenant_id: String,
    pub occurred_at_ms: i64,
    pub category: String,
    pub action: String,
    pub outcome: String,
    pub actor: String,
    pub resource: String,
    pub source_service: String,
    /// `(key, MASK)` per entry.
    pub metadata: Vec<(String, String)>,
}

/// What an action did, letter by letter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionReport {
    /// `redrive` or `discard`.
    pub action: String,
    pub done: Vec<LetterId>,
    /// Letters asked for but not acted on, with why (not waiting, still
    /// undecodable, the broker did not acknowledge).
    pub skipped: Vec<(LetterId, String)>,
}

impl ActionReport {
    /// One line for the page and the command line.
    pub fn summary(&self) -> String {
        let verb = if self.action == "discard" {
            "Discarded"
        } else {
            "Redrove"
        };
        let mut line = format!("{verb} {} letter(s)", self.done.len());
        if !self.skipped.is_empty() {
            line.push_str(&format!("; {} not: ", self.skipped.len()));
            let shown: Vec<String> = self
                .skipped
                .iter()
                .take(5)
                .map(|(id, why)| format!("{id} ({why})"))
                .collect();
            line.push_str(&shown.join("; "));
            if self.skipped.len() > shown.len() {
                line.push_str("; …");
            }
        }
        line
    }
}

#[cfg(feature = "ssr")]
pub use source::{DeadLetterSource, Selection, SharedDeadLetters};

#[cfg(feature = "ssr")]
mod source {
    use std::sync::Arc;

    use super::{ActionReport, InboxPage, InboxQuery, LetterId};
    use crate::search_model::SearchError;

    /// Which letters a redrive is for.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Selection {
        /// These; each must be waiting and decode now.
        Letters(Vec<LetterId>),
        /// Every waiting letter that decodes now (with this reason only,
        /// if given).
        AllReady { reason: Option<String> },
    }

    /// The inbox for one request's viewer: the server provides it already
    /// scoped by its admin gate, so `allowed` and every call answer from
    /// the same decision, and every call is recorded as an admin action.
    #[async_trait::async_trait]
    pub trait DeadLetterSource: Send + Sync + 'static {
        /// `Ok` for an admin; otherwise the gate's refusal (`Forbidden`,
        /// saying how to get the role), before anything is read.
        fn admitted(&self) -> Result<(), SearchError>;
        async fn page(&self, query: InboxQuery) -> Result<InboxPage, SearchError>;
        async fn redrive(&self, which: Selection) -> Result<ActionReport, SearchError>;
        async fn discard(
            &self,
            ids: Vec<LetterId>,
            reason: String,
        ) -> Result<ActionReport, SearchError>;
    }

    #[derive(Clone)]
    pub struct SharedDeadLetters(pub Arc<dyn DeadLetterSource>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_ids_read_and_write_as_partition_slash_offset() {
        let id: LetterId = "2/41".parse().unwrap();
        assert_eq!(
            id,
            LetterId {
                partition: 2,
                offset: 41
            }
        );
        assert_eq!(id.to_string(), "2/41");
        for bad in [
            "",
            "2",
            "2/",
            "/4",
            "a/1",
            "1/-4",
            "-1/4",
            "1/2/3",
            "99999999999/1",
        ] {
            assert!(bad.parse::<LetterId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn id_lists_are_sorted_deduplicated_and_bounded() {
        let ids = parse_ids("1/5, 0/7,0/7\n0/3").unwrap();
        assert_eq!(join_ids(&ids), "0/3,0/7,1/5");
        assert!(parse_ids("").unwrap_err().starts_with("ids:"));
        assert!(parse_ids(" , ").is_err());
        assert!(parse_ids("0/1,x").unwrap_err().contains("\"x\""));
        let many = (0..=MAX_NAMED)
            .map(|o| format!("0/{o}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse_ids(&many).unwrap_err().contains("at most"));
    }

    #[test]
    fn a_discard_needs_a_reason_of_bounded_length() {
        assert_eq!(
            discard_reason("  ticket OPS-12 \n").unwrap(),
            "ticket OPS-12"
        );
        assert!(discard_reason("").unwrap_err().starts_with("reason:"));
        assert!(discard_reason(" \n\t ").is_err());
        assert!(discard_reason(&"x".repeat(MAX_DISCARD_REASON)).is_ok());
        assert!(discard_reason(&"é".repeat(MAX_DISCARD_REASON + 1))
            .unwrap_err()
            .contains("at most"));
        assert!(discard_reason("bad\u{0}byte").is_err());
        assert!(discard_reason("two\nlines").is_ok());
    }

    #[test]
    fn pages_are_clamped() {
        assert_eq!(page_bounds(0, 1, 25), (0, 0, 1));
        assert_eq!(page_bounds(60, 1, 25), (0, 25, 3));
        assert_eq!(page_bounds(60, 3, 25), (50, 60, 3));
        assert_eq!(page_bounds(60, 9, 25), (50, 60, 3), "past the end");
        assert_eq!(page_bounds(60, 0, 25), (0, 25, 3), "page 0");
        assert_eq!(page_bounds(5, 1, 0), (0, 1, 5), "per_page 0");
        assert_eq!(
            page_bounds(1_000, 1, u32::MAX),
            (0, MAX_PER_PAGE as usize, 5)
        );
    }

    #[test]
    fn reports_say_what_was_done_and_what_was_not() {
        let id = |o| LetterId {
            partition: 0,
            offset: o,
        };
        let report = ActionReport {
            action: "redrive".into(),
            done: vec![id(1), id(2)],
            skipped: vec![(id(3), "still undecodable".into())],
        };
        assert_eq!(
            report.summary(),
            "Redrove 2 letter(s); 1 not: 0/3 (still undecodable)"
        );
        let report = ActionReport {
            action: "discard".into(),
            ..Default::default()
        };
        assert_eq!(report.summary(), "Discarded 0 letter(s)");
    }
}
