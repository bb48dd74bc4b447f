//! The spool's on-disk format: segment files of length-prefixed,
//! checksummed records. A crash can leave a half-written record at the end
//! of the last segment; the checksum finds it and recovery cuts it off. Such
//! a record was never acknowledged (the `202` follows the fsync), so cutting
//! it loses nothing that was promised.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// One spooled message, ready for Kafka as ingest encoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolRecord {
    pub topic: String,
    pub key: String,
    pub event_id: String,
    /// The Confluent-framed Avro message.
    pub payload: Vec<u8>,
}

/// `[u32 body length][u32 crc32 of body][body]`, little-endian.
const HEADER: usize = 8;
/// No record comes near this; a larger length is a torn or corrupt header.
const MAX_BODY: u32 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("record at byte {offset} is cut short")]
    Truncated { offset: u64 },
    #[error("record at byte {offset} fails its checksum or its layout")]
    Corrupt { offset: u64 },
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Topics, keys and ids are bounded far below 64 KiB by validation.
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

impl SpoolRecord {
    /// The record framed for the file.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.payload.len() + 64);
        put_str(&mut body, &self.topic);
        put_str(&mut body, &self.key);
        put_str(&mut body, &self.event_id);
        body.extend_from_slice(&(self.payload.len() as u32).to_le_bytes());
        body.extend_from_slice(&self.payload);
        let mut out = Vec::with_capacity(HEADER + body.len());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn decode_body(body: &[u8]) -> Option<SpoolRecord> {
        let mut cursor = Cursor { body, at: 0 };
        let record = SpoolRecord {
            topic: cursor.string()?,
            key: cursor.string()?,
            event_id: cursor.string()?,
            payload: {
                let len = u32::from_le_bytes(cursor.take(4)?.try_into().ok()?) as usize;
                cursor.take(len)?.to_vec()
            },
        };
        (cursor.at == body.len()).then_some(record)
    }
}

struct Cursor<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.body.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }

    fn string(&mut self) -> Option<String> {
        let len = u16::from_le_bytes(self.take(2)?.try_into().ok()?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

/// Reads records one after another from a segment, from a byte offset.
pub struct SegmentReader {
    reader: BufReader<File>,
    offset: u64,
}

impl SegmentReader {
    pub fn open(path: &Path, offset: u64) -> io::Result<SegmentReader> {
        let mut file = File::open(path)?;
        io::Seek::seek(&mut file, io::SeekFrom::Start(offset))?;
        Ok(SegmentReader {
            reader: BufReader::new(file),
            offset,
        })
    }

    /// Offset just after the last record read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, `None` at a clean end of file.
    pub fn next_record(&mut self) -> io::Result<Option<Result<SpoolRecord, FormatError>>> {
        let offset = self.offset;
        let mut header = [0u8; HEADER];
        match read_full(&mut self.reader, &mut header)? {
            0 => return Ok(None),
            n if n < HEADER => return Ok(Some(Err(FormatError::Truncated { offset }))),
            _ => {}
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_BODY {
            return Ok(Some(Err(FormatError::Corrupt { offset })));
        }
        let mut body = vec![0u8; len as usize];
        if read_full(&mut self.reader, &mut body)? < body.len() {
            return Ok(Some(Err(FormatError::Truncated { offset })));
        }
        if crc32fast::hash(&body) != crc {
            return Ok(Some(Err(FormatError::Corrupt { offset })));
        }
        let Some(record) = SpoolRecord::decode_body(&body) else {
            return Ok(Some(Err(FormatError::Corrupt { offset })));
        };
        self.offset += (HEADER + body.len()) as u64;
        Ok(Some(Ok(record)))
    }
}

/// Like `read_exact`, but says how much it got instead of failing at EOF.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// `<dir>/00000000000000000042.spool`
pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.spool"))
}

/// Sequence numbers of the segments in `dir`, in order.
pub fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut seqs: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".spool")?.parse().ok()
        })
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn record(i: usize) -> SpoolRecord {
        SpoolRecord {
            topic: "attest.events.admin".into(),
            key: format!("tenant-{i}"),
            event_id: format!("e-{i}"),
            payload: vec![0, 0, 0, 0, 1, i as u8, 0xff],
        }
    }

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("attest-spool-test-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_found() {
        let d = dir();
        let path = segment_path(&d, 7);
        let mut bytes: Vec<u8> = (0..3).flat_map(|i| record(i).encode()).collect();
        let whole = bytes.len() as u64;
        let torn = record(3).encode();
        bytes.extend_from_slice(&torn[..torn.len() - 2]);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&bytes)
            .unwrap();

        let mut reader = SegmentReader::open(&path, 0).unwrap();
        for i in 0..3 {
            assert_eq!(reader.next_record().unwrap().unwrap().unwrap(), record(i));
        }
        assert_eq!(reader.offset(), whole);
        assert!(matches!(
            reader.next_record().unwrap(),
            Some(Err(FormatError::Truncated { offset })) if offset == whole
        ));
        assert_eq!(list_segments(&d).unwrap(), [7]);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let d = dir();
        let path = segment_path(&d, 1);
        let mut bytes = record(1).encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let mut reader = SegmentReader::open(&path, 0).unwrap();
        assert!(matches!(
            reader.next_record().unwrap(),
            Some(Err(FormatError::Corrupt { offset: 0 }))
        ));
        std::fs::remove_dir_all(d).unwrap();
    }
}
