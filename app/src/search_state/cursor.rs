//! The page cursor of a search: an opaque token in `?cursor=`.

use serde::{Deserialize, Serialize};

use super::{Sort, SortColumn};

/// Where the next page starts: the last row shown (the next page holds only
/// rows that come after it in the page order) and the moment the first page
/// was taken, which every later page keeps so events arriving meanwhile
/// cannot shift rows between pages. The row is named by its whole identity,
/// content hash included, so two events sent with one id at one time are
/// both reached; under another order than the newest first, also by its
/// value of the sorted column. The cursor says which order it belongs to, so
/// a page link of one order is refused under another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(default)]
    pub sort: Sort,
    /// The last row's value of the sorted column, for every column but
    /// time (whose value is `occurred_at`).
    #[serde(default)]
    pub value: Option<String>,
    pub snapshot_ms: i64,
    pub occurred_at: i64,
    pub event_id: String,
    pub tenant_id: String,
    /// Lower-case hex SHA-256, as stored.
    pub content_hash: String,
}

/// Longest token [`Cursor::decode`] looks at; ids are at most 128 chars,
/// hex-encoded, and the hash is 64; a sorted column's value (hex too) is
/// at most a user agent's 8 KiB (ingest's limit), so 16,384 more.
const MAX_CURSOR_CHARS: usize = 18_000;
/// Length of a content hash in hex.
const HASH_CHARS: usize = 64;

impl Cursor {
    /// `snapshot.occurred.hex(tenant).hex(event_id).content_hash`: URL-safe
    /// as is, and unambiguous whatever characters the ids hold. Under
    /// another order than the default, `column-a|d.` before it and
    /// `.hex(value)` after it (no value for time), so the default's tokens
    /// are those written before sorting existed, and they still read.
    pub fn encode(&self) -> String {
        let identity = format!(
            "{}.{}.{}.{}.{}",
            self.snapshot_ms,
            self.occurred_at,
            hex(&self.tenant_id),
            hex(&self.event_id),
            self.content_hash
        );
        if self.sort == Sort::default() {
            return identity;
        }
        match &self.value {
            Some(value) => format!("{}.{identity}.{}", self.sort.tag(), hex(value)),
            None => format!("{}.{identity}", self.sort.tag()),
        }
    }

    /// `None` for anything [`Cursor::encode`] did not write.
    pub fn decode(token: &str) -> Option<Cursor> {
        if token.len() > MAX_CURSOR_CHARS {
            return None;
        }
        let mut parts = token.split('.').peekable();
        // A default cursor starts with its snapshot, a number; any other
        // with its order's tag, which never is one.
        let first = parts.peek()?;
        let sort = if first.parse::<i64>().is_ok() {
            Sort::default()
        } else {
            let sort = Sort::from_tag(first)?;
            if sort == Sort::default() {
                return None;
            }
            parts.next();
            sort
        };
        let snapshot_ms = parts.next()?.parse().ok()?;
        let occurred_at = parts.next()?.parse().ok()?;
        let tenant_id = unhex(parts.next()?)?;
        let event_id = unhex(parts.next()?)?;
        let content_hash = parts.next()?;
        if !is_content_hash(content_hash) {
            return None;
        }
        let value = match sort.column {
            SortColumn::Time => None,
            _ => Some(unhex(parts.next()?)?),
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Cursor {
            sort,
            value,
            snapshot_ms,
            occurred_at,
            event_id,
            tenant_id,
            content_hash: content_hash.to_owned(),
        })
    }
}

