//! Refuses Avro records whose declared lengths could not fit in the bytes
//! that carry them, before apache-avro decodes them.
//!
//! Why: apache-avro reserves room for a map or array block's declared entry
//! count before reading one entry, and its allocation limit compares that
//! count (not bytes) with a byte budget. A 150-byte record declaring a map
//! of 2^29 entries asked for 87 GB and aborted the process. Every entry of a
//! block takes at least `min_size` bytes of the datum, so a count larger than
//! the bytes left divided by that is a lie, and so is a string or bytes
//! length larger than the bytes left. This walk allocates nothing and is
//! linear in the datum; it does not check what decoding checks anyway
//! (UTF-8, enum ranges), only that nothing claims more than is there.

use std::collections::HashMap;

use apache_avro::schema::{Name, ResolvedSchema, Schema};

/// Nesting deeper than this is refused: only a recursive schema nests
/// without bound, and there the depth is chosen by the sender.
const MAX_DEPTH: usize = 64;

use super::binary::Cursor;
pub use super::binary::Malformed as BoundsError;

/// Checks one record at the start of `datum` against `schema` and returns
/// how many bytes it takes, so records written back to back can be walked
/// one after another.
pub fn check_record(schema: &Schema, datum: &[u8]) -> Result<usize, BoundsError> {
    let mut walk = Walk {
        root: schema,
        names: None,
        cursor: Cursor::new(datum),
    };
    walk.value(schema, 0)?;
    Ok(walk.cursor.position())
}

struct Walk<'a> {
    root: &'a Schema,
    /// Named types, resolved on the first reference only: the writer calls
    /// this for every message, and Attest's own schema has no references.
    names: Option<HashMap<Name, &'a Schema>>,
    cursor: Cursor<'a>,
}

impl<'a> Walk<'a> {
    fn skip(&mut self, n: usize, what: &str) -> Result<(), BoundsError> {
        self.cursor.take(n, what).map(drop)
    }

    fn value(&mut self, schema: &Schema, depth: usize) -> Result<(), BoundsError> {
        if depth > MAX_DEPTH {
            return Err(BoundsError(format!(
                "nested deeper than {MAX_DEPTH} levels"
            )));
        }
        match schema {
            Schema::Null => Ok(()),
            Schema::Boolean => self.skip(1, "boolean"),
            Schema::Int
            | Schema::Long
            | Schema::Date
            | Schema::TimeMillis
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos
            | Schema::Enum(_) => self.cursor.long().map(drop),
            Schema::Float => self.skip(4, "float"),
            Schema::Double => self.skip(8, "double"),
            Schema::Duration => self.skip(12, "duration"),
            Schema::Fixed(f) => self.skip(f.size, "fixed"),
            Schema::Bytes | Schema::String | Schema::BigDecimal | Schema::Uuid => {
                self.cursor.bytes("string or bytes").map(drop)
            }
            Schema::Decimal(d) => self.value(&d.inner, depth + 1),
            Schema::Array(a) => self.blocks(&[&a.items], "array", depth),
            // A map entry is a string key followed by its value.
            Schema::Map(m) => self.blocks(&[&Schema::String, &m.types], "map", depth),
            Schema::Union(u) => {
                let variants = u.variants();
                let branch = self.cursor.index(variants.len(), "union branch")?;
                self.value(&variants[branch], depth + 1)
            }
            Schema::Record(r) => r
                .fields
                .iter()
                .try_for_each(|f| self.value(&f.schema, depth + 1)),
            Schema::Ref { name } => {
                let target = self.resolve(name)?;
                self.value(target, depth + 1)
            }
        }
    }

    fn resolve(&mut self, name: &Name) -> Result<&'a Schema, BoundsError> {
        if self.names.is_none() {
            let resolved = ResolvedSchema::try_from(self.root)
                .map_err(|e| BoundsError(format!("schema cannot be resolved: {e}")))?;
            self.names = Some(resolved.get_names().clone());
        }
        self.names
            .as_ref()
            .and_then(|names| names.get(name).copied())
            .ok_or_else(|| BoundsError(format!("schema reference {name} cannot be resolved")))
    }

    /// Array or map blocks: a count (negative: followed by the block's byte
    /// size), then the entries, until a zero count.
    fn blocks(&mut self, entry: &[&Schema], what: &str, depth: usize) -> Result<(), BoundsError> {
        let per_entry: usize = entry.iter().map(|s| min_size(s)).sum();
        loop {
            let count = self.cursor.block(per_entry, what)?;
            if count == 0 {
                return Ok(());
            }
            for _ in 0..count {
                for schema in entry {
                    self.value(schema, depth + 1)?;
                }
            }
        }
    }
}

