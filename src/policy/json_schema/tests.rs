//! Unit tests for the JSON Schema subset: keywords, `$ref`s, compile errors and messages.

use super::*;
use serde_json::json;

fn compile(s: Value) -> Schema {
    Schema::compile(&s).unwrap_or_else(|e| panic!("compile failed: {e}"))
}

fn err(s: &Schema, v: Value) -> String {
    s.validate(&v).expect_err("expected a validation failure")
}

fn compile_err(s: Value) -> String {
    match Schema::compile(&s) {
        Ok(_) => panic!("expected a compile error"),
        Err(e) => e,
    }
}

#[test]
fn schema_is_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Schema>();
}

#[test]
fn empty_schema_accepts_everything() {
    let s = compile(json!({}));
    for v in [json!(null), json!(1), json!("x"), json!([1]), json!({"a": 1}), json!(true)] {
        assert!(s.validate(&v).is_ok());
    }
}

#[test]
fn type_single() {
    let s = compile(json!({"type": "object"}));
    assert!(s.validate(&json!({})).is_ok());
    assert_eq!(err(&s, json!("x")), "(root): expected type object but found string");
    assert_eq!(err(&s, json!([])), "(root): expected type object but found array");
}

#[test]
fn type_array_of_names() {
    let s = compile(json!({"type": ["string", "null"]}));
    assert!(s.validate(&json!(null)).is_ok());
    assert!(s.validate(&json!("a")).is_ok());
    assert_eq!(err(&s, json!(1.5)), "(root): expected type string or null but found number");
}

#[test]
fn integer_accepts_zero_fraction() {
    let s = compile(json!({"type": "integer"}));
    assert!(s.validate(&json!(3)).is_ok());
    assert!(s.validate(&json!(-3)).is_ok());
    assert!(s.validate(&serde_json::from_str::<Value>("1.0").unwrap()).is_ok());
    assert_eq!(err(&s, json!(1.5)), "(root): expected type integer but found number");
    assert_eq!(err(&s, json!("1")), "(root): expected type integer but found string");
}

#[test]
fn number_accepts_integers() {
    let s = compile(json!({"type": "number"}));
    assert!(s.validate(&json!(3)).is_ok());
    assert!(s.validate(&json!(3.25)).is_ok());
    assert_eq!(err(&s, json!(true)), "(root): expected type number but found boolean");
}

#[test]
fn required_properties() {
    let s = compile(json!({"type": "object", "required": ["name", "age"]}));
    assert!(s.validate(&json!({"name": "a", "age": 1})).is_ok());
    assert_eq!(err(&s, json!({"name": "a"})), "(root): missing required property \"age\"");
    // required does not apply to non-objects
    assert!(compile(json!({"required": ["a"]})).validate(&json!(5)).is_ok());
}

#[test]
fn properties_and_pointers() {
    let s = compile(json!({"properties": {"age": {"type": "integer", "minimum": 18}}}));
    assert!(s.validate(&json!({"age": 18, "other": "x"})).is_ok());
    assert_eq!(err(&s, json!({"age": 7})), "/age: 7 is less than the minimum of 18");
    assert_eq!(err(&s, json!({"age": "7"})), "/age: expected type integer but found string");
}

#[test]
fn pointer_escaping_of_keys() {
    let s = compile(json!({"properties": {"a/b~c": {"type": "string"}}}));
    assert_eq!(err(&s, json!({"a/b~c": 1})), "/a~1b~0c: expected type string but found integer");
}

#[test]
fn additional_properties_false() {
    let s = compile(json!({"properties": {"a": {}}, "additionalProperties": false}));
    assert!(s.validate(&json!({"a": 1})).is_ok());
    assert_eq!(err(&s, json!({"a": 1, "b": 2})), "(root): additional property \"b\" is not allowed");
}

#[test]
fn additional_properties_schema() {
    let s = compile(json!({"properties": {"a": {}}, "additionalProperties": {"type": "number"}}));
    assert!(s.validate(&json!({"a": "x", "b": 2})).is_ok());
    assert_eq!(err(&s, json!({"a": "x", "b": "2"})), "/b: expected type number but found string");
}

