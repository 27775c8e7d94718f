//! The published OpenAPI document: poem-openapi's, finished in one place.
//!
//! poem-openapi writes a few things that generators trip over, and cannot
//! say a few things at all; each step below names what it fixes. All the
//! rest (paths, parameters, schemas) comes from the route code as it is.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::codes::ErrorCode;

/// What an operation's handler can answer besides the errors every
/// operation can meet on the way in (see [`common_codes`]). Each domain
/// lists its operations next to its routes, as `ERRORS`.
pub struct OpErrors {
    pub op: &'static str,
    pub storage: Storage,
    pub codes: &'static [ErrorCode],
}

/// How an operation touches the database, which decides its storage errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    None,
    Reads,
    Writes,
}

pub const fn op(op: &'static str, storage: Storage, codes: &'static [ErrorCode]) -> OpErrors {
    OpErrors { op, storage, codes }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The document progenitor takes: no operation with a
    /// `multipart/form-data` body (it refuses the whole spec over one) and
    /// one error body per operation (it asserts that).
    pub without_multipart: bool,
}

/// The finished document.
pub fn finish(raw_json: &str, tables: &[&[OpErrors]], options: Options) -> Value {
    let mut doc: Value = serde_json::from_str(raw_json).expect("poem-openapi writes valid JSON");
    unique_tags(&mut doc);
    plain_refs(&mut doc);
    error_responses(&mut doc, tables);
    event_stream(&mut doc);
    vr_app_bodies(&mut doc);
    if options.without_multipart {
        drop_multipart(&mut doc);
        one_error_body(&mut doc);
    }
    doc
}

pub fn to_yaml(doc: &Value) -> String {
    serde_yaml::to_string(doc).expect("a JSON value always has a YAML form")
}

fn operations(doc: &mut Value) -> impl Iterator<Item = (String, &mut Map<String, Value>)> {
    doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.iter_mut())
        .flat_map(|(path, item)| {
            let path = path.clone();
            item.as_object_mut()
                .into_iter()
                .flat_map(|m| m.iter_mut())
                .filter_map(move |(method, op)| {
                    Some((
                        format!("{} {path}", method.to_uppercase()),
                        op.as_object_mut()?,
                    ))
                })
        })
}

/// An API-level tag on a route that also names it gets written twice, and
/// openapi-generator then emits every such method twice (`get_db_info_0`).
fn unique_tags(doc: &mut Value) {
    for (_, op) in operations(doc) {
        if let Some(Value::Array(tags)) = op.get_mut("tags") {
            let mut seen = Vec::new();
            tags.retain(|t| {
                let new = !seen.contains(t);
                seen.push(t.clone());
                new
            });
        }
    }
}

/// A documented or nullable field of a named type comes out as
/// `allOf: [{$ref}, {description}]` or `allOf: [{$ref}, {nullable}]`.
/// openapi-python-client cannot take `allOf` of an enum ("Cannot take allOf
/// a non-object") and drops the model and every operation using it. A plain
/// `$ref` says the same (the type carries its own description), and a
/// nullable one becomes `nullable` + `anyOf: [{$ref}]`, which every
/// generator reads as "this type or null".
fn plain_refs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(replacement) = plain_ref(map) {
                *map = replacement;
            }
            map.values_mut().for_each(plain_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(plain_refs),
        _ => {}
    }
}

fn plain_ref(map: &Map<String, Value>) -> Option<Map<String, Value>> {
    const ANNOTATIONS: &[&str] = &["description", "nullable", "title", "example", "default"];
    let parts = map.get("allOf")?.as_array()?;
    let mut reference = None;
    let mut nullable = map.get("nullable") == Some(&Value::Bool(true));
    for part in parts {
        let part = part.as_object()?;
        if let Some(r) = part.get("$ref") {
            if reference.replace(r.clone()).is_some() || part.len() != 1 {
                return None;
            }
        } else if part.keys().all(|k| ANNOTATIONS.contains(&k.as_str())) {
            nullable |= part.get("nullable") == Some(&Value::Bool(true));
        } else {
            return None;
        }
    }
    if map
        .keys()
        .any(|k| k != "allOf" && !ANNOTATIONS.contains(&k.as_str()))
    {
        return None;
    }
    let reference = reference?;
    let out = if nullable {
        json!({"nullable": true, "anyOf": [{"$ref": reference}]})
    } else {
        json!({"$ref": reference})
    };
    out.as_object().cloned()
}

/// Errors every operation can meet before its handler runs.
fn common_codes(op: &Map<String, Value>, storage: Storage) -> Vec<ErrorCode> {
    let mut codes = vec![
        ErrorCode::Forbidden,
        ErrorCode::HostNotAllowed,
        ErrorCode::OriginNotAllowed,
        ErrorCode::HeadersTooLarge,
        ErrorCode::InternalError,
        ErrorCode::TooManyConnections,
    ];
    if op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty())
    {
        codes.push(ErrorCode::Unauthorized);
    }
    let has_params = op
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let body = op.get("requestBody");
    if has_params || body.is_some() {
        codes.push(ErrorCode::BadRequest);
    }
    if let Some(body) = body {
        codes.extend([ErrorCode::RequestTimeout, ErrorCode::BodyTooLarge]);
        if body["content"]
            .as_object()
            .is_some_and(|c| c.keys().any(|k| k.starts_with("application/json")))
        {
            codes.push(ErrorCode::InvalidBody);
        }
    }
    match storage {
        Storage::None => {}
        Storage::Reads => codes.extend([ErrorCode::StorageError, ErrorCode::StorageUnavailable]),
        Storage::Writes => codes.extend([
            ErrorCode::StorageError,
            ErrorCode::StorageUnavailable,
            ErrorCode::DiskFull,
        ]),
    }
    codes
}

