//! What operators and their browsers use: the admin page (files from
//! `web/` compiled in), the service routes (`/health`, `/`, `/api/db/info`)
//! and the operator API (backups).

pub mod api;
pub mod frontend;
pub mod page;
pub mod service;