#[test]
fn pattern_properties_count_as_declared() {
    let s = compile(json!({"patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": false}));
    assert!(s.validate(&json!({"x-a": "1"})).is_ok());
    assert_eq!(err(&s, json!({"x-a": 1})), "/x-a: expected type string but found integer");
    assert!(err(&s, json!({"y": 1})).contains("additional property \"y\""));
}

#[test]
fn enum_values() {
    let s = compile(json!({"enum": ["dog", "cat", 1, null, {"k": [1]}]}));
    for v in [json!("dog"), json!(1), json!(null), json!({"k": [1]})] {
        assert!(s.validate(&v).is_ok(), "{v}");
    }
    assert!(s.validate(&serde_json::from_str::<Value>("1.0").unwrap()).is_ok());
    assert_eq!(err(&s, json!("bird")), "(root): \"bird\" is not one of [\"dog\",\"cat\",1,null,{\"k\":[1]}]");
    assert!(s.validate(&json!({"k": [2]})).is_err());
}

#[test]
fn minimum_maximum_inclusive() {
    let s = compile(json!({"minimum": 1, "maximum": 10}));
    assert!(s.validate(&json!(1)).is_ok());
    assert!(s.validate(&json!(10)).is_ok());
    assert!(s.validate(&json!(5.5)).is_ok());
    assert_eq!(err(&s, json!(0.5)), "(root): 0.5 is less than the minimum of 1");
    assert_eq!(err(&s, json!(11)), "(root): 11 is greater than the maximum of 10");
    // numeric keywords ignore other types
    assert!(s.validate(&json!("100")).is_ok());
}

#[test]
fn minimum_maximum_exclusive_draft4() {
    let s = compile(json!({"minimum": 0, "exclusiveMinimum": true, "maximum": 1.5, "exclusiveMaximum": true}));
    assert!(s.validate(&json!(0.1)).is_ok());
    assert_eq!(err(&s, json!(0)), "(root): 0 is not greater than the exclusive minimum of 0");
    assert_eq!(err(&s, json!(1.5)), "(root): 1.5 is not less than the exclusive maximum of 1.5");
    let s = compile(json!({"minimum": 0, "exclusiveMinimum": false}));
    assert!(s.validate(&json!(0)).is_ok());
}

#[test]
fn big_integers_compare_exactly() {
    let s = compile(json!({"maximum": 9007199254740993u64}));
    assert!(s.validate(&json!(9007199254740993u64)).is_ok());
    assert!(s.validate(&json!(9007199254740994u64)).is_err());
    assert!(s.validate(&json!(-1)).is_ok());
}

#[test]
fn string_lengths_count_code_points() {
    let s = compile(json!({"minLength": 2, "maxLength": 3}));
    assert!(s.validate(&json!("héé")).is_ok()); // 3 code points, 5 bytes
    assert!(s.validate(&json!("日本")).is_ok());
    assert_eq!(err(&s, json!("é")), "(root): string length 1 is less than the minimum length of 2");
    assert_eq!(err(&s, json!("abcd")), "(root): string length 4 is greater than the maximum length of 3");
    assert!(s.validate(&json!(12345)).is_ok());
}

#[test]
fn pattern_is_unanchored_search() {
    let s = compile(json!({"pattern": "[0-9]{3}"}));
    assert!(s.validate(&json!("ab123cd")).is_ok());
    assert_eq!(err(&s, json!("ab12")), "(root): \"ab12\" does not match the pattern \"[0-9]{3}\"");
    let anchored = compile(json!({"pattern": "^\\d+$"}));
    assert!(anchored.validate(&json!("123")).is_ok());
    assert!(anchored.validate(&json!("123a")).is_err());
}

#[test]
fn items_single_schema() {
    let s = compile(json!({"type": "array", "items": {"type": "string"}}));
    assert!(s.validate(&json!(["a", "b"])).is_ok());
    assert!(s.validate(&json!([])).is_ok());
    assert_eq!(err(&s, json!(["a", 2])), "/1: expected type string but found integer");
}

