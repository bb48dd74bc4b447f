//! The page cursor of a search: an opaque token in `?cursor=`.

use serde::{Deserialize, Serialize};

/// Where the next page starts: the last row shown (newest first, so the next
/// page holds only rows that sort before it) and the moment the first page
/// was taken, which every later page keeps so events arriving meanwhile
/// cannot shift rows between pages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub snapshot_ms: i64,
    pub occurred_at: i64,
    pub event_id: String,
    pub tenant_id: String,
}

/// Longest token [`Cursor::decode`] looks at; ids are at most 128 chars.
const MAX_CURSOR_CHARS: usize = 700;

impl Cursor {
    /// `snapshot.occurred.hex(tenant).hex(event_id)`: URL-safe as is, and
    /// unambiguous whatever characters the ids hold.
    pub fn encode(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.snapshot_ms,
            self.occurred_at,
            hex(&self.tenant_id),
            hex(&self.event_id)
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
        if parts.next().is_some() {
            return None;
        }
        Some(Cursor {
            snapshot_ms,
            occurred_at,
            event_id,
            tenant_id,
        })
    }
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
            };
            let token = cursor.encode();
            assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'));
            assert_eq!(Cursor::decode(&token), Some(cursor));
        }
    }

    #[test]
    fn cursor_rejects_what_it_did_not_write() {
        for bad in [
            "",
            "1.2.61",
            "1.2.61.6",
            "1.2.6g.61",
            "x.2.61.61",
            "1.2.61.61.61",
            "1.2.ff.61",
            "1.2.61.61 ",
            "' OR 1=1 --",
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
        assert_eq!(Cursor::decode(&"1".repeat(MAX_CURSOR_CHARS + 1)), None);
        assert!(Cursor::decode("-1.-2..").is_some());
    }
}
