//! A JSON value checked against a schema of Immich's OpenAPI spec
//! (`tests/fixtures/immich/openapi-3.0.3.json`): the subset that spec uses
//! (`$ref`, `allOf`, `nullable`, `enum`, `type`, `format` uuid and
//! date-time, `required`, `properties`, `items`, integer bounds). Fields
//! the schema does not name are allowed, as Immich's clients allow them.

use serde_json::Value;

/// Immich's own spec, kept in the repository.
pub fn immich_spec() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/immich/openapi-3.0.3.json"
    ))
    .expect("the Immich spec in tests/fixtures/immich");
    serde_json::from_str(&text).unwrap()
}

/// Where `v` departs from the schema named `name`, one line per place.
pub fn mismatches(spec: &Value, name: &str, v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let schema = &spec["components"]["schemas"][name];
    assert!(schema.is_object(), "no schema {name} in the spec");
    check(spec, schema, v, name, &mut out);
    out
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(spec, &spec["components"]["schemas"][name])
        }
        None => schema,
    }
}

fn check(spec: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    if v.is_null() {
        if schema["nullable"] != true {
            out.push(format!("{at}: null, but not nullable"));
        }
        return;
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            check(spec, s, v, at, out);
        }
        return;
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(v) {
            out.push(format!("{at}: {v} is not one of {options:?}"));
        }
        return;
    }
    let ty = schema["type"]
        .as_str()
        .or_else(|| schema["properties"].is_object().then_some("object"));
    let ok = match ty {
        Some("string") => v.as_str().is_some_and(|s| format_ok(schema, s)),
        Some("integer") => {
            v.as_i64().is_some_and(|n| {
                schema["minimum"].as_f64().is_none_or(|m| n as f64 >= m)
                    && schema["maximum"].as_f64().is_none_or(|m| n as f64 <= m)
            }) || v.as_u64().is_some()
        }
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        Some("array") => match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    check(spec, &schema["items"], item, &format!("{at}[{i}]"), out);
                }
                true
            }
            None => false,
        },
        Some("object") => match v.as_object() {
            Some(obj) => {
                for r in schema["required"].as_array().into_iter().flatten() {
                    let r = r.as_str().unwrap();
                    if !obj.contains_key(r) {
                        out.push(format!("{at}.{r}: required, missing"));
                    }
                }
                if let Some(props) = schema["properties"].as_object() {
                    for (k, s) in props {
                        if let Some(field) = obj.get(k) {
                            check(spec, s, field, &format!("{at}.{k}"), out);
                        }
                    }
                }
                true
            }
            None => false,
        },
        _ => true,
    };
    if !ok {
        out.push(format!("{at}: {v} is not a {}", ty.unwrap_or("?")));
    }
}

fn format_ok(schema: &Value, s: &str) -> bool {
    match schema["format"].as_str() {
        Some("uuid") => uuid::Uuid::parse_str(s).is_ok(),
        Some("date-time") => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        _ => true,
    }
}