/// What ClickHouse stores: 64 lower-case hex digits.
fn is_content_hash(text: &str) -> bool {
    text.len() == HASH_CHARS && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search_state::SortDir;

    const HASH: &str = "3bc5c91d69c794558fd23711efe1bd10a2eb0756b4e64723e0805b1897734dfa";

    #[test]
    fn cursor_round_trips_any_id() {
        for (tenant, id) in [
            ("acme", "0193f0a2-7c1e-7d2a-9e0b-3f5a1c2b4d6e"),
            ("a.b:c_d-e", "x"),
            ("", ""),
            ("Zürich", "id with . dots and spaces 🚀"),
        ] {
            let cursor = Cursor {
                sort: Sort::default(),
                value: None,
                snapshot_ms: 1_795_435_200_000,
                occurred_at: 1_795_435_100_123,
                event_id: id.into(),
                tenant_id: tenant.into(),
                content_hash: HASH.into(),
            };
            let token = cursor.encode();
            assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'));
            assert_eq!(Cursor::decode(&token), Some(cursor));
        }
    }

    #[test]
    fn cursor_rejects_what_it_did_not_write() {
        let upper = HASH.to_uppercase();
        let short = &HASH[..63];
        let quote = format!("{}'", &HASH[..63]);
        for bad in [
            "".to_owned(),
            "1.2.61".to_owned(),
            // A cursor from before content hashes: the page order changed.
            "1.2.61.61".to_owned(),
            format!("1.2.61.6.{HASH}"),
            format!("1.2.6g.61.{HASH}"),
            format!("x.2.61.61.{HASH}"),
            format!("1.2.61.61.{HASH}.61"),
            format!("1.2.ff.61.{HASH}"),
            format!("1.2.61.61.{HASH} "),
            format!("1.2.61.61.{upper}"),
            format!("1.2.61.61.{short}"),
            format!("1.2.61.61.{quote}"),
            "' OR 1=1 --".to_owned(),
        ] {
            assert_eq!(Cursor::decode(&bad), None, "{bad}");
        }
        assert_eq!(Cursor::decode(&"1".repeat(MAX_CURSOR_CHARS + 1)), None);
        assert!(Cursor::decode(&format!("-1.-2...{HASH}")).is_some());
        let longest = Cursor {
            sort: Sort::default(),
            value: None,
            snapshot_ms: i64::MIN,
            occurred_at: i64::MIN,
            event_id: "e".repeat(128),
            tenant_id: "t".repeat(128),
            content_hash: HASH.into(),
        };
        assert!(longest.encode().len() <= MAX_CURSOR_CHARS);
        assert_eq!(Cursor::decode(&longest.encode()), Some(longest.clone()));
        // The longest sorted value: a user agent of ingest's 8 KiB.
        let by_agent = Cursor {
            sort: Sort {
                column: SortColumn::UserAgent,
                dir: SortDir::Desc,
            },
            value: Some("u".repeat(8 * 1024)),
            ..longest
        };
        assert!(by_agent.encode().len() <= MAX_CURSOR_CHARS);
        assert_eq!(Cursor::decode(&by_agent.encode()), Some(by_agent));
    }

    fn at(sort: Sort, value: Option<&str>) -> Cursor {
        Cursor {
            sort,
            value: value.map(str::to_owned),
            snapshot_ms: 10,
            occurred_at: 5,
            event_id: "e.1".into(),
            tenant_id: "acme".into(),
            content_hash: HASH.into(),
        }
    }

    #[test]
    fn a_sorted_cursor_names_its_order_and_value() {
        let by_actor = Sort {
            column: SortColumn::Actor,
            dir: SortDir::Asc,
        };
        for value in ["alice", "", "o'brien.x 🚀"] {
            let cursor = at(by_actor, Some(value));
            let token = cursor.encode();
            assert!(token.starts_with("actor-a.10.5."), "{token}");
            assert!(token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
            assert_eq!(Cursor::decode(&token), Some(cursor));
        }
        let oldest = at(
            Sort {
                column: SortColumn::Time,
                dir: SortDir::Asc,
            },
            None,
        );
        assert!(oldest.encode().starts_with("time-a.10.5."));
        assert_eq!(Cursor::decode(&oldest.encode()), Some(oldest));
        // The default order writes the tokens written before sorting
        // existed, and a tag naming it is not one of them.
        let newest = at(Sort::default(), None);
        assert!(newest.encode().starts_with("10.5."));
        assert_eq!(Cursor::decode(&format!("time-d.{}", newest.encode())), None);
        let by_request = Sort {
            column: SortColumn::RequestId,
            dir: SortDir::Desc,
        };
        let token = at(by_request, Some("r")).encode();
        assert!(token.starts_with("request_id-d."), "{token}");
        assert_eq!(Cursor::decode(&token).map(|c| c.sort), Some(by_request));
    }

    #[test]
    fn a_sorted_cursor_refuses_what_does_not_fit_its_order() {
        let identity = at(Sort::default(), None).encode();
        for bad in [
            // A text column's cursor without its value, or with two.
            format!("actor-a.{identity}"),
            format!("actor-a.{identity}.61.61"),
            format!("actor-a.{identity}.6g"),
            // Time's value is occurred_at: nothing after the hash.
            format!("time-a.{identity}.61"),
            // The default's own value after the hash.
            format!("{identity}.61"),
            // Orders that do not exist or cannot be sorted by.
            format!("received-a.{identity}.61"),
            format!("bogus-a.{identity}.61"),
            format!("actor-x.{identity}.61"),
            format!("actor.{identity}.61"),
        ] {
            assert_eq!(Cursor::decode(&bad), None, "{bad}");
        }
    }
}
