//! The HTTP side below the routes: our accept loop with its connection
//! limits and deadlines, and the checks every request passes.

pub mod conn;
pub mod guard;
pub mod server;