/// The fewest bytes a value of `schema` can take. References count as 0,
/// which only makes the bound looser.
fn min_size(schema: &Schema) -> usize {
    match schema {
        Schema::Null | Schema::Ref { .. } => 0,
        Schema::Float => 4,
        Schema::Double => 8,
        Schema::Duration => 12,
        Schema::Fixed(f) => f.size,
        Schema::Decimal(d) => min_size(&d.inner),
        Schema::Record(r) => r.fields.iter().map(|f| min_size(&f.schema)).sum(),
        Schema::Union(u) => 1 + u.variants().iter().map(min_size).min().unwrap_or(0),
        // Every varint, length and block terminator takes at least a byte.
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::{to_avro_datum, types::Value};

    fn schema(json: &str) -> Schema {
        Schema::parse_str(json).expect("test schema parses")
    }

    fn long(n: i64) -> Vec<u8> {
        let mut out = Vec::new();
        super::super::binary::put_long(&mut out, n);
        out
    }

    const ALL: &str = r#"{"type": "record", "name": "R", "fields": [
        {"name": "m", "type": {"type": "map", "values": "string"}},
        {"name": "a", "type": {"type": "array", "items": "long"}},
        {"name": "s", "type": "string"},
        {"name": "b", "type": "bytes"},
        {"name": "u", "type": ["null", "R"]}
    ]}"#;

    #[test]
    fn honest_records_pass_and_report_their_length() {
        let s = schema(ALL);
        let inner = Value::Record(vec![
            (
                "m".into(),
                Value::Map([("k".to_owned(), Value::String("v".into()))].into()),
            ),
            (
                "a".into(),
                Value::Array(vec![Value::Long(1), Value::Long(-300)]),
            ),
            ("s".into(), Value::String("text".into())),
            ("b".into(), Value::Bytes(vec![0, 1, 2])),
            ("u".into(), Value::Union(0, Box::new(Value::Null))),
        ]);
        let Value::Record(mut fields) = inner.clone() else {
            unreachable!()
        };
        fields[4].1 = Value::Union(1, Box::new(inner));
        let mut datum = to_avro_datum(&s, Value::Record(fields)).expect("encodes");
        let len = datum.len();
        datum.extend_from_slice(b"next record");
        assert_eq!(check_record(&s, &datum), Ok(len));
    }

    #[test]
    fn counts_and_lengths_beyond_the_datum_are_refused() {
        let s = schema(ALL);
        let hostile_map = [long(1 << 29), b"\x02k\x02v".to_vec(), vec![0]].concat();
        let err = check_record(&s, &hostile_map).unwrap_err();
        assert!(
            err.0.contains("map block at byte 0 declares 536870912"),
            "{err}"
        );

        let empty_map = [0u8];
        let hostile_array = [&empty_map[..], &long(-(1 << 40)), &long(5)].concat();
        let err = check_record(&s, &hostile_array).unwrap_err();
        assert!(err.0.contains("array block at byte 1"), "{err}");

        let hostile_string = [&empty_map[..], &[0], &long(1 << 33)].concat();
        let err = check_record(&s, &hostile_string).unwrap_err();
        assert!(err.0.contains("declares 8589934592 bytes"), "{err}");

        let hostile_bytes = [&empty_map[..], &[0], &long(1), b"x", &long(1_000_000)].concat();
        let err = check_record(&s, &hostile_bytes).unwrap_err();
        assert!(err.0.contains("declares 1000000 bytes"), "{err}");

        let negative = [&empty_map[..], &[0], &long(-1)].concat();
        assert!(check_record(&s, &negative)
            .unwrap_err()
            .0
            .contains("negative"));
    }

    #[test]
    fn a_map_needs_two_bytes_an_entry() {
        let s = schema(r#"{"type": "map", "values": "string"}"#);
        // 3 entries declared, 5 bytes follow: at most 2 fit.
        let datum = [long(3), b"\x00\x00\x00\x00\x00".to_vec()].concat();
        assert!(check_record(&s, &datum).is_err());
        let datum = [long(2), b"\x00\x00\x00\x00\x00".to_vec()].concat();
        assert_eq!(check_record(&s, &datum), Ok(6));
    }

    #[test]
    fn deep_recursion_and_bad_unions_are_refused() {
        let s = schema(
            r#"{"type": "record", "name": "L", "fields": [{"name": "next", "type": ["null", "L"]}]}"#,
        );
        let deep = [vec![2u8; 200], vec![0]].concat();
        assert!(check_record(&s, &deep)
            .unwrap_err()
            .0
            .contains("nested deeper"));
        assert!(check_record(&s, &[4]).unwrap_err().0.contains("branch 2"));
        assert!(check_record(&s, &[0x80])
            .unwrap_err()
            .0
            .contains("ends inside"));
    }
}
