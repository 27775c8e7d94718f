//! The Immich calls behind "sign in with Immich": the password login and
//! the API key made with its session, that session's logout, who a key
//! belongs to, and what a user's key may see beyond their own assets
//! (partners who share with them, albums shared with them). Shapes from
//! Immich's spec (`tests/fixtures/immich/openapi-3.0.3.json`).

use serde::{Deserialize, Serialize};

use super::{ImmichClient, ImmichError};

/// The permissions of the key this service makes for a user: what the
/// routes the app and the admin page use need (`x-immich-permission` of
/// each Immich operation we call with a user's key), and `apiKey.delete`
/// so that signing out of the last session can delete the key.
pub const KEY_PERMISSIONS: &[&str] = &[
    "asset.read",
    "asset.view",
    "asset.download",
    "asset.statistics",
    "album.read",
    "partner.read",
    "user.read",
    "apiKey.delete",
];

/// `LoginResponseDto`, the fields used.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Login {
    pub access_token: String,
    pub user_id: String,
    pub user_email: String,
    pub name: String,
    pub is_admin: bool,
}

/// `UserAdminResponseDto` (`GET /users/me`), the fields used.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub id: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub is_admin: bool,
}

/// `ApiKeyResponseDto`, the fields used.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyInfo {
    pub id: String,
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewKeyAnswer {
    secret: String,
    api_key: KeyInfo,
}

/// A key just made: its secret (shown once by Immich) and its id.
pub struct NewKey {
    pub secret: crate::config::Secret,
    pub id: String,
}

#[derive(Serialize)]
struct Credentials<'a> {
    email: &'a str,
    password: &'a str,
}

#[derive(Serialize)]
struct KeyRequest<'a> {
    name: &'a str,
    permissions: &'a [&'a str],
}

#[derive(Deserialize)]
struct Partner {
    id: String,
}

/// `AlbumResponseDto`, the fields used.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Album {
    pub id: String,
    #[serde(default)]
    pub shared: bool,
    #[serde(default)]
    pub assets: Vec<AlbumAsset>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AlbumAsset {
    pub id: String,
}

/// The permissions a key lacks of what this service needs (`all` covers
/// every one).
pub fn missing_permissions(granted: &[String]) -> Vec<&'static str> {
    if granted.iter().any(|p| p == "all") {
        return Vec::new();
    }
    KEY_PERMISSIONS
        .iter()
        .copied()
        // A key the user pasted need not let us delete it.
        .filter(|p| *p != "apiKey.delete")
        .filter(|p| !granted.iter().any(|g| g == p))
        .collect()
}

impl ImmichClient {
    /// `POST /auth/login`: a session of Immich's own (used for one minute:
    /// to make the user's key, then logged out).
    pub async fn login(&self, email: &str, password: &str) -> Result<Login, ImmichError> {
        let req = self
            .json_client()
            .post(self.url("/auth/login"))
            .json(&Credentials { email, password });
        Self::read(Self::check(req.send().await).await?).await
    }

    /// `POST /api-keys` with a login's access token.
    pub async fn create_key(
        &self,
        access_token: &str,
        name: &str,
        permissions: &[&str],
    ) -> Result<NewKey, ImmichError> {
        let req = self
            .json_client()
            .post(self.url("/api-keys"))
            .bearer_auth(access_token)
            .json(&KeyRequest { name, permissions });
        let a: NewKeyAnswer = Self::read(Self::check(req.send().await).await?).await?;
        Ok(NewKey {
            secret: a.secret.parse().unwrap_or_default(),
            id: a.api_key.id,
        })
    }

    /// `POST /auth/logout`: ends the login's session.
    pub async fn logout(&self, access_token: &str) -> Result<(), ImmichError> {
        let req = self
            .json_client()
            .post(self.url("/auth/logout"))
            .bearer_auth(access_token);
        Self::check(req.send().await).await.map(|_| ())
    }

    /// `GET /users/me`: whose key this is.
    pub async fn me(&self) -> Result<Me, ImmichError> {
        self.get("/users/me").await
    }

    /// `GET /api-keys/me`: this key's id and permissions.
    pub async fn my_key(&self) -> Result<KeyInfo, ImmichError> {
        self.get("/api-keys/me").await
    }

    /// `DELETE /api-keys/{id}`.
    pub async fn delete_key(&self, id: &str) -> Result<(), ImmichError> {
        let req = self
            .json_client()
            .delete(self.url(&format!("/api-keys/{}", super::client::enc(id))))
            .header("x-api-key", self.key().expose());
        Self::check(req.send().await).await.map(|_| ())
    }

    /// The users whose libraries this key's user may see (they share with
    /// them as partners).
    pub async fn partners_sharing_with_me(&self) -> Result<Vec<String>, ImmichError> {
        let p: Vec<Partner> = self.get("/partners?direction=shared-with").await?;
        Ok(p.into_iter().map(|p| p.id).collect())
    }

    /// Every album this key's user owns or was shared (without assets).
    pub async fn albums(&self) -> Result<Vec<Album>, ImmichError> {
        self.get("/albums").await
    }

    /// One album with its assets.
    pub async fn album(&self, id: &str) -> Result<Album, ImmichError> {
        self.get(&format!("/albums/{}", super::client::enc(id)))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_permissions_are_named() {
        let all = vec!["all".to_string()];
        assert!(missing_permissions(&all).is_empty());
        let some: Vec<String> = ["asset.read", "asset.view"].map(String::from).to_vec();
        let missing = missing_permissions(&some);
        assert!(missing.contains(&"asset.download"));
        assert!(!missing.contains(&"asset.read"));
        assert!(!missing.contains(&"apiKey.delete"));
    }
}
