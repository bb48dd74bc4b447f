//! JSON read the way an audit trail must read it: a key given twice in one
//! object is refused, never resolved. `serde_json::Value` keeps the last of
//! the two, so `{"tenant_id": "a", "tenant_id": "b"}` would be read as
//! tenant `b` by Attest and possibly as `a` by the proxy or WAF that looked
//! at the body first: two readers, two events.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a body is not strict JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrictError {
    /// Position in a top-level array, when the body is one.
    pub index: Option<usize>,
    /// Dotted path of the offending key (`actor.id`); empty for syntax errors.
    pub field_path: String,
    pub problem: String,
}

const DUPLICATE: &str = "duplicate key ";

/// Parses `bytes` as one JSON value, refusing duplicate keys at any depth.
pub fn parse(bytes: &[u8]) -> Result<Value, StrictError> {
    let syntax = |message: String| StrictError {
        index: None,
        field_path: String::new(),
        problem: format!("body is not valid JSON: {message}"),
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let Strict(value) = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let message = e.inner().to_string();
        let Some(key) = message.strip_prefix(DUPLICATE).and_then(backticked) else {
            return syntax(message);
        };
        let (index, mut parts) = split_path(e.path());
        parts.push(key.to_owned());
        StrictError {
            index,
            field_path: parts.join("."),
            problem: "is given more than once in the same object; ambiguous JSON is refused".into(),
        }
    })?;
    deserializer.end().map_err(|e| syntax(e.to_string()))?;
    Ok(value)
}

fn backticked(s: &str) -> Option<&str> {
    s.strip_prefix('`')?.split('`').next()
}

/// The array index the path starts with (if any) and the keys after it.
fn split_path(path: &serde_path_to_error::Path) -> (Option<usize>, Vec<String>) {
    let mut index = None;
    let mut parts = Vec::new();
    for (i, segment) in path.iter().enumerate() {
        match segment {
            serde_path_to_error::Segment::Seq { index: n } if i == 0 => index = Some(*n),
            other => parts.push(other.to_string()),
        }
    }
    (index, parts)
}

struct Strict(Value);

impl<'de> de::Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity, so the parser never produces one.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE}`{key}`")));
            }
            let Strict(value) = access.next_value_seed(StrictSeed)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Strict;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Strict, D::Error> {
        de::Deserialize::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_serde_json_reads() {
        let body = br#"{"a": [1, -2, 3.5, true, null, "x"], "b": {"c": {}}}"#;
        let expected: Value = serde_json::from_slice(body).expect("valid");
        assert_eq!(parse(body), Ok(expected));
    }

    #[test]
    fn duplicate_keys_are_named_with_their_path() {
        let e = parse(br#"{"tenant_id": "a", "tenant_id": "b"}"#).unwrap_err();
        assert_eq!((e.index, e.field_path.as_str()), (None, "tenant_id"));
        assert!(e.problem.contains("more than once"), "{}", e.problem);

        let e = parse(br#"{"actor": {"id": "a", "id": "b"}}"#).unwrap_err();
        assert_eq!(e.field_path, "actor.id");

        let e = parse(br#"[{"a": 1}, {"metadata": {"k": "1", "k": "2"}}]"#).unwrap_err();
        assert_eq!((e.index, e.field_path.as_str()), (Some(1), "metadata.k"));
    }

    #[test]
    fn syntax_errors_and_trailing_bytes_are_body_errors() {
        for body in [&b"{\"a\": "[..], b"{} {}", b"", b"\xff"] {
            let e = parse(body).unwrap_err();
            assert_eq!(e.field_path, "", "{body:?}");
            assert!(
                e.problem.starts_with("body is not valid JSON"),
                "{}",
                e.problem
            );
        }
    }
}
