//! The one byte encoding behind every hash of docs/INTEGRITY.md: each field
//! written as its length in bytes (decimal ASCII), `:`, then its bytes. The
//! length prefix makes it unambiguous whatever a value holds, which a
//! separator would not be. The event's `content_hash` (docs/DESIGN.md,
//! "Event identity") already uses it; leaves and digests reuse it so that an
//! independent verifier implements one rule.

use std::fmt::Write as _;
use std::io::Write as _;

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

    pub fn num(mut self, value: impl std::fmt::Display) -> Fields {
        // Written in place: the writer encodes several numbers per sealed
        // row, and a `String` for each was a measurable part of sealing.
        let mut digits = Decimal::new();
        let _ = write!(digits, "{value}");
        self.push(digits.as_bytes());
        self
    }

    fn push(&mut self, bytes: &[u8]) {
        let _ = write!(self.0, "{}:", bytes.len());
        self.0.extend_from_slice(bytes);
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.0).into()
    }
}

/// A number's decimal text, on the stack (an i128 needs at most 40 bytes).
struct Decimal {
    buf: [u8; 40],
    len: usize,
}

impl Decimal {
    fn new() -> Decimal {
        Decimal {
            buf: [0; 40],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for Decimal {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(std::fmt::Error)?;
        let room = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
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
        let extremes = Fields::new().num(i64::MIN).num(u64::MAX);
        assert_eq!(
            extremes.bytes(),
            b"20:-922337203685477580820:18446744073709551615"
        );
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
