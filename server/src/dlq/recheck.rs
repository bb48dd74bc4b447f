//! What the inbox says about one dead letter, without I/O: whether it
//! decodes and validates now, its masked preview, and the writer's error
//! in words that cannot quote the record. Also how an action's letters are
//! written into its audit event.

use std::collections::BTreeMap;

use app::dead_letters_model::{LetterId, LetterView, Preview, MASK};

use super::DeadLetter;
use crate::event::AuditEvent;
use crate::ingest::validate;
use crate::registry::{wire, Registry};
use crate::write::REASON_CLICKHOUSE_REJECTED;

/// The longest error text the page shows.
const MAX_DETAIL_CHARS: usize = 240;

/// A dead letter checked against today's contract.
pub enum Recheck {
    /// It decodes and validates: a redrive stores it.
    Ready(Box<AuditEvent>),
    /// It decodes, but breaks a rule of the contract.
    Invalid(Box<AuditEvent>, String),
    /// It does not decode.
    Undecodable(String),
}

impl Recheck {
    pub fn of(registry: &Registry, payload: &[u8], now_ms: i64) -> Recheck {
        match registry.decode(payload) {
            Err(failure) => Recheck::Undecodable(format!("{}: {}", failure.code(), failure)),
            Ok((_, event)) => {
                let errors = validate::check_event(0, &event, now_ms);
                if errors.is_empty() {
                    Recheck::Ready(Box::new(event))
                } else {
                    let why = errors
                        .iter()
                        .map(|e| format!("{}: {}", e.field_path, e.problem))
                        .collect::<Vec<_>>()
                        .join("; ");
                    Recheck::Invalid(Box::new(event), format!("invalid_event: {why}"))
                }
            }
        }
    }

    pub fn event(&self) -> Option<&AuditEvent> {
        match self {
            Recheck::Ready(event) | Recheck::Invalid(event, _) => Some(event),
            Recheck::Undecodable(_) => None,
        }
    }

    pub fn is_ready(&self) -> bool {
        matches!(self, Recheck::Ready(_))
    }

    /// Why it is not ready, in words safe for the page.
    pub fn why_not(&self) -> Option<String> {
        match self {
            Recheck::Ready(_) => None,
            Recheck::Invalid(_, why) | Recheck::Undecodable(why) => Some(safe_detail(why)),
        }
    }
}

/// The letter as the page shows it.
pub fn view(letter: &DeadLetter, recheck: &Recheck) -> LetterView {
    let ready = recheck.is_ready();
    LetterView {
        id: LetterId {
            partition: letter.partition,
            offset: letter.offset,
        },
        reason: letter.reason.clone(),
        detail: letter_detail(&letter.reason, &letter.detail),
        source_topic: letter.source_topic.clone(),
        source_partition: letter.source_partition,
        source_offset: letter.source_offset,
        dead_lettered_at_ms: letter.timestamp_ms,
        size_bytes: u64::try_from(letter.payload.len()).unwrap_or(u64::MAX),
        ready,
        recheck: recheck
            .why_not()
            .unwrap_or_else(|| "decodes and validates now: a redrive stores it".to_owned()),
        preview: recheck.event().map(preview),
        raw: raw_description(&letter.payload),
    }
}

/// The event with every metadata value masked, and without the actor's
/// IP address and user agent: enough to recognise the event, nothing more.
pub fn preview(event: &AuditEvent) -> Preview {
    Preview {
        event_id: event.event_id.clone(),
        tenant_id: event.tenant_id.clone(),
        occurred_at_ms: event.occurred_at,
        category: event.category.as_str().to_owned(),
        action: event.action.clone(),
        outcome: event.outcome.as_str().to_owned(),
        actor: format!("{} ({})", event.actor.id, event.actor.kind),
        resource: event
            .resource
            .as_ref()
            .map(|r| format!("{} {}", r.kind, r.id))
            .unwrap_or_default(),
        source_service: event.source_service.clone(),
        metadata: event
            .metadata
            .keys()
            .map(|k| (k.clone(), MASK.to_owned()))
            .collect(),
    }
}

