//! The bundle's container: a ZIP archive (PKWARE APPNOTE 6.3) of stored,
//! uncompressed entries. Written as a stream, each entry's sizes and CRC
//! after its data (general purpose flag bit 3), so the server never knows
//! a file's length in advance; read back through the central directory,
//! as every ZIP tool does. Uncompressed, so that an independent verifier
//! needs nothing but a ZIP reader; the HTTP layer compresses in transit.

use sha2::{Digest as _, Sha256};

const LOCAL: u32 = 0x0403_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
/// Sizes and CRC follow the data; names are UTF-8.
const FLAGS: u16 = 0x0008 | 0x0800;
/// 1980-01-01, the format's earliest date: entries carry no time of their
/// own (the manifest says when the export was made).
const DOS_DATE: u16 = 0x21;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZipError {
    #[error("the bundle exceeds 4 GiB or 65535 files, beyond a plain ZIP archive")]
    TooLarge,
    #[error("not a ZIP archive this verifier reads: {0}")]
    Malformed(String),
}

struct Entry {
    name: String,
    crc: u32,
    size: u32,
    offset: u32,
}

/// Writes entries one after the other into `out`; the caller drains `out`
/// (with [`ZipWriter::take`]) whenever it likes.
pub struct ZipWriter {
    out: Vec<u8>,
    written: u64,
    entries: Vec<Entry>,
    open: Option<Open>,
}

struct Open {
    name: String,
    offset: u64,
    crc: crc32fast::Hasher,
    sha: Sha256,
    size: u64,
}

/// A finished entry: its size and SHA-256 as text (for the manifest).
pub struct Written {
    pub bytes: u64,
    pub sha256: String,
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

impl Default for ZipWriter {
    fn default() -> Self {
        ZipWriter::new()
    }
}

impl ZipWriter {
    pub fn new() -> ZipWriter {
        ZipWriter {
            out: Vec::new(),
            written: 0,
            entries: Vec::new(),
            open: None,
        }
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        self.written = self.written.saturating_add(bytes.len() as u64);
    }

    /// Starts an entry (finishing none: call [`ZipWriter::finish`] first).
    pub fn start(&mut self, name: &str) {
        let offset = self.written;
        let mut h = Vec::with_capacity(30 + name.len());
        u32le(&mut h, LOCAL);
        u16le(&mut h, 20);
        u16le(&mut h, FLAGS);
        u16le(&mut h, 0); // stored
        u16le(&mut h, 0);
        u16le(&mut h, DOS_DATE);
        u32le(&mut h, 0); // CRC, sizes: in the descriptor
        u32le(&mut h, 0);
        u32le(&mut h, 0);
        u16le(&mut h, name.len().try_into().unwrap_or(u16::MAX));
        u16le(&mut h, 0);
        h.extend_from_slice(name.as_bytes());
        self.emit(&h);
        self.open = Some(Open {
            name: name.to_owned(),
            offset,
            crc: crc32fast::Hasher::new(),
            sha: Sha256::new(),
            size: 0,
        });
    }

    pub fn write(&mut self, data: &[u8]) {
        if let Some(open) = self.open.as_mut() {
            open.crc.update(data);
            open.sha.update(data);
            open.size = open.size.saturating_add(data.len() as u64);
        }
        self.emit(data);
    }

    /// Ends the open entry with its data descriptor.
    pub fn finish(&mut self) -> Result<Written, ZipError> {
        let open = self
            .open
            .take()
            .ok_or_else(|| ZipError::Malformed("no entry open".into()))?;
        let crc = open.crc.finalize();
        let size = u32::try_from(open.size).map_err(|_| ZipError::TooLarge)?;
        let offset = u32::try_from(open.offset).map_err(|_| ZipError::TooLarge)?;
        let mut d = Vec::with_capacity(16);
        u32le(&mut d, DESCRIPTOR);
        u32le(&mut d, crc);
        u32le(&mut d, size);
        u32le(&mut d, size);
        self.emit(&d);
        self.entries.push(Entry {
            name: open.name,
            crc,
            size,
            offset,
        });
        Ok(Written {
            bytes: open.size,
            sha256: super::encoding::hex(&open.sha.finalize()),
        })
    }

