//! The rules one by one, on small schemas. The evolutions of Attest's own
//! schema, checked against Apache Avro's Java and Python checkers too, are
//! in server/tests/avro_evolutions.json.

use serde_json::{json, Value};

use super::{check, Incompatibility};

/// A record `R` in namespace `n` with one field `f` of type `ty`.
fn one(ty: Value) -> Value {
    json!({"type": "record", "name": "R", "namespace": "n", "fields": [{"name": "f", "type": ty}]})
}

fn reads(writer: &Value, reader: &Value) -> bool {
    check(writer, reader).expect("valid schemas").is_ok()
}

fn reasons(writer: &Value, reader: &Value) -> Vec<Incompatibility> {
    match check(writer, reader).expect("valid schemas") {
        Ok(()) => Vec::new(),
        Err(incompatible) => incompatible.0,
    }
}

#[test]
fn primitives_read_themselves_and_their_promotions_only() {
    let all = [
        "null", "boolean", "int", "long", "float", "double", "bytes", "string",
    ];
    let promoted = [
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
    ];
    for w in all {
        for r in all {
            let expected = w == r || promoted.contains(&(w, r));
            assert_eq!(
                reads(&one(json!(w)), &one(json!(r))),
                expected,
                "writer {w}, reader {r}"
            );
        }
    }
}

#[test]
fn logical_types_resolve_by_their_underlying_type() {
    let millis = json!({"type": "long", "logicalType": "timestamp-millis"});
    let micros = json!({"type": "long", "logicalType": "timestamp-micros"});
    let date = json!({"type": "int", "logicalType": "date"});
    assert!(reads(&one(millis.clone()), &one(micros.clone())));
    assert!(reads(&one(micros), &one(json!("long"))));
    assert!(reads(&one(millis.clone()), &one(json!("double"))));
    assert!(reads(&one(date), &one(millis.clone())));
    assert!(!reads(&one(millis), &one(json!("int"))));
    let uuid = json!({"type": "string", "logicalType": "uuid"});
    assert!(reads(&one(uuid), &one(json!("bytes"))));
}

#[test]
fn decimals_must_agree_on_precision_and_scale() {
    let dec = |p: u64, s: u64| json!({"type": "bytes", "logicalType": "decimal", "precision": p, "scale": s});
    assert!(reads(&one(dec(10, 2)), &one(dec(10, 2))));
    assert!(!reads(&one(dec(10, 2)), &one(dec(10, 3))));
    assert!(!reads(&one(dec(10, 2)), &one(dec(12, 2))));
    // Only one side a decimal: the underlying types decide.
    assert!(reads(&one(dec(10, 2)), &one(json!("bytes"))));
    let fixed = |p: u64| json!({"type": "fixed", "name": "D", "size": 8, "logicalType": "decimal", "precision": p, "scale": 2});
    assert!(reads(&one(fixed(10)), &one(fixed(10))));
    assert!(!reads(&one(fixed(10)), &one(fixed(11))));
}

#[test]
fn a_reader_field_the_writer_lacks_needs_a_default() {
    let writer = json!({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]});
    let with_default = json!({"type": "record", "name": "R", "fields": [
        {"name": "a", "type": "int"}, {"name": "b", "type": "string", "default": ""}]});
    let without = json!({"type": "record", "name": "R", "fields": [
        {"name": "a", "type": "int"}, {"name": "b", "type": "string"}]});
    assert!(reads(&writer, &with_default));
    let why = reasons(&writer, &without);
    assert_eq!(why.len(), 1);
    assert_eq!(why[0].path, "b");
    assert!(why[0].reason.contains("no default"), "{}", why[0]);
    // The other way round: the writer's extra field is skipped.
    assert!(reads(&without, &writer));
}