#[test]
fn items_tuple_and_additional_items() {
    let s = compile(json!({"items": [{"type": "string"}, {"type": "integer"}]}));
    assert!(s.validate(&json!(["a", 1, {"any": true}])).is_ok());
    assert!(s.validate(&json!(["a"])).is_ok());
    assert_eq!(err(&s, json!([1])), "/0: expected type string but found integer");
    let closed = compile(json!({"items": [{"type": "string"}], "additionalItems": false}));
    assert_eq!(err(&closed, json!(["a", "b"])), "(root): array has 2 items, at most 1 are allowed");
    let typed = compile(json!({"items": [{}], "additionalItems": {"type": "null"}}));
    assert_eq!(err(&typed, json!([1, 2])), "/1: expected type null but found integer");
}

#[test]
fn min_max_items() {
    let s = compile(json!({"minItems": 1, "maxItems": 2}));
    assert!(s.validate(&json!([1])).is_ok());
    assert_eq!(err(&s, json!([])), "(root): array has 0 items, fewer than the minimum of 1");
    assert_eq!(err(&s, json!([1, 2, 3])), "(root): array has 3 items, more than the maximum of 2");
}

#[test]
fn all_of() {
    let s = compile(json!({"allOf": [{"type": "integer"}, {"minimum": 3}]}));
    assert!(s.validate(&json!(4)).is_ok());
    assert_eq!(err(&s, json!(2)), "(root): 2 is less than the minimum of 3");
}

#[test]
fn any_of() {
    let s = compile(json!({"anyOf": [{"type": "string"}, {"type": "integer"}]}));
    assert!(s.validate(&json!("a")).is_ok());
    assert!(s.validate(&json!(2)).is_ok());
    assert_eq!(err(&s, json!(null)), "(root): does not match any schema in anyOf");
}

#[test]
fn one_of() {
    let s = compile(json!({"oneOf": [{"type": "integer"}, {"minimum": 10}]}));
    assert!(s.validate(&json!(3)).is_ok());
    assert!(s.validate(&json!(10.5)).is_ok());
    assert_eq!(err(&s, json!(11)), "(root): matches oneOf schemas 0 and 1, must match exactly one");
    assert_eq!(err(&s, json!(2.5)), "(root): does not match any schema in oneOf");
}

#[test]
fn not() {
    let s = compile(json!({"not": {"type": "null"}}));
    assert!(s.validate(&json!(0)).is_ok());
    assert_eq!(err(&s, json!(null)), "(root): must not match the schema in not");
}

#[test]
fn ignored_and_unknown_keywords() {
    let s = compile(json!({
        "$schema": "http://json-schema.org/draft-04/schema#", "id": "x", "title": "T",
        "description": "d", "default": 5, "example": "e", "format": "email", "nullable": true,
        "x-vendor": {"type": 5}, "type": "string"
    }));
    assert!(s.validate(&json!("not an email")).is_ok());
    assert!(s.validate(&json!(null)).is_err());
}

#[test]
fn ref_into_definitions() {
    let s = compile(json!({
        "definitions": {"Age": {"type": "integer", "minimum": 18}},
        "type": "object",
        "properties": {"age": {"$ref": "#/definitions/Age"}, "other": {"$ref": "#/definitions/Age"}}
    }));
    assert!(s.validate(&json!({"age": 20, "other": 30})).is_ok());
    assert_eq!(err(&s, json!({"age": 7})), "/age: 7 is less than the minimum of 18");
    // both properties share one compiled node
    assert_eq!(s.nodes.iter().filter(|n| matches!(n, Node::Checks(_))).count(), 2);
}

#[test]
fn ref_siblings_are_ignored() {
    let s = compile(json!({"definitions": {"S": {"type": "string"}}, "$ref": "#/definitions/S", "type": "integer"}));
    assert!(s.validate(&json!("a")).is_ok());
    assert!(s.validate(&json!(1)).is_err());
}

#[test]
fn ref_chain_and_escaped_names() {
    let s = compile(json!({
        "definitions": {"A": {"$ref": "#/definitions/B"}, "B": {"$ref": "#/definitions/a~1b%20c"},
                        "a/b c": {"type": "boolean"}},
        "$ref": "#/definitions/A"
    }));
    assert!(s.validate(&json!(true)).is_ok());
    assert_eq!(err(&s, json!(1)), "(root): expected type boolean but found integer");
}