/// poem-openapi gives every operation every status the error type can
/// have (`getQueueStats` listed 413 and 415). Each operation now lists the
/// statuses it can answer, and under each the codes that come with it.
fn error_responses(doc: &mut Value, tables: &[&[OpErrors]]) {
    let declared: BTreeMap<&str, &OpErrors> = tables
        .iter()
        .flat_map(|t| t.iter())
        .map(|e| (e.op, e))
        .collect();
    for (label, op) in operations(doc) {
        let id = op
            .get("operationId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(entry) = declared.get(id.as_str()) else {
            panic!("{label} ({id}) has no entry in its domain's ERRORS table");
        };
        let mut codes = common_codes(op, entry.storage);
        codes.extend(entry.codes.iter().copied());
        let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
        for code in codes {
            let list = by_status.entry(code.status().as_u16()).or_default();
            if !list.contains(&code) {
                list.push(code);
            }
        }
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        responses.retain(|_, r| !is_error_body(r));
        for (status, codes) in by_status {
            let lines: Vec<String> = codes
                .iter()
                .map(|c| format!("`{}`: {}", c.as_str(), c.title()))
                .collect();
            responses.entry(status.to_string()).or_insert_with(|| {
                json!({
                    "description": lines.join("; "),
                    "content": {"application/json; charset=utf-8": {
                        "schema": {"$ref": "#/components/schemas/ErrorBody"}
                    }},
                })
            });
        }
    }
}

fn is_error_body(response: &Value) -> bool {
    response["content"].as_object().is_some_and(|c| {
        c.values()
            .any(|m| m["schema"]["$ref"] == "#/components/schemas/ErrorBody")
    })
}

/// poem-openapi declares an event stream as `type: array, format:
/// event-stream`, so clients typed each event as `unknown[]` and schema
/// checks of live events failed. Each event is now an `Event` (a `oneOf`
/// on `type`): `schema` is what the `data:` of one event holds, as
/// streaming generators (hey-api) read it, and OpenAPI 3.2's `itemSchema`
/// describes the whole SSE event (`event` name, `data` as JSON text), as
/// schemathesis and other 3.2-aware tools check it.
fn event_stream(doc: &mut Value) {
    let names: Vec<Value> = doc["components"]["schemas"]["Event"]["discriminator"]["mapping"]
        .as_object()
        .map(|m| m.keys().map(|k| Value::String(k.clone())).collect())
        .unwrap_or_default();
    for (_, op) in operations(doc) {
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for response in responses.values_mut() {
            // `get_mut`, not `[]`: indexing would add `content: null`.
            let media = response
                .get_mut("content")
                .and_then(|c| c.get_mut("text/event-stream"));
            if let Some(media) = media {
                *media = json!({
                    "schema": {"$ref": "#/components/schemas/Event"},
                    "itemSchema": {
                        "type": "object",
                        "required": ["event", "data"],
                        "properties": {
                            "event": {"type": "string", "enum": names},
                            "data": {
                                "type": "string",
                                "contentMediaType": "application/json",
                                "contentSchema": {"$ref": "#/components/schemas/Event"},
                            },
                            "id": {"type": "string"},
                            "retry": {"type": "integer"},
                        },
                    },
                });
            }
        }
    }
}

/// progenitor refuses a whole spec with one `multipart/form-data` body;
/// `immichvr openapi --without-multipart` gives Rust users one without
/// (they upload with `uploadMediaRaw`, which takes the bytes as they are).
fn drop_multipart(doc: &mut Value) {
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            if let Some(methods) = item.as_object_mut() {
                methods.retain(|_, op| {
                    op["requestBody"]["content"]
                        .as_object()
                        .is_none_or(|c| !c.keys().any(|k| k.starts_with("multipart/")))
                });
            }
        }
        paths.retain(|_, item| item.as_object().is_some_and(|m| !m.is_empty()));
    }
}

/// `/health` answers 503 with its own body; the errors that every operation
/// can meet use the error body. progenitor wants one error type per
/// operation, so there the operation's own error body stays.
fn one_error_body(doc: &mut Value) {
    for (_, op) in operations(doc) {
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        let is_error = |status: &str| status.starts_with('4') || status.starts_with('5');
        let own = responses
            .iter()
            .any(|(status, r)| is_error(status) && r.get("content").is_some() && !is_error_body(r));
        if own {
            responses.retain(|status, r| !is_error(status) || !is_error_body(r));
        }
    }
}

/// The VR app's bodies take strings its upstream backend checked by hand
/// (400 for an unknown model or format, as the app's backend answered):
/// the code keeps those answers, and the spec says which values work, so
/// a generated client and a fuzzer send only those.
fn vr_app_bodies(doc: &mut Value) {
    let models = serde_json::json!(["small", "base", "large", "sharp"]);
    let schemas = &mut doc["components"]["schemas"];
    for (schema, field, values) in [
        ("ConvertBody", "from", serde_json::json!(["ply"])),
        ("ConvertBody", "to", serde_json::json!(["ksplat"])),
        ("SettingsPatch", "defaultDepthModel", models.clone()),
        ("GenerateBody", "modelKey", models),
    ] {
        if let Some(p) = schemas[schema]["properties"][field].as_object_mut() {
            p.insert("enum".into(), values);
        }
    }
    // No keys at all is a 400 (`no-settings`).
    if let Some(s) = schemas["SettingsPatch"].as_object_mut() {
        s.insert("minProperties".into(), 1.into());
    }
}
