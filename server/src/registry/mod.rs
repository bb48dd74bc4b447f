//! The schema registry: the Avro contract under `schemas/`, each version
//! with the permanent id written into every Kafka message. Ingest encodes
//! with the current version; the writer decodes any version ever used.

pub mod binary;
mod bounds;
mod direct;
pub mod external;
pub mod resolution;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apache_avro::{from_avro_datum, to_avro_datum, Schema};
use serde::Deserialize;

use crate::event::{AuditEvent, DecodeError};
use external::External;
pub use external::ExternalError;
use resolution::Incompatible;
use wire::FramingError;

/// The subject (Confluent RecordNameStrategy) of the audit event record.
pub const AUDIT_EVENT_SUBJECT: &str = "dev.attest.AuditEvent";

/// The compatibility Attest holds every subject's versions to, in
/// Confluent's terms: each version reads the data of every other, older or
/// newer. Newer versions must read older data (consumers upgrade first), and
/// the version ingest writes with must read newer data too, because the
/// writer decodes every message, whatever its version, to that one before
/// storing it. The contract test checks it; the registry's compatibility
/// endpoints apply it to a candidate.
pub const COMPATIBILITY: &str = "FULL_TRANSITIVE";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid registry manifest: {source}")]
    Manifest {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path} is not a valid Avro schema: {source}")]
    Schema {
        path: PathBuf,
        source: Box<apache_avro::Error>,
    },
    #[error("registry manifest problem: {0}")]
    Invalid(String),
}