#[test]
fn fields_and_named_types_are_found_through_the_readers_aliases() {
    let writer = json!({"type": "record", "name": "Old", "namespace": "n", "fields": [
        {"name": "before", "type": "int"}]});
    let renamed = json!({"type": "record", "name": "New", "namespace": "n", "aliases": ["Old"], "fields": [
        {"name": "after", "type": "int", "aliases": ["before"]}]});
    assert!(reads(&writer, &renamed));
    // A fully qualified alias works the same.
    let qualified = json!({"type": "record", "name": "New", "namespace": "m", "aliases": ["n.Old"], "fields": [
        {"name": "after", "type": "int", "aliases": ["before"]}]});
    assert!(reads(&writer, &qualified));
    // An alias in the wrong namespace does not.
    let elsewhere = json!({"type": "record", "name": "New", "namespace": "m", "aliases": ["Old"], "fields": [
        {"name": "after", "type": "int", "aliases": ["before"]}]});
    assert!(!reads(&writer, &elsewhere));
    // Without the aliases, neither name matches.
    let plain = json!({"type": "record", "name": "New", "namespace": "n", "fields": [
        {"name": "after", "type": "int"}]});
    let why = reasons(&writer, &plain);
    assert!(why[0].reason.contains("different name"), "{}", why[0]);
    // The writer's aliases play no part.
    let aliased_writer = json!({"type": "record", "name": "Old", "namespace": "n", "aliases": ["New"], "fields": [
        {"name": "after", "type": "int"}]});
    assert!(!reads(&aliased_writer, &plain));
}

#[test]
fn names_match_unqualified() {
    let writer = json!({"type": "record", "name": "R", "namespace": "a", "fields": []});
    let reader = json!({"type": "record", "name": "R", "namespace": "b", "fields": []});
    assert!(reads(&writer, &reader));
}

#[test]
fn enums_need_every_writer_symbol_or_a_default() {
    let e = |symbols: &[&str], default: Option<&str>| {
        let mut e = json!({"type": "enum", "name": "E", "symbols": symbols});
        if let Some(d) = default {
            e["default"] = json!(d);
        }
        one(e)
    };
    assert!(reads(&e(&["a", "b"], None), &e(&["a", "b", "c"], None)));
    assert!(!reads(&e(&["a", "b", "c"], None), &e(&["a", "b"], None)));
    assert!(reads(
        &e(&["a", "b", "c"], None),
        &e(&["a", "b"], Some("a"))
    ));
    let why = reasons(&e(&["a", "b", "c"], None), &e(&["a"], None));
    assert_eq!(why[0].path, "f");
    assert!(why[0].reason.contains("b, c"), "{}", why[0]);
    // Reordered symbols are read by name.
    assert!(reads(&e(&["a", "b"], None), &e(&["b", "a"], None)));
}

#[test]
fn fixed_needs_the_same_name_and_size() {
    let f = |name: &str, size: u64| one(json!({"type": "fixed", "name": name, "size": size}));
    assert!(reads(&f("F", 4), &f("F", 4)));
    assert!(!reads(&f("F", 4), &f("F", 8)));
    assert!(!reads(&f("F", 4), &f("G", 4)));
    assert!(!reads(&f("F", 4), &one(json!("bytes"))));
}

#[test]
fn unions_read_branch_by_branch() {
    let opt = |t: &str| one(json!(["null", t]));
    // Widening a union, and a value into a union that holds its type.
    assert!(reads(
        &opt("string"),
        &one(json!(["null", "string", "long"]))
    ));
    assert!(reads(&one(json!("string")), &opt("string")));
    assert!(reads(&one(json!("int")), &opt("long")));
    // Every writer branch must be read.
    let why = reasons(&opt("string"), &one(json!("string")));
    assert_eq!(why.len(), 1);
    assert_eq!(why[0].path, "f[null]");
    assert!(reads(&opt("int"), &opt("long")));
    assert!(!reads(&opt("long"), &opt("int")));
    let why = reasons(&one(json!("boolean")), &opt("string"));
    assert!(why[0].reason.contains("no branch"), "{}", why[0]);
    // A union of one is read like its branch.
    assert!(reads(&one(json!(["long"])), &one(json!("long"))));
}

#[test]
fn arrays_and_maps_read_by_their_contents() {
    let arr = |t: &str| one(json!({"type": "array", "items": t}));
    let map = |t: &str| one(json!({"type": "map", "values": t}));
    assert!(reads(&arr("int"), &arr("long")));
    assert!(!reads(&arr("long"), &arr("int")));
    assert_eq!(reasons(&map("string"), &map("int"))[0].path, "f{}");
    assert_eq!(reasons(&arr("string"), &arr("int"))[0].path, "f[]");
    assert!(!reads(&arr("int"), &map("int")));
}