/// Size and framing of the record, never its bytes.
pub fn raw_description(payload: &[u8]) -> String {
    match wire::unframe(payload) {
        Ok((id, datum)) => format!(
            "{} bytes: schema id {id}, {} bytes of Avro",
            payload.len(),
            datum.len()
        ),
        Err(_) => format!(
            "{} bytes, not framed as Avro with a schema id (first byte {})",
            payload.len(),
            payload
                .first()
                .map_or_else(|| "none".to_owned(), |b| format!("0x{b:02x}"))
        ),
    }
}

/// The writer's error for the page. ClickHouse's own messages quote the
/// rows they refused, so of those only the error code is kept.
fn letter_detail(reason: &str, detail: &str) -> String {
    if reason == REASON_CLICKHOUSE_REJECTED {
        let code = detail
            .find("Code: ")
            .map(|at| {
                detail[at + 6..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .filter(|c| !c.is_empty());
        return match code {
            Some(code) => format!("ClickHouse refused the row (Code: {code})"),
            None => "ClickHouse refused the row".to_owned(),
        };
    }
    safe_detail(detail)
}

/// An error text with every quoted span (`'…'`, `"…"`) replaced, since
/// that is where errors quote the values they refused, cut to a length
/// that fits a table cell.
pub fn safe_detail(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_DETAIL_CHARS));
    let mut open: Option<char> = None;
    for c in text.chars() {
        match open {
            Some(q) if c == q => {
                out.push(q);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '\'' || c == '"' {
                    out.push('…');
                    open = Some(c);
                }
            }
        }
    }
    if out.chars().count() > MAX_DETAIL_CHARS {
        out = out.chars().take(MAX_DETAIL_CHARS).collect();
        out.push('…');
    }
    out.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The letters of an action for its audit event, per partition, runs of
/// consecutive offsets written as ranges: `0:3-7,9;1:2`. Bounded by the
/// number of letters per action, so it fits a metadata value.
pub fn offsets_for_audit(ids: &[LetterId]) -> String {
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for id in ids {
        by_partition
            .entry(id.partition)
            .or_default()
            .push(id.offset);
    }
    by_partition
        .into_iter()
        .map(|(partition, mut offsets)| {
            offsets.sort_unstable();
            offsets.dedup();
            let mut runs: Vec<String> = Vec::new();
            let mut i = 0;
            while i < offsets.len() {
                let start = offsets[i];
                let mut end = start;
                while i + 1 < offsets.len() && end.checked_add(1) == Some(offsets[i + 1]) {
                    i += 1;
                    end = offsets[i];
                }
                runs.push(if start == end {
                    start.to_string()
                } else {
                    format!("{start}-{end}")
                });
                i += 1;
            }
            format!("{partition}:{}", runs.join(","))
        })
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample;

    fn registry() -> Registry {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        Registry::load(&dir).expect("the committed contract loads")
    }

    fn letter(payload: Vec<u8>, reason: &str, detail: &str) -> DeadLetter {
        DeadLetter {
            partition: 1,
            offset: 7,
            timestamp_ms: 1_000,
            reason: reason.into(),
            detail: detail.into(),
            source_topic: "p.admin".into(),
            source_partition: 0,
            source_offset: 3,
            key: b"acme".to_vec(),
            payload,
        }
    }

    #[test]
    fn a_decodable_letter_is_previewed_with_metadata_values_masked() {
        let r = registry();
        let mut event = sample();
        event.occurred_at = crate::ingest::now_ms();
        event
            .metadata
            .insert("password".into(), "hunter2-secret".into());
        event.actor.ip = Some("203.0.113.9".into());
        let payload = r.encode(&event).unwrap();
        let check = Recheck::of(&r, &payload, crate::ingest::now_ms());
        assert!(check.is_ready());
        let view = view(
            &letter(payload, "unknown_schema_id", "unknown schema id 1"),
            &check,
        );
        assert!(view.ready);
        let p = view.preview.clone().expect("a preview");
        assert_eq!(p.event_id, event.event_id);
        assert!(p.metadata.iter().any(|(k, v)| k == "password" && v == MASK));
        assert!(p.metadata.iter().all(|(_, v)| v == MASK));
        let shown = serde_json::to_string(&view).unwrap();
        for value in event.metadata.values() {
            assert!(!shown.contains(value.as_str()), "{value} leaked: {shown}");
        }
        assert!(!shown.contains("203.0.113.9"), "{shown}");
    }

    #[test]
    fn an_invalid_event_is_previewed_but_not_ready() {
        let r = registry();
        let mut event = sample();
        event.occurred_at = 5; // 1970: before the contract's earliest time
        let payload = r.encode(&event).unwrap();
        let check = Recheck::of(&r, &payload, crate::ingest::now_ms());
        assert!(!check.is_ready());
        assert!(check.event().is_some());
        assert!(check
            .why_not()
            .unwrap()
            .starts_with("invalid_event: occurred_at"));
    }

    #[test]
    fn an_undecodable_letter_says_its_size_and_framing_only() {
        let r = registry();
        let check = Recheck::of(&r, b"{\"secret\": \"s3cr3t\"}", 0);
        assert!(check.why_not().unwrap().starts_with("bad_framing"));
        let view = view(
            &letter(b"{\"secret\": \"s3cr3t\"}".to_vec(), "bad_framing", "x"),
            &check,
        );
        assert_eq!(view.preview, None);
        assert_eq!(
            view.raw,
            "20 bytes, not framed as Avro with a schema id (first byte 0x7b)"
        );
        assert!(!serde_json::to_string(&view).unwrap().contains("s3cr3t"));
        assert_eq!(
            raw_description(&wire::frame(999, b"abc")),
            "8 bytes: schema id 999, 3 bytes of Avro"
        );
    }

    #[test]
    fn error_texts_lose_what_they_quote() {
        assert_eq!(
            safe_detail(r#"actor.ip: "10.0.0.1" is not an IPv4 or IPv6 address"#),
            r#"actor.ip: "…" is not an IPv4 or IPv6 address"#
        );
        assert_eq!(safe_detail("value 'abc' and 'de"), "value '…' and '…");
        assert!(safe_detail(&"x".repeat(1_000)).chars().count() <= MAX_DETAIL_CHARS + 1);
        assert_eq!(safe_detail("a\u{1b}b"), "a b");
        assert_eq!(
            letter_detail(
                REASON_CLICKHOUSE_REJECTED,
                "Code: 395. DB::Exception: Value passed to 'throwIf' is non zero: row secret-x"
            ),
            "ClickHouse refused the row (Code: 395)"
        );
        assert_eq!(
            letter_detail(REASON_CLICKHOUSE_REJECTED, "timeout secret"),
            "ClickHouse refused the row"
        );
    }

    #[test]
    fn audit_offsets_are_ranges_per_partition() {
        let id = |partition, offset| LetterId { partition, offset };
        let ids = [
            id(0, 3),
            id(0, 4),
            id(0, 5),
            id(0, 9),
            id(1, 2),
            id(0, 7),
            id(0, 4),
        ];
        assert_eq!(offsets_for_audit(&ids), "0:3-5,7,9;1:2");
        assert_eq!(offsets_for_audit(&[]), "");
        assert_eq!(
            offsets_for_audit(&[id(0, i64::MAX - 1), id(0, i64::MAX)]),
            format!("0:{}-{}", i64::MAX - 1, i64::MAX)
        );
        // The most letters one action holds, at the widest offsets, fit
        // one metadata value.
        let widest: Vec<LetterId> = (0..super::super::MAX_PER_ACTION as i64)
            .map(|i| id(0, i64::MAX - 2 * i))
            .collect();
        assert!(offsets_for_audit(&widest).len() <= 8 * 1024);
    }
}
