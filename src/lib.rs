//! ImmichVR backend: uploads and Immich imports are queued by priority,
//! turned into depth maps by the built-in engine or an AI service, stored
//! and served.
#![forbid(unsafe_code)]

pub mod access;
pub mod admin;
pub mod ai;
pub mod app;
pub mod assets;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod echo;
pub mod engine;
pub mod events;
pub mod follow;
pub mod http;
pub mod immich;
pub mod live;
pub mod media;
pub mod metrics;
pub mod queue;
pub mod schema;
pub mod settings;
pub mod state;
pub mod storage;
pub mod tasks;
pub mod timestamp;
pub mod tls;
pub mod worker;

pub use app::serve;
pub use config::Config;
