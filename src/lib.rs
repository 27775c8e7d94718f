//! ImmichVR backend: uploads and Immich imports are queued by priority,
//! turned into depth maps by the AI service, stored and served.
#![forbid(unsafe_code)]

pub mod ai;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod events;
pub mod http;
pub mod immich;
pub mod media;
pub mod metrics;
pub mod queue;
pub mod schema;
pub mod storage;
pub mod tls;
pub mod web;
pub mod worker;

pub use app::serve;
pub use config::Config;