/// Why a message taken from Kafka could not be turned into an event. Each is
/// permanent for that message, so the writer dead-letters it.
#[derive(Debug, thiserror::Error)]
pub enum DecodeFailure {
    #[error(transparent)]
    Framing(#[from] FramingError),
    #[error("unknown schema id {0}")]
    UnknownSchemaId(u32),
    #[error("payload does not decode with schema id {id}: {detail}")]
    Avro { id: u32, detail: String },
    #[error("record does not match the audit event contract: {0}")]
    Contract(#[from] DecodeError),
}

impl DecodeFailure {
    /// Short, stable reason code for dead-letter headers and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeFailure::Framing(_) => "bad_framing",
            DecodeFailure::UnknownSchemaId(_) => "unknown_schema_id",
            DecodeFailure::Avro { .. } => "undecodable_payload",
            DecodeFailure::Contract(_) => "contract_mismatch",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("event does not fit Avro schema id {id}: {detail}")]
pub struct EncodeError {
    pub id: u32,
    pub detail: String,
}

#[derive(Debug)]
pub struct SchemaVersion {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: Schema,
    /// The schema as registered (compact JSON), as the REST API serves it.
    pub text: String,
    /// Its data has the layout `direct` reads and writes.
    direct: bool,
}

impl SchemaVersion {
    pub fn new(
        subject: String,
        version: u32,
        id: u32,
        schema: Schema,
        text: String,
    ) -> SchemaVersion {
        SchemaVersion {
            direct: direct::handles(&schema),
            subject,
            version,
            id,
            schema,
            text,
        }
    }
}

pub struct Registry {
    subjects: BTreeMap<String, Vec<Arc<SchemaVersion>>>,
    by_id: HashMap<u32, Arc<SchemaVersion>>,
    current: Arc<SchemaVersion>,
    /// An external registry whose ids Attest's messages carry instead.
    external: Option<External>,
    /// The current schema under its id in the external registry, once
    /// looked up. Registry ids never change, so one lookup is enough.
    external_current: RwLock<Option<Arc<SchemaVersion>>>,
    /// Schemas fetched from the external registry by id, for decoding.
    fetched: RwLock<HashMap<u32, Arc<SchemaVersion>>>,
}

#[derive(Deserialize)]
struct Manifest {
    subjects: BTreeMap<String, Vec<ManifestEntry>>,
    /// The version of the audit event subject that ingest encodes with and
    /// that stored events have; the latest when absent.
    #[serde(default)]
    ingest_version: Option<u32>,
}

#[derive(Deserialize)]
struct ManifestEntry {
    version: u32,
    id: u32,
    file: PathBuf,
}

impl Registry {
    /// Reads `registry.json` and every schema it lists; a bad schema fails
    /// start-up rather than the first request.
    pub fn load(dir: &Path) -> Result<Registry, RegistryError> {
        let manifest_path = dir.join("registry.json");
        let manifest: Manifest =
            serde_json::from_str(&read(&manifest_path)?).map_err(|source| {
                RegistryError::Manifest {
                    path: manifest_path.clone(),
                    source,
                }
            })?;
        let mut subjects = BTreeMap::new();
        let mut by_id = HashMap::new();
        for (subject, entries) in manifest.subjects {
            let mut versions: Vec<Arc<SchemaVersion>> = Vec::new();
            for entry in entries {
                let path = dir.join(&entry.file);
                let raw = read(&path)?;
                let schema = Schema::parse_str(&raw).map_err(|e| RegistryError::Schema {
                    path: path.clone(),
                    source: Box::new(e),
                })?;
                let json: serde_json::Value =
                    serde_json::from_str(&raw).map_err(|source| RegistryError::Manifest {
                        path: path.clone(),
                        source,
                    })?;
                let version = Arc::new(SchemaVersion::new(
                    subject.clone(),
                    entry.version,
                    entry.id,
                    schema,
                    json.to_string(),
                ));
                if by_id.insert(entry.id, version.clone()).is_some() {
                    return Err(RegistryError::Invalid(format!(
                        "schema id {} is used twice",
                        entry.id
                    )));
                }
                versions.push(version);
            }
            versions.sort_by_key(|v| v.version);
            if versions.windows(2).any(|w| w[0].version == w[1].version) {
                return Err(RegistryError::Invalid(format!(
                    "subject {subject} lists a version twice"
                )));
            }
            subjects.insert(subject, versions);
        }
        for (subject, versions) in &subjects {
            refuse_incompatible(subject, versions)?;
        }
        let events = subjects.get(AUDIT_EVENT_SUBJECT).ok_or_else(|| {
            RegistryError::Invalid(format!("no versions of subject {AUDIT_EVENT_SUBJECT}"))
        })?;
        let current = match manifest.ingest_version {
            None => events.last(),
            Some(n) => events.iter().find(|v| v.version == n),
        }
        .cloned()
        .ok_or_else(|| {
            RegistryError::Invalid(format!(
                "ingest_version {:?} is not a version of subject {AUDIT_EVENT_SUBJECT}",
                manifest.ingest_version
            ))
        })?;
        Ok(Registry {
            subjects,
            by_id,
            current,
            external: None,
            external_current: RwLock::new(None),
            fetched: RwLock::new(HashMap::new()),
        })
    }

    /// Uses the registry at `url` for schema ids from now on.
    pub fn with_external(mut self, url: &str, timeout: Duration) -> Registry {
        self.external = Some(External::new(url, timeout));
        self
    }

    /// Ready to encode: with an external registry, the current schema's id
    /// there is known. Fails closed: no id, no events.
    pub async fn ready(&self) -> Result<(), ExternalError> {
        let Some(external) = &self.external else {
            return Ok(());
        };
        if self.writer_version().is_some() {
            return Ok(());
        }
        let id = external
            .lookup(&self.current.subject, &self.current.text)
            .await?;
        let version = Arc::new(SchemaVersion::new(
            self.current.subject.clone(),
            self.current.version,
            id,
            self.current.schema.clone(),
            self.current.text.clone(),
        ));
        tracing::info!(
            id,
            registry = external.url(),
            "schema id taken from the external registry"
        );
        if let Ok(mut slot) = self.external_current.write() {
            *slot = Some(version.clone());
        }
        if let Ok(mut fetched) = self.fetched.write() {
            fetched.insert(id, version);
        }
        Ok(())
    }

    /// Makes `id` decodable if some registry knows it: true if it is now
    /// known, false if no registry has it (a poison message), an error if
    /// the external registry cannot be asked (try again later).
    pub async fn fetch(&self, id: u32) -> Result<bool, ExternalError> {
        if self.lookup(id).is_some() {
            return Ok(true);
        }
        let Some(external) = &self.external else {
            return Ok(false);
        };
        let Some(text) = external.schema(id).await? else {
            return Ok(false);
        };
        let Ok(schema) = Schema::parse_str(&text) else {
            return Ok(false);
        };
        let version = Arc::new(SchemaVersion::new(
            self.current.subject.clone(),
            0,
            id,
            schema,
            text,
        ));
        if let Ok(mut fetched) = self.fetched.write() {
            fetched.insert(id, version);
        }
        Ok(true)
    }

    /// What ingest writes with: the local current version, or with an
    /// external registry the same schema under that registry's id.
    fn writer_version(&self) -> Option<Arc<SchemaVersion>> {
        match &self.external {
            None => Some(self.current.clone()),
            Some(_) => self.external_current.read().ok()?.clone(),
        }
    }

    /// A schema by id from the contract or fetched from the external
    /// registry.
    fn lookup(&self, id: u32) -> Option<Arc<SchemaVersion>> {
        self.by_id
            .get(&id)
            .cloned()
            .or_else(|| self.fetched.read().ok()?.get(&id).cloned())
    }

    /// The version ingest writes with, and that every message is resolved
    /// to before it is stored (`ingest_version` in registry.json).
    pub fn current(&self) -> &SchemaVersion {
        &self.current
    }

    pub fn by_id(&self, id: u32) -> Option<&SchemaVersion> {
        self.by_id.get(&id).map(Arc::as_ref)
    }

    pub fn subjects(&self) -> impl Iterator<Item = (&str, &[Arc<SchemaVersion>])> {
        self.subjects
            .iter()
            .map(|(s, v)| (s.as_str(), v.as_slice()))
    }

    /// Versions of `subject`, oldest first.
    pub fn versions(&self, subject: &str) -> Option<&[Arc<SchemaVersion>]> {
        self.subjects.get(subject).map(Vec::as_slice)
    }

    /// Whether data written with `version` can be read with `candidate`
    /// (Confluent's BACKWARD rule for one version), by the Avro
    /// specification's resolution rules ([`resolution`]); `Err` when the
    /// candidate is not a valid Avro schema.
    pub fn can_read(
        version: &SchemaVersion,
        candidate: &str,
    ) -> Result<Result<(), Incompatible>, String> {
        // apache-avro decodes what Attest reads, so it must accept the
        // schema too, not only the resolution model.
        Schema::parse_str(candidate).map_err(|e| e.to_string())?;
        let reader: serde_json::Value =
            serde_json::from_str(candidate).map_err(|e| e.to_string())?;
        let writer: serde_json::Value =
            serde_json::from_str(&version.text).map_err(|e| e.to_string())?;
        resolution::check(&writer, &reader).map_err(|e| e.to_string())
    }

    /// Whether `candidate` and `version` read each other's data, as
    /// [`COMPATIBILITY`] asks of every pair of versions: every reason they do
    /// not, each saying which way; `Err` when the candidate is not valid.
    pub fn compatible(
        version: &SchemaVersion,
        candidate: &str,
    ) -> Result<Result<(), Vec<String>>, String> {
        let mut reasons = Vec::new();
        if let Err(why) = Registry::can_read(version, candidate)? {
            reasons.push(format!(
                "it cannot read what version {} wrote: {why}",
                version.version
            ));
        }
        let reverse = SchemaVersion::new(
            version.subject.clone(),
            0,
            0,
            Schema::parse_str(candidate).map_err(|e| e.to_string())?,
            candidate.to_owned(),
        );
        if let Err(why) = Registry::can_read(&reverse, &version.text)? {
            reasons.push(format!(
                "version {} cannot read what it writes: {why}",
                version.version
            ));
        }
        Ok(if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        })
    }

    /// Avro-encodes an event with the current schema, Confluent-framed.
    /// With an external registry, [`Registry::ready`] must have succeeded.
    pub fn encode(&self, event: &AuditEvent) -> Result<Vec<u8>, EncodeError> {
        let writer = self.writer_version().ok_or_else(|| EncodeError {
            id: 0,
            detail: "the external registry's id for the schema is not known yet".into(),
        })?;
        if writer.direct {
            let mut framed = wire::header(writer.id);
            direct::encode(event, &mut framed);
            return Ok(framed);
        }
        let datum = to_avro_datum(&writer.schema, event.to_avro()).map_err(|e| EncodeError {
            id: writer.id,
            detail: e.to_string(),
        })?;
        Ok(wire::frame(writer.id, &datum))
    }

    /// Decodes a body of Confluent-framed records, one after another (Avro
    /// binary is self-delimiting given its schema). Stops at the first that
    /// does not decode, since where the next one starts is then unknown;
    /// the error names its position.
    pub fn decode_many(&self, mut body: &[u8]) -> Result<Vec<AuditEvent>, (usize, DecodeFailure)> {
        let mut events = Vec::new();
        while !body.is_empty() {
            let index = events.len();
            let (id, datum) = wire::unframe(body).map_err(|e| (index, e.into()))?;
            let writer = self
                .by_id(id)
                .ok_or((index, DecodeFailure::UnknownSchemaId(id)))?;
            let (event, used) = self.decode_datum(writer, datum).map_err(|e| (index, e))?;
            events.push(event);
            body = &datum[used..];
        }
        Ok(events)
    }

    /// Reads one record from the start of `datum`, written with `writer`
    /// and resolved to the current version; returns the bytes it took.
    fn decode_datum(
        &self,
        writer: &SchemaVersion,
        datum: &[u8],
    ) -> Result<(AuditEvent, usize), DecodeFailure> {
        let id = writer.id;
        let malformed = |detail: String| DecodeFailure::Avro { id, detail };
        if writer.direct {
            return direct::decode(datum).map_err(|e| malformed(e.to_string()));
        }
        let used =
            bounds::check_record(&writer.schema, datum).map_err(|e| malformed(e.to_string()))?;
        let mut record = &datum[..used];
        let reader = (writer.id != self.current.id).then_some(&self.current.schema);
        let value = from_avro_datum(&writer.schema, &mut record, reader)
            .map_err(|e| malformed(e.to_string()))?;
        Ok((AuditEvent::from_avro(value)?, used))
    }

    /// Decodes a framed message written with any registered version,
    /// resolving it to the current one. Returns the writer's schema id too.
    pub fn decode(&self, message: &[u8]) -> Result<(u32, AuditEvent), DecodeFailure> {
        let (id, datum) = wire::unframe(message)?;
        let writer = self.lookup(id).ok_or(DecodeFailure::UnknownSchemaId(id))?;
        let (event, used) = self.decode_datum(&writer, datum)?;
        if used != datum.len() {
            return Err(DecodeFailure::Avro {
                id,
                detail: format!("{} trailing bytes after the record", datum.len() - used),
            });
        }
        Ok((id, event))
    }
}

/// A version that some other cannot read is refused at start-up: the
/// contract is [`COMPATIBILITY`], so such a version is never in effect.
fn refuse_incompatible(
    subject: &str,
    versions: &[Arc<SchemaVersion>],
) -> Result<(), RegistryError> {
    for reader in versions {
        for writer in versions {
            match Registry::can_read(writer, &reader.text) {
                Ok(Ok(())) => {}
                Ok(Err(why)) => {
                    return Err(RegistryError::Invalid(format!(
                        "{subject}: version {} cannot read what version {} wrote ({COMPATIBILITY} is required): {why}",
                        reader.version, writer.version
                    )))
                }
                Err(why) => {
                    return Err(RegistryError::Invalid(format!(
                        "{subject}: version {}: {why}",
                        reader.version
                    )))
                }
            }
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, RegistryError> {
    std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample;

    fn registry() -> Registry {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        Registry::load(&dir).expect("the committed contract loads")
    }

    #[test]
    fn encodes_and_decodes_with_the_current_schema() {
        let r = registry();
        let framed = r.encode(&sample()).expect("encodes");
        assert_eq!(wire::unframe(&framed).expect("framed").0, r.current().id);
        assert_eq!(
            r.decode(&framed).expect("decodes"),
            (r.current().id, sample())
        );
    }

    #[test]
    fn every_registered_version_parses_and_ids_are_unique() {
        let r = registry();
        let mut ids: Vec<u32> = r
            .subjects()
            .flat_map(|(_, v)| v.iter().map(|s| s.id))
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    /// The contract's evolution rule ([`COMPATIBILITY`]): every version
    /// reads everything every other version wrote, older or newer. A schema
    /// change that breaks this fails the test command.
    #[test]
    fn every_version_reads_what_every_other_version_wrote() {
        let r = registry();
        for (subject, versions) in r.subjects() {
            for reader in versions {
                for writer in versions {
                    assert_eq!(
                        Registry::can_read(writer, &reader.text),
                        Ok(Ok(())),
                        "{subject}: version {} cannot read version {}",
                        reader.version,
                        writer.version
                    );
                }
            }
        }
    }

    /// An event as a version 2 writer sends it: version 1's fields and the
    /// trace id.
    fn version_2_datum(r: &Registry, trace_id: Option<&str>) -> Vec<u8> {
        let v2 = r.by_id(2).expect("version 2 is registered");
        let apache_avro::types::Value::Record(mut fields) = sample().to_avro() else {
            panic!("an event is a record");
        };
        fields.push((
            "trace_id".into(),
            match trace_id {
                Some(t) => apache_avro::types::Value::Union(
                    1,
                    Box::new(apache_avro::types::Value::String(t.into())),
                ),
                None => {
                    apache_avro::types::Value::Union(0, Box::new(apache_avro::types::Value::Null))
                }
            },
        ));
        to_avro_datum(&v2.schema, apache_avro::types::Value::Record(fields))
            .expect("fits version 2")
    }

    /// Version 2 adds a field with a default and changes nothing else:
    /// ingest still writes version 1 and the same rows are stored, and data
    /// written with either version is read with the other.
    #[test]
    fn version_1_and_version_2_read_each_others_data() {
        let r = registry();
        assert_eq!(
            (r.current().version, r.current().id),
            (1, 1),
            "ingest writes version 1"
        );
        assert_eq!(r.versions(AUDIT_EVENT_SUBJECT).map(<[_]>::len), Some(2));

        // Version 2 data, read as version 1 (what the writer stores): the
        // same event, the trace id skipped.
        for trace in [Some("4bf92f3577b34da6a3ce929d0e0e4736"), None] {
            let framed = wire::frame(2, &version_2_datum(&r, trace));
            assert_eq!(r.decode(&framed).expect("decodes"), (2, sample()));
            let mut many = framed.clone();
            many.extend(r.encode(&sample()).expect("encodes"));
            assert_eq!(r.decode_many(&many).expect("decodes"), [sample(), sample()]);
        }

        // Version 1 data (what ingest writes), read with version 2: every
        // field as written, the trace id null by its default.
        let framed = r.encode(&sample()).expect("encodes");
        let (id, mut datum) = wire::unframe(&framed).expect("framed");
        let v1 = r.by_id(id).expect("version 1");
        let v2 = r.by_id(2).expect("version 2");
        let read = from_avro_datum(&v1.schema, &mut datum, Some(&v2.schema)).expect("v2 reads v1");
        let apache_avro::types::Value::Record(mut fields) = read else {
            panic!("a record");
        };
        assert_eq!(
            fields.pop(),
            Some((
                "trace_id".into(),
                apache_avro::types::Value::Union(0, Box::new(apache_avro::types::Value::Null))
            ))
        );
        assert_eq!(
            apache_avro::types::Value::Record(fields),
            sample().to_avro()
        );
        assert!(datum.is_empty(), "the whole datum was read");
    }

    #[test]
    fn a_manifest_with_a_version_that_breaks_compatibility_is_refused() {
        let dir = std::env::temp_dir().join(format!("attest-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let contract = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let v1 = std::fs::read_to_string(contract.join("audit_event.avsc")).unwrap();
        let mut breaking: serde_json::Value = serde_json::from_str(&v1).unwrap();
        // Retiring a symbol without an enum default: version 2 cannot read
        // version 1's "system" events.
        breaking["fields"][4]["type"]["symbols"]
            .as_array_mut()
            .unwrap()
            .pop();
        std::fs::write(dir.join("v1.avsc"), &v1).unwrap();
        std::fs::write(dir.join("v2.avsc"), breaking.to_string()).unwrap();
        let manifest = |ingest: u32| {
            serde_json::json!({"ingest_version": ingest, "subjects": {AUDIT_EVENT_SUBJECT: [
                {"version": 1, "id": 1, "file": "v1.avsc"},
                {"version": 2, "id": 2, "file": "v2.avsc"}]}})
            .to_string()
        };
        std::fs::write(dir.join("registry.json"), manifest(1)).unwrap();
        let err = Registry::load(&dir).err().expect("refused").to_string();
        assert!(
            err.contains("version 2 cannot read what version 1 wrote"),
            "{err}"
        );
        assert!(err.contains("system"), "{err}");

        // With an enum default the retirement is allowed (Avro 1.9+).
        breaking["fields"][4]["type"]["default"] = "admin".into();
        std::fs::write(dir.join("v2.avsc"), breaking.to_string()).unwrap();
        let r = Registry::load(&dir).expect("an enum default makes it compatible");
        assert_eq!(r.current().version, 1);
        std::fs::write(dir.join("registry.json"), manifest(3)).unwrap();
        assert!(Registry::load(&dir).is_err(), "no version 3");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_checker_catches_a_breaking_change() {
        let r = registry();
        let current = r.current();
        let mut schema: serde_json::Value = serde_json::from_str(&current.text).unwrap();
        // A new required field without a default cannot be read from old data.
        schema["fields"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": "severity", "type": "string"}));
        assert!(matches!(
            Registry::can_read(current, &schema.to_string()),
            Ok(Err(_))
        ));
        // With a default it can.
        let fields = schema["fields"].as_array_mut().unwrap();
        fields.pop();
        fields.push(serde_json::json!({"name": "severity", "type": "string", "default": "info"}));
        assert_eq!(Registry::can_read(current, &schema.to_string()), Ok(Ok(())));
        assert!(Registry::can_read(current, "{not a schema").is_err());
    }

    #[test]
    fn a_body_of_framed_records_decodes_in_order_and_names_the_bad_one() {
        let r = registry();
        let mut second = sample();
        second.event_id = "second".into();
        let mut body = r.encode(&sample()).unwrap();
        body.extend(r.encode(&second).unwrap());
        assert_eq!(r.decode_many(&body).unwrap(), [sample(), second]);
        body.extend(wire::frame(999, b"x"));
        let (index, failure) = r.decode_many(&body).unwrap_err();
        assert_eq!((index, failure.code()), (2, "unknown_schema_id"));
        assert_eq!(r.decode_many(b"").unwrap(), []);
    }

    #[test]
    fn poison_messages_get_distinct_reasons() {
        let r = registry();
        assert_eq!(r.decode(b"{}").unwrap_err().code(), "bad_framing");
        assert_eq!(
            r.decode(&wire::frame(999, b"x")).unwrap_err().code(),
            "unknown_schema_id"
        );
        let id = r.current().id;
        assert_eq!(
            r.decode(&wire::frame(id, &[0xff; 3])).unwrap_err().code(),
            "undecodable_payload"
        );
        let mut framed = r.encode(&sample()).expect("encodes");
        framed.push(0);
        assert_eq!(r.decode(&framed).unwrap_err().code(), "undecodable_payload");
    }
}
