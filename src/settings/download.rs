//! Model downloads through the AI service, one per model at a time: a
//! second ask while one runs joins it and gets the same answer (16
//! concurrent asks made 16 downloads whose restores interleaved, and a
//! model stayed `downloading` for good, across restarts).
//!
//! `downloading` is a fact about this process: nothing is stored until
//! the download ends, and then only `downloaded`. A download that fails,
//! or dies with the process, leaves the stored status as it was, which the
//! next sync or download corrects.

use std::sync::Arc;

use tokio::sync::watch;

use super::{
    manager::{ai_error, event, lock, ModelManager},
    ModelRecord, ModelStatus, SettingsError,
};
use crate::{ai::gateway::Catalogue, assets::Kind};

type Outcome = Option<Result<ModelRecord, SettingsError>>;

/// A running download, as those who join it see it.
pub(super) type Joined = watch::Receiver<Outcome>;

/// Takes a download off the in-flight list however its task ends (a
/// panic included), so the model never stays `downloading`.
struct InFlight {
    manager: Arc<ModelManager>,
    key: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.manager.downloads).remove(&self.key);
    }
}

impl ModelManager {
    /// Downloads a model through the AI service (minutes for the large
    /// ones), or joins the download of it already running. The download
    /// carries on if the asker leaves.
    pub async fn download(self: &Arc<Self>, key: &str) -> Result<ModelRecord, SettingsError> {
        let rec = self.record(key).await?;
        let base = self.base()?.to_string();
        let mut joined = {
            let mut running = lock(&self.downloads);
            match running.get(key) {
                Some(j) => j.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    running.insert(key.to_string(), rx.clone());
                    let guard = InFlight {
                        manager: self.clone(),
                        key: key.to_string(),
                    };
                    crate::tasks::spawn_named("model-download", async move {
                        let outcome = guard.manager.fetch(rec, base).await;
                        // Off the list first: whoever asks after this
                        // answer starts a new download.
                        drop(guard);
                        let _ = tx.send(Some(outcome));
                    });
                    rx
                }
            }
        };
        let outcome = joined.wait_for(Option::is_some).await.map(|o| o.clone());
        match outcome {
            Ok(Some(answer)) => answer,
            // The task ended without an answer (it panicked).
            Ok(None) | Err(_) => Err(SettingsError::AiRefused(format!(
                "the download of model {key} stopped; ask again"
            ))),
        }
    }

    async fn fetch(&self, rec: ModelRecord, base: String) -> Result<ModelRecord, SettingsError> {
        let key = rec.key.as_str();
        self.announce(event("downloading", Some(key)));
        let answer = self.ai.download(&base, key, rec.kind == Kind::Splat).await;
        let failure = match answer {
            Ok(Catalogue::Answer(_)) => {
                let stored = self.set_status(key, ModelStatus::Downloaded, false).await;
                match stored {
                    Ok(rec) => {
                        self.announce(event("downloaded", Some(key)));
                        return Ok(rec);
                    }
                    Err(e) => e,
                }
            }
            Ok(Catalogue::Missing) => SettingsError::NoCatalogue(base),
            Err(e) => ai_error(&base, e),
        };
        self.announce_error(key, &failure);
        Err(failure)
    }
}
