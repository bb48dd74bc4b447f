//! An Avro schema as schema resolution sees it: a graph of types in which
//! every named type is one node however often it is referenced, logical
//! types are dropped (the specification resolves them by their underlying
//! type) and names and aliases are made full. Built from the schema's JSON
//! so that nothing resolution needs (aliases, enum defaults, fixed names of
//! logical types, field defaults) is lost on the way.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Index of a type in [`Model::types`].
pub type TypeId = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Primitive {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
}

impl Primitive {
    fn named(name: &str) -> Option<Primitive> {
        Some(match name {
            "null" => Primitive::Null,
            "boolean" => Primitive::Boolean,
            "int" => Primitive::Int,
            "long" => Primitive::Long,
            "float" => Primitive::Float,
            "double" => Primitive::Double,
            "bytes" => Primitive::Bytes,
            "string" => Primitive::String,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Primitive::Null => "null",
            Primitive::Boolean => "boolean",
            Primitive::Int => "int",
            Primitive::Long => "long",
            Primitive::Float => "float",
            Primitive::Double => "double",
            Primitive::Bytes => "bytes",
            Primitive::String => "string",
        }
    }
}

/// A named type's identity: its full name, the unqualified name the
/// specification matches on, and its aliases made full.
#[derive(Debug, Clone)]
pub struct Name {
    pub full: String,
    pub short: String,
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub aliases: Vec<String>,
    pub ty: TypeId,
    pub default: Option<Value>,
}

#[derive(Debug, Clone)]
pub enum Type {
    Primitive(Primitive),
    Array(TypeId),
    Map(TypeId),
    Union(Vec<TypeId>),
    Record {
        name: Name,
        fields: Vec<Field>,
    },
    Enum {
        name: Name,
        symbols: Vec<String>,
        default: Option<String>,
    },
    Fixed {
        name: Name,
        size: u64,
    },
    /// A record whose fields are still being read (only while building).
    Pending(Name),
}

impl Type {
    /// How a reason names this type: its kind, and its full name if it has one.
    pub fn describe(&self) -> String {
        match self {
            Type::Primitive(p) => p.name().to_owned(),
            Type::Array(_) => "array".into(),
            Type::Map(_) => "map".into(),
            Type::Union(_) => "union".into(),
            Type::Record { name, .. } | Type::Pending(name) => format!("record {}", name.full),
            Type::Enum { name, .. } => format!("enum {}", name.full),
            Type::Fixed { name, .. } => format!("fixed {}", name.full),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not a valid Avro schema at {at}: {why}")]
pub struct ModelError {
    pub at: String,
    pub why: String,
}

#[derive(Debug)]
pub struct Model {
    pub types: Vec<Type>,
    pub root: TypeId,
    /// (precision, scale) of each `bytes` or `fixed` with logical type
    /// decimal: the one logical type the specification resolves by more
    /// than its underlying type.
    pub decimals: HashMap<TypeId, (u64, u64)>,
}

impl Model {
    pub fn parse(schema: &Value) -> Result<Model, ModelError> {
        let mut builder = Builder {
            types: Vec::new(),
            names: HashMap::new(),
            decimals: HashMap::new(),
        };
        let root = builder.ty(schema, "", "")?;
        let model = Model {
            types: builder.types,
            root,
            decimals: builder.decimals,
        };
        model.check_defaults()?;
        Ok(model)
    }

    pub fn get(&self, id: TypeId) -> &Type {
        // Ids come only from this model's builder, so they are in range; an
        // empty union (which matches nothing) stands in if that were not so.
        static MISSING: Type = Type::Union(Vec::new());
        self.types.get(id).unwrap_or(&MISSING)
    }

    /// Every field default must be a value of the field's type (Avro 1.12:
    /// for a union, of any of its branches, the first that fits being the
    /// one used), as Apache Avro's Java parser requires: a reader falls back
    /// on defaults, so a bad one would only show when old data is read.
    fn check_defaults(&self) -> Result<(), ModelError> {
        for ty in &self.types {
            if let Type::Record { name, fields } = ty {
                for field in fields {
                    if let Some(default) = &field.default {
                        if !self.fits(default, field.ty, 0) {
                            return Err(ModelError {
                                at: format!("{}.{}", name.full, field.name),
                                why: format!(
                                    "default {default} is not a {}",
                                    self.get(field.ty).describe()
                                ),
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether JSON `value` is a default of type `id` (the specification's
    /// table of default values). `depth` stops a recursive type's check.
    pub fn fits(&self, value: &Value, id: TypeId, depth: usize) -> bool {
        if depth > 64 {
            return false;
        }
        let next = depth.saturating_add(1);
        match self.get(id) {
            Type::Primitive(p) => match p {
                Primitive::Null => value.is_null(),
                Primitive::Boolean => value.is_boolean(),
                Primitive::Int => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                Primitive::Long => value.as_i64().is_some(),
                Primitive::Float | Primitive::Double => value.is_number(),
                Primitive::Bytes | Primitive::String => value.is_string(),
            },
            Type::Array(items) => value
                .as_array()
                .is_some_and(|a| a.iter().all(|v| self.fits(v, *items, next))),
            Type::Map(values) => value
                .as_object()
                .is_some_and(|m| m.values().all(|v| self.fits(v, *values, next))),
            Type::Union(branches) => branches.iter().any(|b| self.fits(value, *b, next)),
            Type::Record { fields, .. } => value.as_object().is_some_and(|m| {
                fields.iter().all(|f| match m.get(&f.name) {
                    Some(v) => self.fits(v, f.ty, next),
                    None => f.default.is_some(),
                })
            }),
            Type::Enum { symbols, .. } => value
                .as_str()
                .is_some_and(|s| symbols.iter().any(|x| x == s)),
            Type::Fixed { size, .. } => value
                .as_str()
                .is_some_and(|s| u64::try_from(s.chars().count()).is_ok_and(|n| n == *size)),
            Type::Pending(_) => false,
        }
    }
}

struct Builder {
    types: Vec<Type>,
    names: HashMap<String, TypeId>,
    decimals: HashMap<TypeId, (u64, u64)>,
}

/// (precision, scale) if `object` is a valid decimal; an invalid logical
/// type is ignored, as the specification asks of readers.
fn decimal(object: &Map<String, Value>) -> Option<(u64, u64)> {
    if object.get("logicalType").and_then(Value::as_str) != Some("decimal") {
        return None;
    }
    let precision = object.get("precision").and_then(Value::as_u64)?;
    let scale = match object.get("scale") {
        None => 0,
        Some(scale) => scale.as_u64()?,
    };
    (precision > 0 && scale <= precision).then_some((precision, scale))
}

fn bad(at: &str, why: impl Into<String>) -> ModelError {
    ModelError {
        at: if at.is_empty() { "/".into() } else { at.into() },
        why: why.into(),
    }
}

/// `name` made full in `namespace` (names with a dot already are).
fn full_name(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}.{name}")
    }
}

fn strings(object: &Map<String, Value>, key: &str, at: &str) -> Result<Vec<String>, ModelError> {
    match object.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(at, format!("\"{key}\" must hold strings")))
            })
            .collect(),
        Some(_) => Err(bad(at, format!("\"{key}\" must be an array"))),
    }
}

impl Builder {
    fn note_decimal(&mut self, id: TypeId, object: &Map<String, Value>) {
        if let Some(d) = decimal(object) {
            self.decimals.insert(id, d);
        }
    }

    fn add(&mut self, ty: Type) -> TypeId {
        self.types.push(ty);
        self.types.len() - 1
    }

    /// Reads the type at `at` in the enclosing `namespace`.
    fn ty(&mut self, schema: &Value, namespace: &str, at: &str) -> Result<TypeId, ModelError> {
        match schema {
            Value::String(name) => self.reference(name, namespace, at),
            Value::Array(branches) => {
                let mut ids = Vec::with_capacity(branches.len());
                for (i, branch) in branches.iter().enumerate() {
                    ids.push(self.ty(branch, namespace, &format!("{at}[{i}]"))?);
                }
                Ok(self.add(Type::Union(ids)))
            }
            Value::Object(object) => self.complex(object, namespace, at),
            _ => Err(bad(at, "a type is a name, an array or an object")),
        }
    }

    fn reference(&mut self, name: &str, namespace: &str, at: &str) -> Result<TypeId, ModelError> {
        if let Some(p) = Primitive::named(name) {
            return Ok(self.add(Type::Primitive(p)));
        }
        let full = full_name(name, namespace);
        self.names
            .get(&full)
            .or_else(|| self.names.get(name))
            .copied()
            .ok_or_else(|| bad(at, format!("unknown type {full}")))
    }

    fn complex(
        &mut self,
        object: &Map<String, Value>,
        namespace: &str,
        at: &str,
    ) -> Result<TypeId, ModelError> {
        let kind = match object.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            // {"type": {...}} or {"type": [...]}: the type is inside.
            Some(inner) => return self.ty(inner, namespace, at),
            None => return Err(bad(at, "an object type needs \"type\"")),
        };
        match kind {
            "array" => {
                let items = object
                    .get("items")
                    .ok_or_else(|| bad(at, "an array needs \"items\""))?;
                let items = self.ty(items, namespace, &format!("{at}[]"))?;
                Ok(self.add(Type::Array(items)))
            }
            "map" => {
                let values = object
                    .get("values")
                    .ok_or_else(|| bad(at, "a map needs \"values\""))?;
                let values = self.ty(values, namespace, &format!("{at}{{}}"))?;
                Ok(self.add(Type::Map(values)))
            }
            "record" | "error" | "enum" | "fixed" => {
                let id = self.named(kind, object, namespace, at)?;
                self.note_decimal(id, object);
                Ok(id)
            }
            // A primitive in object form, perhaps with a logical type, which
            // resolution ignores; or a reference to a named type.
            other => {
                let id = self.reference(other, namespace, at)?;
                if other == "bytes" {
                    self.note_decimal(id, object);
                }
                Ok(id)
            }
        }
    }

    fn named(
        &mut self,
        kind: &str,
        object: &Map<String, Value>,
        namespace: &str,
        at: &str,
    ) -> Result<TypeId, ModelError> {
        let short_or_full = object
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(at, format!("a {kind} needs a \"name\"")))?;
        let own_namespace = match short_or_full.rsplit_once('.') {
            Some((ns, _)) => ns.to_owned(),
            None => object
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or(namespace)
                .to_owned(),
        };
        let full = full_name(short_or_full, &own_namespace);
        let short = full.rsplit('.').next().unwrap_or(&full).to_owned();
        let aliases = strings(object, "aliases", at)?
            .iter()
            .map(|a| full_name(a, &own_namespace))
            .collect();
        let name = Name {
            full: full.clone(),
            short,
            aliases,
        };
        let at = full.as_str();
        if self.names.contains_key(&full) {
            return Err(bad(at, format!("{full} is defined twice")));
        }
        let ty = match kind {
            "enum" => {
                let symbols = strings(object, "symbols", at)?;
                let default = match object.get("default") {
                    None => None,
                    Some(Value::String(s)) if symbols.contains(s) => Some(s.clone()),
                    Some(other) => {
                        return Err(bad(at, format!("enum default {other} is not a symbol")))
                    }
                };
                Type::Enum {
                    name,
                    symbols,
                    default,
                }
            }
            "fixed" => {
                let size = object
                    .get("size")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad(at, "a fixed needs a \"size\""))?;
                Type::Fixed { name, size }
            }
            _ => return self.record(name, object, &own_namespace),
        };
        let id = self.add(ty);
        self.names.insert(full, id);
        Ok(id)
    }

    /// A record is named before its fields are read, so a field may refer
    /// to the record itself (a linked list, a tree).
    fn record(
        &mut self,
        name: Name,
        object: &Map<String, Value>,
        namespace: &str,
    ) -> Result<TypeId, ModelError> {
        let at = name.full.clone();
        let id = self.add(Type::Pending(name.clone()));
        self.names.insert(name.full.clone(), id);
        let raw = object
            .get("fields")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(&at, "a record needs \"fields\""))?;
        let mut fields = Vec::with_capacity(raw.len());
        for field in raw {
            let field = field
                .as_object()
                .ok_or_else(|| bad(&at, "a field is an object"))?;
            let field_name = field
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(&at, "a field needs a \"name\""))?;
            let field_at = format!("{at}.{field_name}");
            let ty = field
                .get("type")
                .ok_or_else(|| bad(&field_at, "a field needs a \"type\""))?;
            fields.push(Field {
                name: field_name.to_owned(),
                aliases: strings(field, "aliases", &field_at)?,
                ty: self.ty(ty, namespace, &field_at)?,
                default: field.get("default").cloned(),
            });
        }
        if let Some(slot) = self.types.get_mut(id) {
            *slot = Type::Record { name, fields };
        }
        Ok(id)
    }
}
