//! Tamper evidence (docs/INTEGRITY.md): every stored event has a leaf hash;
//! the writer seals each run of rows it writes from one Kafka partition in
//! a digest (Merkle root, count, offsets, previous digest) signed with
//! Ed25519; the check recomputes all of it from what ClickHouse holds.

pub mod check;
pub mod checkpoint;
pub mod digest;
pub mod encoding;
pub mod event_seal;
pub mod export_bundle;
pub mod export_rows;
pub mod export_verify;
pub mod export_zip;
pub mod job;
pub mod keys;
pub mod leaf;
pub mod merkle;
pub mod proof;
pub mod redaction;
pub mod retention_record;
pub mod seal;

pub use digest::Digest;
pub use keys::KeyRing;
pub use seal::Sealer;