    /// Writes the central directory and its end record.
    pub fn end(&mut self) -> Result<(), ZipError> {
        let start = u32::try_from(self.written).map_err(|_| ZipError::TooLarge)?;
        let count = u16::try_from(self.entries.len()).map_err(|_| ZipError::TooLarge)?;
        let mut c = Vec::new();
        for e in &self.entries {
            u32le(&mut c, CENTRAL);
            u16le(&mut c, 20);
            u16le(&mut c, 20);
            u16le(&mut c, FLAGS);
            u16le(&mut c, 0);
            u16le(&mut c, 0);
            u16le(&mut c, DOS_DATE);
            u32le(&mut c, e.crc);
            u32le(&mut c, e.size);
            u32le(&mut c, e.size);
            u16le(&mut c, e.name.len().try_into().unwrap_or(u16::MAX));
            u16le(&mut c, 0); // extra
            u16le(&mut c, 0); // comment
            u16le(&mut c, 0); // disk
            u16le(&mut c, 0); // internal attributes
            u32le(&mut c, 0); // external attributes
            u32le(&mut c, e.offset);
            c.extend_from_slice(e.name.as_bytes());
        }
        let size = u32::try_from(c.len()).map_err(|_| ZipError::TooLarge)?;
        u32le(&mut c, END);
        u16le(&mut c, 0);
        u16le(&mut c, 0);
        u16le(&mut c, count);
        u16le(&mut c, count);
        u32le(&mut c, size);
        u32le(&mut c, start);
        u16le(&mut c, 0);
        self.emit(&c);
        u32::try_from(self.written).map_err(|_| ZipError::TooLarge)?;
        Ok(())
    }

    /// What was written since the last call.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

/// The entries of a whole archive in memory, by name. CRCs are not
/// checked: the signed manifest's SHA-256 of each file is the authority,
/// and a changed byte is then named by the row or file it changes.
pub fn read_entries(archive: &[u8]) -> Result<Vec<(String, &[u8])>, ZipError> {
    let bad = |why: &str| ZipError::Malformed(why.to_owned());
    let u16at = |at: usize| -> Result<u16, ZipError> {
        archive
            .get(at..at.saturating_add(2))
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
            .ok_or_else(|| bad("truncated"))
    };
    let u32at = |at: usize| -> Result<u32, ZipError> {
        archive
            .get(at..at.saturating_add(4))
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| bad("truncated"))
    };
    // The end record is the last 22 bytes (this format writes no comment).
    let end = archive
        .len()
        .checked_sub(22)
        .ok_or_else(|| bad("too short"))?;
    if u32at(end)? != END {
        return Err(bad("no end of central directory record"));
    }
    let count = usize::from(u16at(end + 10)?);
    let mut at = u32at(end + 16)? as usize;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        if u32at(at)? != CENTRAL {
            return Err(bad("central directory entry expected"));
        }
        let method = u16at(at + 10)?;
        let size = u32at(at + 20)? as usize;
        let name_len = usize::from(u16at(at + 28)?);
        let extra = usize::from(u16at(at + 30)?);
        let comment = usize::from(u16at(at + 32)?);
        let local = u32at(at + 42)? as usize;
        let name = archive
            .get(at + 46..at + 46 + name_len)
            .ok_or_else(|| bad("truncated name"))?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| bad("name is not UTF-8"))?;
        if method != 0 {
            return Err(ZipError::Malformed(format!("{name} is compressed")));
        }
        if u32at(local)? != LOCAL {
            return Err(bad("local header expected"));
        }
        let data_at =
            local + 30 + usize::from(u16at(local + 26)?) + usize::from(u16at(local + 28)?);
        let data = archive
            .get(data_at..data_at.saturating_add(size))
            .ok_or_else(|| ZipError::Malformed(format!("{name} is truncated")))?;
        entries.push((name, data));
        at += 46 + name_len + extra + comment;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let mut z = ZipWriter::new();
        let mut bytes = Vec::new();
        z.start("a.txt");
        z.write(b"hello ");
        bytes.extend(z.take());
        z.write(b"world");
        let a = z.finish().unwrap();
        z.start("b.json");
        z.write(b"{}");
        z.finish().unwrap();
        z.end().unwrap();
        bytes.extend(z.take());
        assert_eq!(a.bytes, 11);
        let entries = read_entries(&bytes).unwrap();
        let names: Vec<_> = entries.iter().map(|(n, d)| (n.as_str(), *d)).collect();
        assert_eq!(
            names,
            [("a.txt", &b"hello world"[..]), ("b.json", &b"{}"[..])]
        );
        let at = bytes.windows(5).position(|w| w == b"hello").unwrap();
        bytes[at] = b'j';
        assert_eq!(read_entries(&bytes).unwrap()[0].1, b"jello world");
        assert!(read_entries(b"nope").is_err());
    }
}
