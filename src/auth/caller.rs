//! Who is asking: the mode that decides who may, the person signed in,
//! and the caller a request (or a socket) carries.

use std::sync::Arc;

use super::sessions::{Hash, UserRow};
use crate::config::Secret;

/// How the service decides who may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `AUTH=off`: everyone is let in (the Host guard still applies).
    Off,
    /// No `IMMICH_URL` and no `AUTH_TOKEN`: only this machine is let in.
    Loopback,
    /// `AUTH_TOKEN` without `IMMICH_URL`: the token, or a session made with it.
    Token,
    /// `IMMICH_URL`: a sign-in with Immich, or the token.
    Immich,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Loopback => "loopback",
            Mode::Token => "token",
            Mode::Immich => "immich",
        }
    }
}

/// A person signed in with their Immich account.
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub is_admin: bool,
    pub(super) key: Secret,
    pub(super) key_id: String,
    pub(super) key_made_here: bool,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("is_admin", &self.is_admin)
            .finish_non_exhaustive()
    }
}

impl User {
    /// A user with no key, for unit tests of what depends on who asks.
    pub fn for_tests(id: &str, is_admin: bool) -> Self {
        User {
            id: id.into(),
            name: id.into(),
            email: format!("{id}@example.org"),
            is_admin,
            key: Secret::default(),
            key_id: String::new(),
            key_made_here: false,
        }
    }

    pub(super) fn from_row(r: UserRow) -> Self {
        User {
            id: r.id,
            name: r.name,
            email: r.email,
            is_admin: r.is_admin,
            key: r.key.parse().unwrap_or_default(),
            key_id: r.key_id,
            key_made_here: r.key_made_here,
        }
    }

    pub(super) fn row(&self) -> UserRow {
        UserRow {
            id: self.id.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            is_admin: self.is_admin,
            key: self.key.expose().to_string(),
            key_id: self.key_id.clone(),
            key_made_here: self.key_made_here,
        }
    }
}

/// Who a caller is.
#[derive(Debug, Clone)]
pub enum Who {
    /// Nobody in particular, let in by the mode (`AUTH=off`, or this
    /// machine in loopback mode): an operator, as before sign-in existed.
    Anyone,
    /// The `AUTH_TOKEN` (as a bearer, or the session it made).
    Token,
    /// An Immich user.
    User(Arc<User>),
}

/// Who is asking, and through which session (if any).
#[derive(Debug, Clone)]
pub struct Caller {
    pub who: Who,
    pub session: Option<Hash>,
}

impl Caller {
    pub fn anyone() -> Self {
        Caller {
            who: Who::Anyone,
            session: None,
        }
    }

    pub fn token() -> Self {
        Caller {
            who: Who::Token,
            session: None,
        }
    }

    /// Operators run the service: the token, Immich admins, and anyone
    /// the mode lets in.
    pub fn is_operator(&self) -> bool {
        match &self.who {
            Who::Anyone | Who::Token => true,
            Who::User(u) => u.is_admin,
        }
    }

    pub fn user(&self) -> Option<&Arc<User>> {
        match &self.who {
            Who::User(u) => Some(u),
            Who::Anyone | Who::Token => None,
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        self.user().map(|u| u.id.as_str())
    }

    pub fn role(&self) -> &'static str {
        if self.is_operator() {
            "operator"
        } else {
            "user"
        }
    }
}
