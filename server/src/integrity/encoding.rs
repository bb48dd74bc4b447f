//! The one byte encoding behind every hash of docs/INTEGRITY.md: each field
//! written as its length in bytes (decimal ASCII), `:`, then its bytes. The
//! length prefix makes it unambiguous whatever a value holds, which a
//! separator would not be. The event's `content_hash` (docs/DESIGN.md,
//! "Event identity") already uses it; leaves and digests reuse it so that an
//! independent verifier implements one rule.

use sha2::{Digest as _, Sha256};

/// Builds one encoded record field by field.
#[derive(Default)]
pub struct Fields(Vec<u8>);

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Starts with a single tag byte, outside the field encoding (the
    /// Merkle tree's domain separation: 0x00 leaf, 0x01 node).
    pub fn tagged(tag: u8) -> Fields {
        Fields(vec![tag])
    }

    pub fn str(mut self, value: &str) -> Fields {
        self.push(value.as_bytes());
        self
    }

    pub fn num(self, value: impl std::fmt::Display) -> Fields {
        let text = value.to_string();
        self.str(&text)
    }

    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes.len().to_string().as_bytes());
        self.0.push(b':');
        self.0.extend_from_slice(bytes);
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.0).into()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

/// Lower-case hex of exactly `N` bytes; `None` for anything else.
pub fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != N * 2 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_length_prefixed() {
        let f = Fields::new().str("ab").num(-12).str("");
        assert_eq!(f.bytes(), b"2:ab3:-120:");
        assert_eq!(Fields::tagged(1).str("x").bytes(), b"\x011:x");
    }

    #[test]
    fn hex_round_trips_and_refuses_other_text() {
        let h = hex(&[0x00, 0xab, 0xff]);
        assert_eq!(h, "00abff");
        assert_eq!(unhex::<3>(&h), Some([0x00, 0xab, 0xff]));
        assert_eq!(unhex::<3>("00ABFF"), None);
        assert_eq!(unhex::<3>("00ab"), None);
        assert_eq!(unhex::<2>("zz00"), None);
    }
}
