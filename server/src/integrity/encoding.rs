//! The one byte encoding behind every hash of docs/INTEGRITY.md: each field
//! written as its length in bytes (decimal ASCII), `:`, then its bytes. The
//! length prefix makes it unambiguous whatever a value holds, which a
//! separator would not be. The event's `content_hash` (docs/DESIGN.md,
//! "Event identity") already uses it; leaves and digests reuse it so that an
//! independent verifier implements one rule.

use sha2::{Digest as _, Sha256};

/// Where encoded fields go: a buffer (to sign or show the bytes), or
/// straight into SHA-256 when only the hash is wanted.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// Builds one encoded record field by field, into a buffer
/// ([`Fields::new`]) or a running hash ([`Fields::hashing`]).
pub struct Fields<S: Sink = Vec<u8>>(S);

/// Room for a typical event's content-hash input (about 350 bytes), so the
/// buffer is not grown and copied several times per sealed row.
const TYPICAL: usize = 512;

impl Default for Fields {
    fn default() -> Fields {
        Fields(Vec::with_capacity(TYPICAL))
    }
}

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Starts with a single tag byte, outside the field encoding (the
    /// Merkle tree's domain separation: 0x00 leaf, 0x01 node).
    pub fn tagged(tag: u8) -> Fields {
        let mut fields = Fields::default();
        fields.0.push(tag);
        fields
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.0).into()
    }
}

impl Fields<Sha256> {
    /// Hashes the fields as they come, with no buffer: a sealed row's
    /// content hash and leaf, per row of every batch.
    pub fn hashing() -> Fields<Sha256> {
        Fields(Sha256::new())
    }

    /// [`Fields::tagged`], hashed as it comes.
    pub fn hashing_tagged(tag: u8) -> Fields<Sha256> {
        let mut fields = Fields::hashing();
        fields.0.put(&[tag]);
        fields
    }

    pub fn sha256(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

impl<S: Sink> Fields<S> {
    pub fn str(mut self, value: &str) -> Fields<S> {
        self.push(value.as_bytes());
        self
    }

    pub fn num(mut self, value: impl itoa::Integer) -> Fields<S> {
        self.push(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    fn push(&mut self, bytes: &[u8]) {
        // Lengths and numbers go through itoa, not `write!`: the formatting
        // machinery took about 40 ns a field, most of a sealed row's cost
        // (some 20 fields per leaf and content hash).
        self.0
            .put(itoa::Buffer::new().format(bytes.len()).as_bytes());
        self.0.put(b":");
        self.0.put(bytes);
    }
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

/// [`hex`] of a SHA-256, on the stack.
pub fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[(b >> 4) as usize];
        pair[1] = DIGITS[(b & 0x0f) as usize];
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

    /// The length prefix is the decimal length, for lengths of
    /// every number of digits.
    #[test]
    fn length_prefixes_are_decimal_at_every_width() {
        for len in [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 65_535, 1_000_000] {
            let value = "x".repeat(len);
            let expected = format!("{len}:{value}");
            assert_eq!(Fields::new().str(&value).bytes(), expected.as_bytes());
        }
    }

    /// Numbers are their decimal text, as `Display` writes it.
    #[test]
    fn numbers_are_their_decimal_text() {
        fn encoded(text: String) -> Vec<u8> {
            format!("{}:{text}", text.len()).into_bytes()
        }
        for v in [0, 7, -7, 10, -10, 99, -100, i64::MAX, i64::MIN + 1] {
            assert_eq!(Fields::new().num(v).bytes(), encoded(v.to_string()));
        }
        for v in [0, 9, 10, u64::MAX - 1] {
            assert_eq!(Fields::new().num(v).bytes(), encoded(v.to_string()));
        }
        assert_eq!(
            Fields::new().num(i32::MIN).bytes(),
            encoded(i32::MIN.to_string())
        );
        assert_eq!(
            Fields::new().num(u32::MAX).bytes(),
            encoded(u32::MAX.to_string())
        );
        assert_eq!(
            Fields::new().num(usize::MAX).bytes(),
            encoded(usize::MAX.to_string())
        );
    }

    #[test]
    fn hashing_as_they_come_is_hashing_the_bytes() {
        let buffered = Fields::tagged(0)
            .str("ab")
            .num(-12)
            .str("")
            .str(&"z".repeat(300));
        let streamed = Fields::hashing_tagged(0)
            .str("ab")
            .num(-12)
            .str("")
            .str(&"z".repeat(300));
        assert_eq!(streamed.sha256(), buffered.sha256());
    }

    #[test]
    fn hex_round_trips_and_refuses_other_text() {
        let h = hex(&[0x00, 0xab, 0xff]);
        assert_eq!(h, "00abff");
        assert_eq!(unhex::<3>(&h), Some([0x00, 0xab, 0xff]));
        assert_eq!(unhex::<3>("00ABFF"), None);
        assert_eq!(unhex::<3>("00ab"), None);
        assert_eq!(unhex::<2>("zz00"), None);
        let digest: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(hex32(&digest).as_slice(), hex(&digest).as_bytes());
    }
}
