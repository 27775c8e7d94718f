//! What can go wrong talking to the AI service, and how an answer that
//! is not a depth map becomes one plain line for `last_error`.

#[derive(Debug, thiserror::Error)]
pub enum AiError {
    /// Connection refused, DNS failure: the item is not to blame.
    #[error("AI service unreachable: {0}")]
    Unreachable(String),
    /// 503: the model is still loading. Not the item's fault either.
    #[error("AI service not ready (503): {0}")]
    NotReady(String),
    #[error("AI service answered {status}: {message}")]
    Rejected { status: u16, message: String },
    /// 404 or 405 from a work route: that service has no such endpoint
    /// (the current upstream service does not register its video routes).
    /// Retrying cannot help.
    #[error("the AI service at {base} has no {what} endpoint ({status} at {path})")]
    NoEndpoint {
        base: String,
        what: &'static str,
        status: u16,
        path: String,
    },
    #[error("AI service answer unusable: {0}")]
    BadAnswer(String),
    #[error("AI service answer larger than {0} bytes (AI_MAX_RESPONSE_BYTES)")]
    TooLarge(u64),
    #[error("AI service did not answer within {0} s (AI_TIMEOUT_SECS)")]
    Timeout(u64),
    #[error("cannot read the original or write the depth map: {0}")]
    Disk(#[from] std::io::Error),
    /// The built-in engine could not do it (the photo, the model asked for).
    #[error("built-in depth engine: {0}")]
    Engine(String),
}

impl AiError {
    /// A short name for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            AiError::Unreachable(_) => "unreachable",
            AiError::NotReady(_) => "not_ready",
            AiError::Rejected { .. } => "rejected",
            AiError::NoEndpoint { .. } => "no_endpoint",
            AiError::BadAnswer(_) => "bad_answer",
            AiError::TooLarge(_) => "too_large",
            AiError::Timeout(_) => "timeout",
            AiError::Disk(_) => "disk",
            AiError::Engine(_) => "engine",
        }
    }

    /// Whether this failure uses up one of the item's attempts.
    pub fn counts_attempt(&self) -> bool {
        match self {
            AiError::Unreachable(_) | AiError::NotReady(_) => false,
            AiError::Rejected { .. }
            | AiError::NoEndpoint { .. }
            | AiError::BadAnswer(_)
            | AiError::TooLarge(_)
            | AiError::Timeout(_)
            | AiError::Disk(_)
            | AiError::Engine(_) => true,
        }
    }
}

impl AiError {
    /// Whether another attempt could go differently.
    pub fn retryable(&self) -> bool {
        !matches!(self, AiError::NoEndpoint { .. })
    }
}

/// Connection-level failures mean "unreachable"; the rest blame the answer.
pub(super) fn classify(e: reqwest::Error) -> AiError {
    if e.is_connect() {
        AiError::Unreachable(e.without_url().to_string())
    } else if e.is_timeout() {
        AiError::Timeout(0)
    } else {
        AiError::BadAnswer(e.without_url().to_string())
    }
}

/// What a work route is for, in the words of an error message.
pub(super) fn field_kind(field: &str, path: &str) -> &'static str {
    if field == "video" {
        "video"
    } else if path.contains("splat") {
        "splat"
    } else {
        "photo"
    }
}

/// The service's JSON `message` (or `error`); otherwise a one-line summary,
/// never markup (it ends up in `last_error`, shown in lists and pages).
pub(super) async fn error_message(resp: reqwest::Response) -> String {
    let html = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/html"));
    let text = resp.text().await.unwrap_or_default();
    summarize(&text, html)
}

pub(crate) fn summarize(text: &str, html: bool) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        return v
            .get("message")
            .or_else(|| v.get("error"))
            .and_then(|m| m.as_str())
            .unwrap_or("(no message)")
            .to_string();
    }
    let trimmed = text.trim_start();
    if html || trimmed.starts_with('<') {
        let title = trimmed
            .split_once("<title>")
            .and_then(|(_, rest)| rest.split_once("</title>"))
            .map(|(t, _)| t.trim())
            .filter(|t| !t.is_empty() && !t.contains('<'));
        return match title {
            Some(t) => format!("an HTML page: {}", t.chars().take(100).collect::<String>()),
            None => "an HTML page".to_string(),
        };
    }
    let line = trimmed.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "(empty answer)".to_string()
    } else {
        line.chars().filter(|c| !c.is_control()).take(200).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::summarize;

    #[test]
    fn error_bodies_become_one_plain_line() {
        let flask =
            "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>";
        assert_eq!(summarize(flask, true), "an HTML page: 404 Not Found");
        assert_eq!(
            summarize("<html><body>x</body></html>", false),
            "an HTML page"
        );
        assert_eq!(
            summarize(
                r#"{"error":"Processing failed","message":"cannot identify image file"}"#,
                false
            ),
            "cannot identify image file"
        );
        assert_eq!(summarize("Bad gateway\nmore\n", false), "Bad gateway");
        assert_eq!(summarize("", false), "(empty answer)");
    }
}
