//! The current AI service's model routes (`docs/ai-service.md`, "current
//! AI service"): its model list, load/unload/download/delete, and SHARP's
//! download. An older service without them answers 404 here, which is told
//! apart from a refusal (`Catalogue::Missing`).

use std::time::Duration;

use serde_json::Value;

use super::{builtin::Action, error::classify, error_message, AiClient, AiError};
use crate::engine::BUILTIN;

/// What a catalogue call came back with.
#[derive(Debug)]
pub enum Catalogue {
    Answer(Value),
    /// 404 (or Flask's HTML 404): a service without model routes.
    Missing,
}

impl AiClient {
    async fn call(
        &self,
        method: reqwest::Method,
        url: String,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<Catalogue, AiError> {
        let mut req = self.http.request(method, url).timeout(timeout);
        if let Some(b) = body {
            // Flask answers 415 without the JSON content type.
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(classify)?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(Catalogue::Missing);
        }
        if !(200..300).contains(&status) {
            let message = error_message(resp).await;
            return Err(AiError::Rejected { status, message });
        }
        resp.json()
            .await
            .map(Catalogue::Answer)
            .map_err(|e| AiError::BadAnswer(e.to_string()))
    }

    /// `GET /api/models`: `{models, current_model, current_device, default_model}`.
    pub async fn models(&self, base: &str) -> Result<Catalogue, AiError> {
        if base == BUILTIN {
            return self.builtin_catalogue(Action::List).await;
        }
        let url = format!("{base}/api/models");
        self.call(reqwest::Method::GET, url, None, Duration::from_secs(10))
            .await
    }

    /// `POST /api/models/<key>/load` with `{device}` (`auto`, `cpu`, `gpu`).
    pub async fn load(&self, base: &str, key: &str, device: &str) -> Result<Catalogue, AiError> {
        if base == BUILTIN {
            // The CPU, whatever the device asked.
            return self.builtin_catalogue(Action::Load(key)).await;
        }
        let url = format!("{base}/api/models/{key}/load");
        let body = serde_json::json!({ "device": device });
        // Loading reads the weights (and may fetch them): minutes at worst.
        self.call(
            reqwest::Method::POST,
            url,
            Some(body),
            self.download_timeout,
        )
        .await
    }

    pub async fn unload(&self, base: &str, key: &str) -> Result<Catalogue, AiError> {
        if base == BUILTIN {
            return self.builtin_catalogue(Action::Unload(key)).await;
        }
        let url = format!("{base}/api/models/{key}/unload");
        self.call(reqwest::Method::POST, url, None, Duration::from_secs(60))
            .await
    }

    /// Depth models through `/api/models/<key>/download`, SHARP through
    /// `/api/splat/download`; large models take minutes.
    pub async fn download(&self, base: &str, key: &str, splat: bool) -> Result<Catalogue, AiError> {
        if base == BUILTIN {
            return self.builtin_catalogue(Action::Download(key, splat)).await;
        }
        let url = if splat {
            format!("{base}/api/splat/download")
        } else {
            format!("{base}/api/models/{key}/download")
        };
        self.call(reqwest::Method::POST, url, None, self.download_timeout)
            .await
    }

    /// `DELETE /api/models/<key>`: unloads a depth model; the service
    /// deletes nothing on disk, and refuses `sharp` with a 400.
    pub async fn delete(&self, base: &str, key: &str) -> Result<Catalogue, AiError> {
        if base == BUILTIN {
            return self.builtin_catalogue(Action::Delete(key)).await;
        }
        let url = format!("{base}/api/models/{key}");
        self.call(reqwest::Method::DELETE, url, None, Duration::from_secs(60))
            .await
    }
}
