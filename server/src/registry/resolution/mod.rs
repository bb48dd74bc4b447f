//! Whether a reader schema can read everything a writer schema wrote, by
//! the Avro specification's schema resolution rules ("Schema Resolution"
//! in the specification, 1.12), as Apache Avro's reference checkers
//! (Java's `SchemaCompatibility`, Python's `ReaderWriterCompatibilityChecker`)
//! apply them. This is Attest's one compatibility check: the registry's
//! compatibility endpoints, [`crate::registry::Registry::can_read`] and the
//! contract test all ask it.
//!
//! Why not apache-avro's `SchemaCompatibility`: it refuses what the
//! specification allows (`long` promoted to `float`/`double`, logical types
//! resolved by their underlying type, an enum default standing in for a
//! dropped symbol, renames through aliases), so a valid next version of the
//! contract would be refused. `server/tests/avro_evolutions.json` holds
//! this checker, Java's and Python's to the same answers.
//!
//! The rules, reader against writer:
//! - same primitive; or a promotion: `int` to `long`, `float`, `double`;
//!   `long` to `float`, `double`; `float` to `double`; `string` to `bytes`
//!   and `bytes` to `string`. Logical types are ignored, except that two
//!   decimals must agree on scale and precision (the specification says
//!   so; Java's and Python's checkers do not look, see docs/DESIGN.md).
//! - arrays by their items, maps by their values.
//! - records, enums and fixed match when their unqualified names are equal
//!   or the reader's aliases name the writer's full name; fixed sizes equal.
//! - a record reads each of its fields from the writer's field of the same
//!   name or of one of its aliases; a field the writer lacks needs a
//!   default. Writer fields the reader lacks are skipped.
//! - an enum reads every writer symbol it has; one it lacks needs the
//!   reader's enum default.
//! - a writer union: every branch must be readable. A reader union reads a
//!   writer type with its first branch that matches it.

mod model;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;

use serde_json::Value;

pub use model::ModelError;
use model::{Model, Primitive, Type, TypeId};

/// One reason a reader cannot read a writer's data, and where: the path of
/// field names from the top record (`actor.ip`), with `[Branch]` for a union
/// branch, `[]` for array items and `{}` for map values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "at the top level: {}", self.reason)
        } else {
            write!(f, "at {}: {}", self.path, self.reason)
        }
    }
}

/// Every reason, in schema order; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatible(pub Vec<Incompatibility>);

impl fmt::Display for Incompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, one) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{one}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Incompatible {}

/// Whether `reader` reads everything `writer` wrote (both schemas as JSON).
/// `Err(ModelError)` when either is not a valid schema, including a field
/// default that is not a value of its field's type.
pub fn check(writer: &Value, reader: &Value) -> Result<Result<(), Incompatible>, ModelError> {
    let writer = Model::parse(writer)?;
    let reader = Model::parse(reader)?;
    let mut checker = Checker {
        reader: &reader,
        writer: &writer,
        seen: HashSet::new(),
        found: Vec::new(),
        path: Vec::new(),
    };
    checker.resolve(reader.root, writer.root);
    Ok(if checker.found.is_empty() {
        Ok(())
    } else {
        Err(Incompatible(checker.found))
    })
}

struct Checker<'a> {
    reader: &'a Model,
    writer: &'a Model,
    /// Pairs already resolved or being resolved: a recursive type is
    /// compatible with itself unless some other part says otherwise, and
    /// each pair's reasons are reported once.
    seen: HashSet<(TypeId, TypeId)>,
    found: Vec<Incompatibility>,
    path: Vec<String>,
}

/// Whether data of primitive `writer` is read as primitive `reader`.
fn promotes(writer: Primitive, reader: Primitive) -> bool {
    use Primitive::*;
    writer == reader
        || matches!(
            (writer, reader),
            (Int, Long | Float | Double)
                | (Long, Float | Double)
                | (Float, Double)
                | (String, Bytes)
                | (Bytes, String)
        )
}

