//! The page cursor of a search: an opaque token in `?cursor=`.

use serde::{Deserialize, Serialize};

/// Where the next page starts: the last row shown (newest first, so the next
/// page holds only rows that sort before it) and the moment the first page
/// was taken, which every later page keeps so events arriving meanwhile
/// cannot shift rows between pages. The row is named by its whole identity,
/// content hash included, so two events sent with one id at one time are
/// both reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub snapshot_ms: i64,
    pub occurred_at: i64,
    pub event_id: String,
    pub tenant_id: String,
    /// Lower-case hex SHA-256, as stored.
    pub content_hash: String,
}

/// Longest token [`Cursor::decode`] looks at; ids are at most 128 chars,
/// hex-encoded, and the hash is 64.
const MAX_CURSOR_CHARS: usize = 800;
/// Length of a content hash in hex.
const HASH_CHARS: usize = 64;

impl Cursor {
    /// `snapshot.occurred.hex(tenant).hex(event_id).content_hash`: URL-safe
    /// as is, and unambiguous whatever characters the ids hold.
    pub fn encode(&self) -> String {
        format!(
            "{}.{}.{}.{}.{}",
            self.snapshot_ms,
            self.occurred_at,
            hex(&self.tenant_id),
            hex(&self.event_id),
            self.content_hash
        )
    }

    /// `None` for anything [`Cursor::encode`] did not write.
    pub fn decode(token: &str) -> Option<Cursor> {
        if token.len() > MAX_CURSOR_CHARS {
            return None;
        }
        let mut parts = token.split('.');
        let snapshot_ms = parts.next()?.parse().ok()?;
        let occurred_at = parts.next()?.parse().ok()?;
        let tenant_id = unhex(parts.next()?)?;
        let event_id = unhex(parts.next()?)?;
        let content_hash = parts.next()?;
        if parts.next().is_some() || !is_content_hash(content_hash) {
            return None;
        }
        Some(Cursor {
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
            snapshot_ms: i64::MIN,
            occurred_at: i64::MIN,
            event_id: "e".repeat(128),
            tenant_id: "t".repeat(128),
            content_hash: HASH.into(),
        };
        assert!(longest.encode().len() <= MAX_CURSOR_CHARS);
        assert_eq!(Cursor::decode(&longest.encode()), Some(longest));
    }
}
