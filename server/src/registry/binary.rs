//! Avro's binary primitives, stated once: the zig-zag varint every int,
//! long, length, enum index, union branch and block count is written as,
//! and lengths that are checked against the bytes that carry them before
//! anything is taken on their word.
//!
//! `bounds` walks any schema with this reader; `direct` reads and writes the
//! audit event with it.

/// A datum that does not hold what it claims to. The text says what and at
/// which byte, for the dead-letter reason or the 400 naming the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

/// Reads a datum front to back.
pub struct Cursor<'a> {
    datum: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(datum: &'a [u8]) -> Cursor<'a> {
        Cursor { datum, at: 0 }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.at
    }

    pub fn left(&self) -> usize {
        self.datum.len().saturating_sub(self.at)
    }

    /// The next `n` bytes, if that many follow.
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Malformed> {
        if n > self.left() {
            return Err(Malformed(format!(
                "{what} declares {n} bytes at byte {} but only {} follow",
                self.at,
                self.left()
            )));
        }
        let start = self.at;
        self.at += n;
        Ok(&self.datum[start..self.at])
    }

    /// A zig-zag varint long of at most 10 bytes.
    pub fn long(&mut self) -> Result<i64, Malformed> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.datum.get(self.at) else {
                return Err(Malformed(format!(
                    "record ends inside a number at byte {}",
                    self.at
                )));
            };
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err(Malformed(format!(
            "number longer than 10 bytes at byte {}",
            self.at
        )))
    }

    /// A length: a long that must not be negative.
    pub fn length(&mut self, what: &str) -> Result<usize, Malformed> {
        let start = self.at;
        let n = self.long()?;
        usize::try_from(n)
            .map_err(|_| Malformed(format!("{what} has a negative length {n} at byte {start}")))
    }

    /// Length-prefixed bytes, the length checked against what follows.
    pub fn bytes(&mut self, what: &str) -> Result<&'a [u8], Malformed> {
        let n = self.length(what)?;
        self.take(n, what)
    }

    /// A string: length-prefixed UTF-8.
    pub fn string(&mut self, what: &str) -> Result<&'a str, Malformed> {
        let start = self.at;
        let raw = self.bytes(what)?;
        std::str::from_utf8(raw)
            .map_err(|_| Malformed(format!("{what} at byte {start} is not valid UTF-8")))
    }

    /// An index below `count` (enum symbol, union branch).
    pub fn index(&mut self, count: usize, what: &str) -> Result<usize, Malformed> {
        let start = self.at;
        let raw = self.long()?;
        usize::try_from(raw)
            .ok()
            .filter(|i| *i < count)
            .ok_or_else(|| {
                Malformed(format!(
                    "{what} {raw} at byte {start} does not exist (there are {count})"
                ))
            })
    }

    /// The entry count of the next array or map block, 0 at the end. A
    /// negative count is followed by the block's size in bytes, which is
    /// read and not needed. A count that cannot fit in the bytes left, at
    /// `min_entry` bytes an entry, is refused before anyone reserves room.
    pub fn block(&mut self, min_entry: usize, what: &str) -> Result<u64, Malformed> {
        let start = self.at;
        let raw = self.long()?;
        if raw < 0 {
            self.long()?;
        }
        let count = raw.unsigned_abs();
        let fits = (self.left() / min_entry.max(1)) as u64;
        if count > fits {
            return Err(Malformed(format!(
                "{what} block at byte {start} declares {count} entries, \
                 but the {} bytes left hold at most {fits}",
                self.left()
            )));
        }
        Ok(count)
    }
}

/// Appends a zig-zag varint.
pub fn put_long(out: &mut Vec<u8>, n: i64) {
    let mut v = ((n << 1) ^ (n >> 63)) as u64;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends length-prefixed bytes (a string or bytes value).
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // A slice's length always fits an i64 on the platforms Rust supports.
    put_long(out, i64::try_from(bytes.len()).unwrap_or(i64::MAX));
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longs_round_trip_at_every_width() {
        let samples = [
            0,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ];
        for n in samples {
            let mut out = Vec::new();
            put_long(&mut out, n);
            let mut cursor = Cursor::new(&out);
            assert_eq!(cursor.long(), Ok(n));
            assert_eq!(cursor.left(), 0, "{n} used every byte");
        }
        // The encoding Avro's specification gives as examples.
        let mut out = Vec::new();
        for n in [0, -1, 1, -2, 2, -64, 64] {
            put_long(&mut out, n);
        }
        assert_eq!(out, [0x00, 0x01, 0x02, 0x03, 0x04, 0x7f, 0x80, 0x01]);
    }

    #[test]
    fn claims_beyond_the_datum_are_refused() {
        let mut out = Vec::new();
        put_long(&mut out, 1_000);
        out.extend_from_slice(b"short");
        assert!(Cursor::new(&out).bytes("s").is_err());
        assert!(Cursor::new(&[0x80; 11]).long().is_err());
        assert!(Cursor::new(&[0x80]).long().is_err());
        let mut negative = Vec::new();
        put_long(&mut negative, -3);
        assert!(Cursor::new(&negative).length("s").is_err());
        assert!(Cursor::new(&[0x04]).index(2, "enum").is_err());
        assert_eq!(Cursor::new(&[0x02]).index(2, "enum"), Ok(1));
        let mut block = Vec::new();
        put_long(&mut block, 1 << 29);
        assert!(Cursor::new(&block).block(2, "map").is_err());
        assert!(Cursor::new(&[0x04, 0xff, 0xfe]).string("s").is_err());
    }
}
