//! Every timestamp this service shows, in one format: RFC 3339, UTC, `Z`,
//! milliseconds (`2026-11-29T20:01:03.591Z`).
//!
//! poem-openapi would write chrono's default (nine digits and `+00:00`),
//! which zod's datetime check, Python 3.10's `fromisoformat` and older
//! JavaScript engines refuse. Rows keep full precision on disk (serde is
//! transparent); only what is shown is rounded down to the millisecond,
//! which keeps the order of any two shown times.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(Utc::now())
    }

    /// Seconds since the Unix epoch (what session expiries are stored as).
    pub fn from_unix(secs: u64) -> Self {
        Timestamp(DateTime::from_timestamp(secs as i64, 0).unwrap_or_default())
    }

    /// The one format every answer and event uses.
    pub fn render(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Timestamp(t)
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

impl std::ops::Deref for Timestamp {
    type Target = DateTime<Utc>;
    fn deref(&self) -> &DateTime<Utc> {
        &self.0
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl Type for Timestamp {
    crate::http::own_raw_value!();

    fn name() -> Cow<'static, str> {
        "string_date-time".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            description: Some("RFC 3339, UTC, `Z`, milliseconds"),
            example: Some("2026-11-29T20:01:03.591Z".into()),
            ..MetaSchema::new_with_format("string", "date-time")
        }))
    }
}

impl ToJSON for Timestamp {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.render()))
    }
}

impl ParseFromJSON for Timestamp {
    fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
        match value {
            Some(serde_json::Value::String(s)) => DateTime::parse_from_rfc3339(&s)
                .map(|t| Timestamp(t.with_timezone(&Utc)))
                .map_err(ParseError::custom),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_utc_with_z_and_milliseconds() {
        let t: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-29T21:01:03.591450760+01:00")
            .unwrap()
            .into();
        assert_eq!(Timestamp(t).render(), "2026-11-29T20:01:03.591Z");
        let whole: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .into();
        assert_eq!(Timestamp(whole).render(), "2026-01-02T03:04:05.000Z");
    }

    #[test]
    fn storage_keeps_full_precision() {
        let t = Timestamp::now();
        let stored = serde_json::to_string(&t).unwrap();
        let back: Timestamp = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, t);
    }
}
