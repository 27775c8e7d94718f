//! What every route handler shares. Beneath the routes: routes import it,
//! `app` builds it and composes the routes; it imports neither.

use std::sync::Arc;

use poem_openapi::Tags;
use tokio_util::sync::CancellationToken;

use crate::{
    ai::AiClient,
    auth::Auth,
    catalog::Catalog,
    config::Config,
    immich::{import::Importer, ImmichClient},
    media::gate::Gate,
    storage::Store,
    worker::Worker,
};

#[derive(Tags)]
pub enum ApiTags {
    /// Health, version and storage facts
    Service,
    /// Uploads, originals and depth maps
    Media,
    /// The processing queue and its worker
    Queue,
    /// The AI service, as the worker sees it
    Ai,
    /// Live events
    Events,
    /// Optional token authentication
    Auth,
    /// Operator actions: backups
    Admin,
    /// Browsing and importing from Immich
    Immich,
    /// The VR app's 3D assets: depth maps and Gaussian splats per model
    Assets,
    /// The VR app's settings and model catalogue
    Settings,
    /// Following the Immich library: how far it is ready for 3D
    Library,
}

impl AppState {
    /// The Immich client that acts for `caller`: a user's own key (what
    /// Immich lets them see, nothing more); for operators who are not
    /// Immich users (the token, `AUTH=off`) the service's `IMMICH_API_KEY`.
    pub fn immich_for(
        &self,
        caller: &crate::auth::Caller,
    ) -> Result<ImmichClient, crate::immich::ImmichError> {
        match caller.user() {
            Some(u) => self.auth.client_for(u),
            None => self.immich.clone(),
        }
        .ok_or(crate::immich::ImmichError::NotConfigured)
    }

    /// Who `caller` is as a viewer of stored items (`access::sharing`).
    pub async fn viewer(
        &self,
        caller: &crate::auth::Caller,
    ) -> Result<crate::access::sharing::Viewer, crate::immich::ImmichError> {
        self.sharing.viewer(&self.auth, caller).await
    }
}

pub struct AppState {
    pub config: Config,
    /// The database itself: health, facts and backups.
    pub store: Store,
    /// Stored media and their queue entries: every read and write.
    pub catalog: Catalog,
    pub ai: AiClient,
    pub worker: Worker,
    pub auth: Arc<Auth>,
    /// Who may ask what, for every entry point.
    pub access: Arc<crate::access::Policy>,
    /// What each signed-in person may see, as Immich says.
    pub sharing: Arc<crate::access::sharing::Sharing>,
    /// Set when IMMICH_URL and IMMICH_API_KEY are.
    pub immich: Option<ImmichClient>,
    /// The model catalogue and what the AI service holds.
    pub models: Arc<crate::settings::manager::ModelManager>,
    pub importer: Arc<Importer>,
    /// Follows the Immich library (new photos get depth maps), and keeps
    /// its figures and the disk budget.
    pub follower: Arc<crate::follow::Follower>,
    /// Upload slots (`UPLOAD_CONCURRENCY`) and the line waiting for them.
    pub uploads: Gate,
    /// Cancelled when the process shuts down; ends event streams and the worker.
    pub shutdown: CancellationToken,
}
