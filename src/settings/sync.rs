//! What the AI service holds, as the catalogue learns it: its model list
//! read at start, on a timer, soon again after a failed reading and at once
//! when an AI endpoint comes back; and whether a model can be used now,
//! which asks the AI before a refusal. A status this process has not heard
//! from the AI is not known: after a reboot the AI often comes up later.

use std::{
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{
    manager::{ai_error, event, lock, status_str, ModelManager},
    store, ModelStatus, SettingsError,
};
use crate::{ai::gateway::Catalogue, catalog::Durability, events::Event, timestamp::Timestamp};

/// A refusal may rest on a reading of the AI's list this young; an older
/// one is read again first.
const FRESH: Duration = Duration::from_secs(2);

/// How soon a failed reading is tried again by the sync task (doubling up
/// to `MODEL_SYNC_SECS`): the AI usually comes up just after us at boot.
const RETRY_FIRST: Duration = Duration::from_secs(1);

impl ModelManager {
    /// The AI service's own list, passed on, with `params_size` added
    /// (the app reads that name; the service sends `params`).
    pub async fn ai_models(&self) -> Result<Value, SettingsError> {
        let base = self.base()?;
        match self.ai.models(base).await.map_err(|e| ai_error(base, e))? {
            Catalogue::Missing => {
                self.catalogue.store(2, Ordering::SeqCst);
                Err(SettingsError::NoCatalogue(base.into()))
            }
            Catalogue::Answer(mut v) => {
                self.catalogue.store(1, Ordering::SeqCst);
                if let Some(models) = v.get_mut("models").and_then(Value::as_array_mut) {
                    for m in models {
                        if let Some(p) = m.get("params").cloned() {
                            m["params_size"] = p;
                        }
                    }
                }
                Ok(v)
            }
        }
    }

    /// Brings the stored statuses and the loaded model in line with the AI
    /// service's list; returns the keys now `downloaded`.
    pub async fn sync(&self) -> Result<Vec<String>, SettingsError> {
        let _one = self.syncing.lock().await;
        self.sync_locked().await
    }

    /// Reads the AI's list again, unless a reading ended while this caller
    /// waited for its turn or a moment ago: then that one's answer.
    async fn ask_ai(&self) -> Result<(), SettingsError> {
        let asked = Instant::now();
        let _one = self.syncing.lock().await;
        if let Some((at, answer)) = &*lock(&self.last) {
            if *at >= asked || (answer.is_ok() && at.elapsed() < FRESH) {
                return answer.clone();
            }
        }
        self.sync_locked().await.map(drop)
    }

    async fn sync_locked(&self) -> Result<Vec<String>, SettingsError> {
        let answer = self.reconcile().await;
        let outcome = answer.as_ref().map(drop).map_err(Clone::clone);
        *lock(&self.last) = Some((Instant::now(), outcome));
        answer
    }

    async fn reconcile(&self) -> Result<Vec<String>, SettingsError> {
        let asked = Timestamp::now();
        let list = self.ai_models().await?;
        let models = list["models"].as_array().cloned().unwrap_or_default();
        let synced = self
            .catalog
            .commit(Durability::Durable, move |txn, ch| {
                let mut synced = Vec::new();
                for m in &models {
                    let Some(key) = m["key"].as_str() else {
                        continue;
                    };
                    let Some(mut rec) = store::model(txn, key)? else {
                        continue;
                    };
                    let on_disk = m["is_downloaded"].as_bool().unwrap_or(false);
                    let before = rec.status;
                    if on_disk && !rec.deleted_by_user {
                        rec.status = ModelStatus::Downloaded;
                        rec.downloaded_at.get_or_insert_with(Timestamp::now);
                    } else if !on_disk
                        && matches!(
                            rec.status,
                            // A stored `downloading` is from a run that
                            // ended mid-download (it is no longer stored).
                            ModelStatus::Downloaded | ModelStatus::Downloading
                        )
                        // Marked downloaded after the list was asked for
                        // (a download or a job that just ended): newer
                        // than the list, which the next reading confirms.
                        && rec.downloaded_at.is_none_or(|t| t < asked)
                    {
                        rec.status = ModelStatus::NotDownloaded;
                        rec.downloaded_at = None;
                    }
                    if rec.status != before {
                        store::put_model(txn, &rec)?;
                        if rec.status == ModelStatus::Downloaded {
                            ch.event(Event::Model(event("downloaded", Some(key))));
                        }
                    }
                    if rec.status == ModelStatus::Downloaded {
                        synced.push(key.to_string());
                    }
                }
                Ok::<_, SettingsError>(synced)
            })
            .await?;
        self.mirror(list["current_model"].as_str());
        Ok(synced)
    }

    /// Whether `key` can be used now. A model this process has not heard
    /// the AI hold is not known to be missing: the AI's list is read again
    /// before a refusal (unless it was read a moment ago), and while no AI
    /// answers, the answer says so instead of "download it".
    pub async fn usable(&self, key: &str) -> Result<(), SettingsError> {
        if self.without_catalogue() {
            return Ok(());
        }
        let mut rec = self.record(key).await?;
        match rec.status {
            ModelStatus::Downloaded => return Ok(()),
            ModelStatus::Downloading => return Err(SettingsError::Downloading(key.into())),
            ModelStatus::NotDownloaded | ModelStatus::Error => {}
        }
        // Deleted here by the user: the AI keeps the files, so asking it
        // changes nothing.
        if !rec.deleted_by_user {
            match self.ask_ai().await {
                Ok(()) => {}
                // An older service: its one model is always usable.
                Err(SettingsError::NoCatalogue(_)) => return Ok(()),
                Err(SettingsError::AiUnreachable(why)) => {
                    return Err(SettingsError::AiUnreachable(format!(
                        "{why}. Whether model {key} is downloaded is known once it answers; \
                         try again when the AI service is up"
                    )))
                }
                Err(e) => return Err(e),
            }
            rec = self.record(key).await?;
            if rec.status == ModelStatus::Downloaded {
                return Ok(());
            }
        }
        Err(SettingsError::NotDownloaded(
            key.into(),
            status_str(rec.status),
        ))
    }

    /// Reconciles with the AI service now and every `every`; after a
    /// failed reading sooner (from 1 s, doubling), and at once when an AI
    /// endpoint becomes reachable (the worker says so on the bus).
    pub fn spawn_sync(self: &Arc<Self>, every: Duration, stop: CancellationToken) {
        let me = self.clone();
        let mut events = self.catalog.events().subscribe();
        crate::tasks::spawn_named("model-sync", async move {
            let mut retry = RETRY_FIRST.min(every);
            loop {
                let wait = match me.sync().await {
                    Ok(_) | Err(SettingsError::NoCatalogue(_)) => {
                        retry = RETRY_FIRST.min(every);
                        every
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "model catalogue not reconciled");
                        let wait = retry;
                        retry = (retry * 2).min(every);
                        wait
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = endpoint_up(&mut events) => {}
                    _ = stop.cancelled() => return,
                }
            }
        });
    }
}

/// Waits until the bus says an AI endpoint is reachable again (or that
/// events were missed, which may have been that).
async fn endpoint_up(events: &mut tokio::sync::broadcast::Receiver<Event>) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(Event::AiEndpoint(e)) if e.reachable => return,
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => std::future::pending().await,
        }
    }
}