#[test]
fn petstore_new_pet_via_components_schemas() {
    // components and paths of the reference's section 15.3 document; the body model is a $ref
    let doc = json!({
        "components": {"schemas": {
            "NewPet": {"type": "object", "required": ["type", "price"],
                "properties": {"type": {"type": "string", "enum": ["dog", "cat", "fish"]},
                               "price": {"type": "number", "minimum": 25, "maximum": 500}}}
        }},
        "$ref": "#/components/schemas/NewPet"
    });
    let s = compile(doc);
    assert!(s.validate(&json!({"type": "dog", "price": 249.99})).is_ok());
    assert!(s.validate(&json!({"type": "cat", "price": 25, "name": "extra is fine"})).is_ok());
    assert_eq!(err(&s, json!({"type": "dog"})), "(root): missing required property \"price\"");
    assert_eq!(
        err(&s, json!({"type": "bird", "price": 30})),
        "/type: \"bird\" is not one of [\"dog\",\"cat\",\"fish\"]"
    );
    assert_eq!(err(&s, json!({"type": "fish", "price": 501})), "/price: 501 is greater than the maximum of 500");
    assert_eq!(err(&s, json!({})), "(root): missing required property \"type\"");
    assert_eq!(err(&s, json!([])), "(root): expected type object but found array");
}

fn tree_schema() -> Schema {
    compile(json!({
        "definitions": {"Node": {
            "type": "object", "required": ["value"],
            "properties": {"value": {"type": "integer"},
                           "children": {"type": "array", "items": {"$ref": "#/definitions/Node"}}},
            "additionalProperties": false
        }},
        "$ref": "#/definitions/Node"
    }))
}

#[test]
fn recursive_tree_schema() {
    let s = tree_schema();
    let ok = json!({"value": 1, "children": [{"value": 2}, {"value": 3, "children": [{"value": 4, "children": []}]}]});
    assert!(s.validate(&ok).is_ok());
    let bad = json!({"value": 1, "children": [{"value": 2}, {"value": 3, "children": [{"value": "4"}]}]});
    assert_eq!(err(&s, bad), "/children/1/children/0/value: expected type integer but found string");
    let extra = json!({"value": 1, "children": [{"value": 2, "x": 0}]});
    assert_eq!(err(&s, extra), "/children/0: additional property \"x\" is not allowed");
}

#[test]
fn recursion_through_root_ref() {
    let s = compile(json!({"type": "object", "properties": {"next": {"$ref": "#"}}}));
    assert!(s.validate(&json!({"next": {"next": {}}})).is_ok());
    assert_eq!(err(&s, json!({"next": {"next": 1}})), "/next/next: expected type object but found integer");
}

#[test]
fn deep_instance_stops_with_a_failure() {
    // deeper than serde_json would parse: built by hand
    let mut v = json!({"value": 0});
    for i in 0..400 {
        v = json!({"value": i, "children": [v]});
    }
    let e = err(&tree_schema(), v.clone());
    assert!(e.contains("nested deeper than"), "{e}");
    // the deepest tree serde_json parses (63 nodes, 126 levels) is fine
    let text = format!("{}{{\"value\":0}}{}", "{\"value\":1,\"children\":[".repeat(63), "]}".repeat(63));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(tree_schema().validate(&v).is_ok());
}

#[test]
fn self_reference_cycles_are_compile_errors() {
    assert_eq!(compile_err(json!({"$ref": "#"})), "/$ref: $ref cycle: the schema refers to itself");
    let e = compile_err(json!({"definitions": {"A": {"$ref": "#/definitions/B"}, "B": {"$ref": "#/definitions/A"}},
                               "$ref": "#/definitions/A"}));
    assert!(e.contains("$ref cycle"), "{e}");
    let e = compile_err(json!({"allOf": [{"$ref": "#"}]}));
    assert_eq!(e, "(root): $ref cycle through allOf/anyOf/oneOf/not: the schema applies itself to the same value");
    let e = compile_err(
        json!({"definitions": {"A": {"anyOf": [{"type": "string"}, {"not": {"$ref": "#/definitions/A"}}]}},
                               "properties": {"a": {"$ref": "#/definitions/A"}}}),
    );
    assert!(e.starts_with("/definitions/A: $ref cycle"), "{e}");
}

