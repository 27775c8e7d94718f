//! What the app sends and what it is sent, checked by hand: a payload
//! that is missing, of the wrong type or out of range is an error message
//! to that socket, never a panic (upstream's backend exited on a
//! payload-less `model:load`).

use serde::Serialize;
use serde_json::Value;

use crate::assets::Kind;

/// `model:generate {id, type, modelKey}`.
pub struct Generate {
    pub id: String,
    pub kind: Kind,
    pub model_key: String,
}

/// `model:load {modelKey, trigger, options: {device}}`.
pub struct Load {
    pub model_key: String,
    pub device: Option<&'static str>,
}

fn text<'a>(v: &'a Value, key: &str, max: usize) -> Result<&'a str, String> {
    match v.get(key) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= max => Ok(s),
        Some(Value::String(_)) => Err(format!("`{key}` must be 1 to {max} characters")),
        Some(_) => Err(format!("`{key}` must be a string")),
        None => Err(format!("`{key}` is missing")),
    }
}

fn object(v: Option<Value>, event: &str) -> Result<Value, String> {
    match v {
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(format!("{event} takes an object")),
        None => Err(format!("{event} needs a payload")),
    }
}

pub fn generate(v: Option<Value>) -> Result<Generate, String> {
    let v = object(v, "model:generate")?;
    let id = text(&v, "id", 64)?.to_string();
    let kind = match text(&v, "type", 16)? {
        "depth" => Kind::Depth,
        "splat" => Kind::Splat,
        other => {
            let other = crate::echo::clip(other);
            return Err(format!("`type` must be depth or splat, not {other:?}"));
        }
    };
    let model_key = match (kind, v.get("modelKey")) {
        (Kind::Splat, _) => crate::assets::SPLAT_MODEL.to_string(),
        (Kind::Depth, None | Some(Value::Null)) => "small".to_string(),
        (Kind::Depth, Some(_)) => text(&v, "modelKey", 32)?.to_string(),
    };
    Ok(Generate {
        id,
        kind,
        model_key,
    })
}

pub fn load(v: Option<Value>) -> Result<Load, String> {
    let v = object(v, "model:load")?;
    let model_key = text(&v, "modelKey", 32)?.to_string();
    let device = match v.get("options").and_then(|o| o.get("device")) {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(match d.as_str() {
            "gpu" => "gpu",
            "cpu" => "cpu",
            "auto" => "auto",
            other => {
                let other = crate::echo::clip(other);
                return Err(format!(
                    "`options.device` must be gpu, cpu or auto, not {other:?}"
                ));
            }
        }),
        Some(_) => return Err("`options.device` must be a string".into()),
    };
    Ok(Load { model_key, device })
}

pub fn download(v: Option<Value>) -> Result<String, String> {
    let v = object(v, "model:download")?;
    Ok(text(&v, "modelKey", 32)?.to_string())
}

/// `model:error`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorMsg {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_key: Option<String>,
    pub message: String,
}

/// One running job in `queue:update` (no socket ids: other clients'
/// connections are nobody's business).
#[derive(Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub model_key: String,
    pub queue_id: String,
    /// When it started (ms since the epoch).
    pub timestamp: i64,
}

/// `queue:update`: waiting jobs, whether one runs, the oldest running one
/// (`current`, as the app reads it) and all of them (`running`).
#[derive(Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueueUpdate {
    pub length: u64,
    pub is_processing: bool,
    pub current: Option<Job>,
    pub running: Vec<Job>,
    /// When this was sent (ms since the epoch).
    pub sent_at: i64,
    /// How far the followed Immich library is ready for 3D (`null` when
    /// it is not followed); additive to the app's contract.
    pub library: Option<crate::follow::Figures>,
    /// Why background work waits now (`null` while it runs; the app's own
    /// requests are served either way).
    pub background_paused_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_are_checked_not_trusted() {
        assert!(generate(None).is_err());
        assert!(generate(Some(json!("x"))).is_err());
        assert!(generate(Some(json!({"id": 3, "type": "depth"}))).is_err());
        assert!(generate(Some(json!({"id": "a", "type": "mesh"}))).is_err());
        assert!(generate(Some(json!({"id": "x".repeat(65), "type": "depth"}))).is_err());
        let g = generate(Some(
            json!({"id": "a", "type": "splat", "modelKey": "ksplat"}),
        ))
        .unwrap();
        assert_eq!(g.model_key, "sharp", "splats are always SHARP");
        let g = generate(Some(json!({"id": "a", "type": "depth"}))).unwrap();
        assert_eq!(g.model_key, "small");
        assert!(load(None).is_err());
        assert!(load(Some(json!({"modelKey": "base", "options": {"device": 1}}))).is_err());
        assert_eq!(
            load(Some(
                json!({"modelKey": "base", "options": {"device": "gpu"}})
            ))
            .unwrap()
            .device,
            Some("gpu")
        );
        assert!(download(Some(json!([]))).is_err());
    }
}
