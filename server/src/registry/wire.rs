//! The Confluent wire format: magic byte 0, a 4-byte big-endian schema id,
//! then the Avro binary datum. Any Confluent-aware consumer can decode our
//! topics with the schema fetched from the registry by that id.

pub const MAGIC_BYTE: u8 = 0;
pub const HEADER_LEN: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("message is {0} bytes, shorter than the 5-byte Confluent header")]
    TooShort(usize),
    #[error("message starts with byte {0:#04x}, not the Confluent magic byte 0x00")]
    BadMagic(u8),
}

/// Prepends the header to an Avro datum.
pub fn frame(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = header(schema_id);
    out.extend_from_slice(datum);
    out
}

/// The frame's header alone, for a datum to be written after it.
pub fn header(schema_id: u32) -> Vec<u8> {
    // Room for a typical event, so writing one rarely reallocates.
    let mut out = Vec::with_capacity(512);
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out
}

/// Splits a framed message into its schema id and Avro datum.
pub fn unframe(message: &[u8]) -> Result<(u32, &[u8]), FramingError> {
    if message.len() < HEADER_LEN {
        return Err(FramingError::TooShort(message.len()));
    }
    if message[0] != MAGIC_BYTE {
        return Err(FramingError::BadMagic(message[0]));
    }
    let id = u32::from_be_bytes([message[1], message[2], message[3], message[4]]);
    Ok((id, &message[HEADER_LEN..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let framed = frame(0x0102_0304, b"datum");
        assert_eq!(&framed[..5], &[0, 1, 2, 3, 4]);
        assert_eq!(unframe(&framed), Ok((0x0102_0304, &b"datum"[..])));
    }

    #[test]
    fn rejects_short_and_foreign_messages() {
        assert_eq!(unframe(&[0, 0, 0]), Err(FramingError::TooShort(3)));
        assert_eq!(unframe(b"{\"json\":1}"), Err(FramingError::BadMagic(b'{')));
    }

    #[test]
    fn empty_datum_is_allowed_by_the_framing() {
        assert_eq!(unframe(&frame(7, b"")), Ok((7, &b""[..])));
    }
}