#[test]
fn malformed_keywords_name_their_pointer() {
    let cases = [
        (json!({"type": 5}), "/type: must be a type name"),
        (json!({"type": "text"}), "/type: must be a type name"),
        (json!({"type": []}), "/type: must be a type name"),
        (json!({"properties": {"age": {"minimum": "x"}}}), "/properties/age/minimum: must be a number"),
        (json!({"maximum": 1, "exclusiveMaximum": 0}), "/exclusiveMaximum: must be a boolean (draft 4)"),
        (json!({"exclusiveMinimum": true}), "/exclusiveMinimum: requires minimum"),
        (json!({"minLength": -1}), "/minLength: must be a non-negative integer"),
        (json!({"maxItems": 1.5}), "/maxItems: must be a non-negative integer"),
        (json!({"required": "a"}), "/required: must be an array of strings"),
        (json!({"required": ["a", 1]}), "/required: must be an array of strings"),
        (json!({"enum": []}), "/enum: must be a non-empty array"),
        (json!({"properties": []}), "/properties: must be an object"),
        (json!({"properties": {"a": 5}}), "/properties/a: a schema must be an object"),
        (json!({"items": "x"}), "/items: must be a schema or an array of schemas"),
        (json!({"items": [{}, {"type": 1}]}), "/items/1/type: must be a type name"),
        (json!({"additionalProperties": 1}), "/additionalProperties: must be a boolean or a schema"),
        (json!({"allOf": []}), "/allOf: must be a non-empty array of schemas"),
        (json!({"anyOf": [{}, {"minimum": null}]}), "/anyOf/1/minimum: must be a number"),
        (json!({"not": true}), "/not: a schema must be an object"),
        (json!({"$ref": 1}), "/$ref: must be a string"),
        (json!(true), "(root): a schema must be an object"),
    ];
    for (schema, want) in cases {
        let e = compile_err(schema.clone());
        assert!(e.starts_with(want), "{schema}: got {e:?}, want prefix {want:?}");
    }
}

#[test]
fn bad_regex_is_a_compile_error() {
    let e = compile_err(json!({"properties": {"id": {"pattern": "(unclosed"}}}));
    assert!(e.starts_with("/properties/id/pattern: invalid regular expression"), "{e}");
    let e = compile_err(json!({"patternProperties": {"[": {}}}));
    assert!(e.starts_with("/patternProperties/[: invalid regular expression"), "{e}");
}

#[test]
fn missing_and_remote_refs_are_compile_errors() {
    let e = compile_err(json!({"properties": {"p": {"$ref": "#/definitions/Pet"}}}));
    assert_eq!(e, "/properties/p/$ref: reference \"#/definitions/Pet\" does not resolve");
    let e = compile_err(json!({"$ref": "https://apigateway.amazonaws.com/restapis/x/models/Pet"}));
    assert!(e.starts_with("/$ref: unsupported reference"), "{e}");
    let e = compile_err(json!({"$ref": "#definitions"}));
    assert!(e.starts_with("/$ref: unsupported reference"), "{e}");
    // the bad schema is reported where it lives, not where it is referenced
    let e = compile_err(json!({"definitions": {"X": {"type": "nope"}}, "items": {"$ref": "#/definitions/X"}}));
    assert!(e.starts_with("/definitions/X/type: must be a type name"), "{e}");
}

#[test]
fn deeply_nested_schema_is_a_compile_error() {
    let mut s = json!({});
    for _ in 0..100 {
        s = json!({"not": s});
    }
    assert!(compile_err(s).contains("schema nested deeper than 64 levels"));
}

#[test]
fn long_values_are_cut_in_messages() {
    let s = compile(json!({"enum": ["a"]}));
    let e = err(&s, json!("x".repeat(1000)));
    assert!(e.len() < 200, "{e}");
    assert!(e.contains("..."));
}

#[test]
fn first_failure_wins_in_document_order() {
    let s = compile(json!({"properties": {"a": {"type": "string"}, "b": {"type": "string"}}}));
    assert_eq!(err(&s, json!({"b": 1, "a": 2})), "/b: expected type string but found integer");
}