impl Checker<'_> {
    fn fail(&mut self, reason: String) {
        let mut path = String::new();
        for segment in &self.path {
            if !path.is_empty() && !segment.starts_with(['[', '{']) {
                path.push('.');
            }
            path.push_str(segment);
        }
        self.found.push(Incompatibility { path, reason });
    }

    fn within(&mut self, segment: String, r: TypeId, w: TypeId) {
        self.path.push(segment);
        self.resolve(r, w);
        self.path.pop();
    }

    /// Whether named types match by the specification: equal unqualified
    /// names, or a reader alias naming the writer's full name.
    fn names_match(reader: &model::Name, writer: &model::Name) -> bool {
        reader.short == writer.short || reader.aliases.contains(&writer.full)
    }

    /// The specification's "match" without looking inside: what picks the
    /// reader union's branch for a writer type.
    fn matches(&self, r: TypeId, w: TypeId) -> bool {
        match (self.reader.get(r), self.writer.get(w)) {
            (Type::Primitive(r), Type::Primitive(w)) => promotes(*w, *r),
            (Type::Array(_), Type::Array(_)) | (Type::Map(_), Type::Map(_)) => true,
            (Type::Record { name: r, .. }, Type::Record { name: w, .. })
            | (Type::Enum { name: r, .. }, Type::Enum { name: w, .. })
            | (Type::Fixed { name: r, .. }, Type::Fixed { name: w, .. }) => Self::names_match(r, w),
            _ => false,
        }
    }

    /// Two decimals match only with the same precision and scale: the
    /// unscaled integer would otherwise be read as a different number.
    fn same_decimal(&mut self, r: TypeId, w: TypeId) {
        if let (Some(rd), Some(wd)) = (self.reader.decimals.get(&r), self.writer.decimals.get(&w)) {
            if rd != wd {
                self.fail(format!(
                    "decimal({}, {}) does not read the writer's decimal({}, {})",
                    rd.0, rd.1, wd.0, wd.1
                ));
            }
        }
    }

    fn resolve(&mut self, r: TypeId, w: TypeId) {
        if !self.seen.insert((r, w)) {
            return;
        }
        let (reader, writer) = (self.reader.get(r), self.writer.get(w));
        match (reader, writer) {
            (_, Type::Union(branches)) => {
                for &branch in branches {
                    let label = format!("[{}]", self.writer.get(branch).describe());
                    self.within(label, r, branch);
                }
            }
            (Type::Union(branches), _) => {
                match branches.iter().copied().find(|&b| self.matches(b, w)) {
                    Some(branch) => self.resolve(branch, w),
                    None => self.fail(format!(
                        "no branch of the reader's union reads the writer's {}",
                        writer.describe()
                    )),
                }
            }
            (Type::Primitive(rp), Type::Primitive(wp)) => {
                if !promotes(*wp, *rp) {
                    self.fail(format!(
                        "the writer's {} cannot be read as {}",
                        wp.name(),
                        rp.name()
                    ));
                } else {
                    self.same_decimal(r, w);
                }
            }
            (Type::Array(ri), Type::Array(wi)) => self.within("[]".into(), *ri, *wi),
            (Type::Map(rv), Type::Map(wv)) => self.within("{}".into(), *rv, *wv),
            (
                Type::Record { name: rn, fields },
                Type::Record {
                    name: wn,
                    fields: wf,
                },
            ) => {
                if !Self::names_match(rn, wn) {
                    self.fail(format!(
                        "record {} does not read record {} (different name, no alias)",
                        rn.full, wn.full
                    ));
                    return;
                }
                for field in fields {
                    let from = wf
                        .iter()
                        .find(|f| f.name == field.name)
                        .or_else(|| wf.iter().find(|f| field.aliases.contains(&f.name)));
                    match from {
                        Some(from) => self.within(field.name.clone(), field.ty, from.ty),
                        None if field.default.is_some() => {}
                        None => {
                            self.path.push(field.name.clone());
                            self.fail(format!(
                                "the writer has no field {} (nor an alias of it) and the reader's has no default",
                                field.name
                            ));
                            self.path.pop();
                        }
                    }
                }
            }
            (
                Type::Enum {
                    name: rn,
                    symbols,
                    default,
                },
                Type::Enum {
                    name: wn,
                    symbols: ws,
                    ..
                },
            ) => {
                if !Self::names_match(rn, wn) {
                    self.fail(format!(
                        "enum {} does not read enum {} (different name, no alias)",
                        rn.full, wn.full
                    ));
                    return;
                }
                let missing: Vec<&str> = ws
                    .iter()
                    .filter(|s| !symbols.contains(s))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() && default.is_none() {
                    self.fail(format!(
                        "the reader's enum {} lacks the writer's symbols {} and has no default",
                        rn.full,
                        missing.join(", ")
                    ));
                }
            }
            (Type::Fixed { name: rn, size: rs }, Type::Fixed { name: wn, size: ws }) => {
                if !Self::names_match(rn, wn) {
                    self.fail(format!(
                        "fixed {} does not read fixed {} (different name, no alias)",
                        rn.full, wn.full
                    ));
                } else if rs != ws {
                    self.fail(format!(
                        "fixed {} has size {rs}, the writer's {ws}",
                        rn.full
                    ));
                } else {
                    self.same_decimal(r, w);
                }
            }
            _ => self.fail(format!(
                "the writer's {} cannot be read as {}",
                writer.describe(),
                reader.describe()
            )),
        }
    }
}
