//! Checks a JSON value against a schema of an OpenAPI 3.0 document (the
//! parts Immich's spec uses: `$ref`, `allOf`, `anyOf`, `nullable`, types,
//! enums, required properties, items, uuid and date-time formats), so a
//! stand-in's answers are held to the real service's spec.

use serde_json::Value;

/// Immich's own spec, as the tests read it.
pub fn immich_spec() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/immich/openapi-3.0.3.json"
        ))
        .unwrap(),
    )
    .unwrap()
}

/// Every way `v` breaks the schema named `name`, as `path: problem`.
pub fn violations(spec: &Value, name: &str, v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let schema = serde_json::json!({"$ref": format!("#/components/schemas/{name}")});
    check(spec, &schema, v, name, &mut out);
    out
}

fn resolve<'a>(spec: &'a Value, r: &str) -> &'a Value {
    let path = r.trim_start_matches("#/");
    path.split('/').fold(spec, |at, part| &at[part])
}

fn check(spec: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return check(spec, resolve(spec, r), v, at, out);
    }
    if v.is_null() {
        if schema["nullable"] != true {
            out.push(format!("{at}: null where the spec has no nullable"));
        }
        return;
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(spec, s, v, at, out);
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let fits = any.iter().any(|s| {
            let mut sub = Vec::new();
            check(spec, s, v, at, &mut sub);
            sub.is_empty()
        });
        if !fits {
            out.push(format!("{at}: fits none of anyOf"));
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        if !values.contains(v) {
            out.push(format!("{at}: {v} is not one of {values:?}"));
        }
    }
    let ok = match schema.get("type").and_then(Value::as_str) {
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        Some("array") => v.is_array(),
        Some("object") => v.is_object(),
        _ => true,
    };
    if !ok {
        out.push(format!("{at}: {v} is not a {}", schema["type"]));
        return;
    }
    if let (Some(s), Some(format)) = (v.as_str(), schema.get("format").and_then(Value::as_str)) {
        let fine = match format {
            "uuid" => uuid::Uuid::parse_str(s).is_ok(),
            "date-time" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            _ => true,
        };
        if !fine {
            out.push(format!("{at}: {s:?} is not a {format}"));
        }
    }
    if let Some(items) = schema.get("items") {
        for (i, item) in v.as_array().into_iter().flatten().enumerate() {
            check(spec, items, item, &format!("{at}[{i}]"), out);
        }
    }
    if let Some(obj) = v.as_object() {
        for r in schema["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap();
            if !obj.contains_key(r) {
                out.push(format!("{at}: required {r} missing"));
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, s) in props {
                if let Some(field) = obj.get(k) {
                    check(spec, s, field, &format!("{at}.{k}"), out);
                }
            }
        }
    }
}
