//! What is served to people and tools rather than API clients: the
//! service routes, the Swagger UI and the admin page.

pub mod access_log;
pub mod admin;
pub mod admin_api;
pub mod allow;
pub mod body;
pub mod docs;
pub mod service;
