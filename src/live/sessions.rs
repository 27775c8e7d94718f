//! Sockets live no longer than the sign-in they were opened with: a
//! socket whose session was signed out or expired is disconnected within
//! a quarter of a second (the app then shows its sign-in again on the next
//! request), and one that reconnects its namespace on the same transport
//! is refused at once.

use std::{sync::Arc, time::Duration};

use socketioxide::{extract::SocketRef, SocketIo};

use crate::{auth::Caller, state::AppState, tasks::spawn_named};

/// How often open sockets are held against their sessions.
const SWEEP: Duration = Duration::from_millis(250);

/// The caller a socket's handshake was checked as.
pub fn caller(s: &SocketRef) -> Option<&Caller> {
    s.req_parts().extensions.get::<Caller>()
}

/// Whether the socket's sign-in still holds.
pub fn still_valid(state: &AppState, s: &SocketRef) -> bool {
    caller(s).is_some_and(|c| state.auth.still_valid(c))
}

pub fn spawn(io: SocketIo, state: Arc<AppState>) {
    spawn_named("live-sessions", async move {
        let mut tick = tokio::time::interval(SWEEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = state.shutdown.cancelled() => return,
            }
            for s in io.sockets() {
                if !still_valid(&state, &s) {
                    tracing::info!(socket = %s.id, "closing a socket: its sign-in ended");
                    let _ = s.disconnect();
                }
            }
        }
    });
}