#[test]
fn reasons_name_the_path_to_the_field() {
    let writer = json!({"type": "record", "name": "R", "fields": [
        {"name": "actor", "type": {"type": "record", "name": "A", "fields": [
            {"name": "ip", "type": ["null", "string"]}]}}]});
    let reader = json!({"type": "record", "name": "R", "fields": [
        {"name": "actor", "type": {"type": "record", "name": "A", "fields": [
            {"name": "ip", "type": ["null", "int"]}]}}]});
    let why = reasons(&writer, &reader);
    assert_eq!(
        why.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["at actor.ip[string]: no branch of the reader's union reads the writer's string"]
    );
}

#[test]
fn recursive_types_terminate() {
    let list = |value: &str| {
        json!({"type": "record", "name": "Node", "fields": [
            {"name": "value", "type": value},
            {"name": "next", "type": ["null", "Node"], "default": null}]})
    };
    assert!(reads(&list("int"), &list("long")));
    assert!(!reads(&list("long"), &list("int")));
}

#[test]
fn every_reason_is_reported() {
    let writer = json!({"type": "record", "name": "R", "fields": [
        {"name": "a", "type": "long"}, {"name": "b", "type": "string"}]});
    let reader = json!({"type": "record", "name": "R", "fields": [
        {"name": "a", "type": "int"}, {"name": "b", "type": "boolean"}, {"name": "c", "type": "int"}]});
    let paths: Vec<String> = reasons(&writer, &reader)
        .into_iter()
        .map(|i| i.path)
        .collect();
    assert_eq!(paths, ["a", "b", "c"]);
}

#[test]
fn defaults_must_be_values_of_their_field_type() {
    let with = |ty: Value, default: Value| json!({"type": "record", "name": "R", "fields": [{"name": "f", "type": ty, "default": default}]});
    let valid = [
        (json!("string"), json!("x")),
        (json!("int"), json!(1)),
        (json!("long"), json!(-5)),
        (json!("double"), json!(1.5)),
        (json!("float"), json!(2)),
        (json!(["null", "string"]), json!(null)),
        // Avro 1.12: a union's default may be of any branch.
        (json!(["null", "string"]), json!("x")),
        (json!({"type": "map", "values": "string"}), json!({})),
        (json!({"type": "array", "items": "int"}), json!([1, 2])),
        (
            json!({"type": "enum", "name": "E", "symbols": ["a"]}),
            json!("a"),
        ),
        (
            json!({"type": "fixed", "name": "F", "size": 2}),
            json!("ab"),
        ),
    ];
    for (ty, default) in valid {
        let schema = with(ty.clone(), default.clone());
        assert!(
            check(&schema, &schema).is_ok(),
            "{ty} with default {default}"
        );
    }
    let invalid = [
        (json!("string"), json!(1)),
        (json!("int"), json!(1.5)),
        (json!("int"), json!(3_000_000_000_i64)),
        (json!("boolean"), json!("true")),
        (json!(["null", "string"]), json!(1)),
        (json!({"type": "map", "values": "string"}), json!({"k": 1})),
        (
            json!({"type": "enum", "name": "E", "symbols": ["a"]}),
            json!("b"),
        ),
        (
            json!({"type": "fixed", "name": "F", "size": 2}),
            json!("abc"),
        ),
    ];
    for (ty, default) in invalid {
        let schema = with(ty.clone(), default.clone());
        let err = check(&schema, &one(json!("int"))).expect_err("invalid default");
        assert!(err.to_string().contains("R.f"), "{err}");
    }
}

#[test]
fn an_enum_default_must_be_one_of_its_symbols() {
    let bad = one(json!({"type": "enum", "name": "E", "symbols": ["a"], "default": "z"}));
    assert!(check(&bad, &bad).is_err());
}

#[test]
fn unknown_names_are_invalid_schemas() {
    assert!(check(&one(json!("Nowhere")), &one(json!("int"))).is_err());
    assert!(check(&one(json!("int")), &json!(42)).is_err());
}

#[test]
fn the_first_matching_reader_branch_is_the_one_resolved() {
    // The writer's int matches the reader's long before its string; the
    // specification picks that branch and no other.
    assert!(reads(&one(json!("int")), &one(json!(["string", "long"]))));
    // A record branch is picked by name, then resolved field by field.
    let rec =
        |ty: &str| json!({"type": "record", "name": "A", "fields": [{"name": "x", "type": ty}]});
    assert!(!reads(
        &one(rec("string")),
        &one(json!(["null", rec("int")]))
    ));
}
