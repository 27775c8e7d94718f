//! The model manager: which model the AI service holds (as far as this
//! service can tell), the inactivity unload, and the catalogue actions.
//! Every change is announced on the event bus through the catalog (stored
//! changes after their commit), so the live channels tell the same story.
//!
//! Fixed against upstream: unload always answers with a status (never
//! silence), downloads use a long timeout, the catalogue is reconciled with
//! the AI service's own list periodically (idle unloads there become
//! visible here), and a model deleted by the user stays `not_downloaded`
//! until downloaded again, though the AI service keeps its files.
//!
//! Reading the AI's list and whether a model can be used: `sync`.
//! Downloads: `download`.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use super::{store, ModelRecord, ModelStatus, SettingsError};
use crate::{
    ai::{gateway::Catalogue, AiClient, AiError},
    catalog::{Catalog, Durability},
    events::{Event, ModelEvent},
    timestamp::Timestamp,
};

/// Who asked for a model, which decides how long it may sit unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Generation the app started by itself, and bulk work.
    Auto,
    /// The settings panel, or a generation the user asked for.
    Manual,
}

#[derive(Debug, Default)]
struct Held {
    current: Option<String>,
    loaded_at_ms: u64,
    trigger: Option<Trigger>,
}

pub struct ModelManager {
    pub(super) catalog: Catalog,
    pub(super) ai: AiClient,
    base: Option<String>,
    held: Mutex<Held>,
    auto: Duration,
    manual: Duration,
    /// Bumped on every use; an idle timer fires only if it is unchanged.
    epoch: AtomicU64,
    /// What the last look found: 0 not yet, 1 a model catalogue, 2 an
    /// older service without one (its one model is always usable).
    pub(super) catalogue: std::sync::atomic::AtomicU8,
    /// One reading of the AI's list at a time (`sync`).
    pub(super) syncing: tokio::sync::Mutex<()>,
    /// How the last reading ended, and when: callers that waited for it
    /// take its answer instead of asking again.
    pub(super) last: Mutex<Option<(Instant, Result<(), SettingsError>)>>,
    /// Downloads running in this process (`download`). `downloading` is
    /// this and nothing else: it is never stored.
    pub(super) downloads: Mutex<HashMap<String, super::download::Joined>>,
}

pub(super) fn event(status: &str, key: Option<&str>) -> ModelEvent {
    ModelEvent {
        status: status.into(),
        model_key: key.map(str::to_string),
        loaded_at: None,
        message: None,
        progress: None,
    }
}

pub(super) fn ai_error(base: &str, e: AiError) -> SettingsError {
    match &e {
        AiError::Unreachable(_) | AiError::Timeout(_) => {
            SettingsError::AiUnreachable(format!("{base}: {e}"))
        }
        _ => SettingsError::AiRefused(e.to_string()),
    }
}

impl ModelManager {
    pub fn new(catalog: Catalog, ai: AiClient, config: &crate::config::Config) -> Arc<Self> {
        Arc::new(ModelManager {
            catalog,
            ai,
            base: config.ai_urls().into_iter().next(),
            held: Mutex::new(Held::default()),
            auto: Duration::from_millis(config.vr.model_timeout_auto_ms.max(1)),
            manual: Duration::from_millis(config.vr.model_timeout_manual_ms.max(1)),
            epoch: AtomicU64::new(0),
            catalogue: std::sync::atomic::AtomicU8::new(0),
            syncing: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
            downloads: Mutex::new(HashMap::new()),
        })
    }

    pub(super) fn base(&self) -> Result<&str, SettingsError> {
        self.base
            .as_deref()
            .ok_or_else(|| SettingsError::AiUnreachable("no AI_SERVICE_URL configured".into()))
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        lock(&self.held)
    }

    /// What the app is told on connect: the loaded model, or none.
    pub fn status(&self) -> ModelEvent {
        let h = self.held();
        match &h.current {
            Some(k) => ModelEvent {
                loaded_at: Some(h.loaded_at_ms),
                ..event("loaded", Some(k))
            },
            None => event("unloaded", None),
        }
    }

    pub fn current(&self) -> Option<String> {
        self.held().current.clone()
    }

    pub(super) fn announce(&self, e: ModelEvent) {
        self.catalog.announce_now(Event::Model(e));
    }

    /// The AI service's loaded model as ours (it unloads idle models by
    /// itself, and a restart here forgets what it holds).
    pub(super) fn mirror(&self, ai_current: Option<&str>) {
        let changed = {
            let mut h = self.held();
            if h.current.as_deref() == ai_current {
                None
            } else {
                h.current = ai_current.map(str::to_string);
                h.loaded_at_ms = now_ms();
                Some(h.current.clone())
            }
        };
        match changed {
            Some(Some(k)) => self.announce(ModelEvent {
                loaded_at: Some(now_ms()),
                ..event("loaded", Some(&k))
            }),
            Some(None) => self.announce(event("unloaded", None)),
            None => {}
        }
    }

    /// Whether the AI service is known to have no model catalogue (an
    /// older version): then its one model needs no download here.
    pub fn without_catalogue(&self) -> bool {
        self.catalogue.load(Ordering::SeqCst) == 2
    }

    /// One model, with its status as of now.
    pub async fn record(&self, key: &str) -> Result<ModelRecord, SettingsError> {
        let key = key.to_string();
        let k = key.clone();
        self.catalog
            .store()
            .read(move |txn| store::model(txn, &k))
            .await?
            .map(|r| self.as_of_now(r))
            .ok_or(SettingsError::UnknownModel(key))
    }

    /// The catalogue in display order, each status as of now.
    pub async fn records(&self) -> Result<Vec<ModelRecord>, SettingsError> {
        let stored = self.catalog.store().read(store::models).await?;
        Ok(stored.into_iter().map(|r| self.as_of_now(r)).collect())
    }

    /// `downloading` while this process downloads the model, and never
    /// otherwise: one stored by an older version is a download that ended
    /// with its process, so the model is not (known to be) downloaded.
    fn as_of_now(&self, mut rec: ModelRecord) -> ModelRecord {
        if lock(&self.downloads).contains_key(&rec.key) {
            rec.status = ModelStatus::Downloading;
        } else if rec.status == ModelStatus::Downloading {
            rec.status = ModelStatus::NotDownloaded;
            rec.download_progress = 0;
        }
        rec
    }

    /// Loads `key` in the AI service unless it holds it already (and no
    /// device was asked for), then restarts its idle timer.
    pub async fn ensure_loaded(
        self: &Arc<Self>,
        key: &str,
        trigger: Trigger,
        device: Option<&str>,
    ) -> Result<(), SettingsError> {
        self.record(key).await?;
        if self.without_catalogue() {
            return Err(SettingsError::NoCatalogue(self.base()?.to_string()));
        }
        if let Err(e) = self.usable(key).await {
            self.announce_error(key, &e);
            return Err(e);
        }
        if self.current().as_deref() == Some(key) && device.is_none() {
            self.used(key, trigger);
            return Ok(());
        }
        let base = self.base()?.to_string();
        self.announce(event("loading", Some(key)));
        let answer = self.ai.load(&base, key, device.unwrap_or("auto")).await;
        match answer {
            Ok(Catalogue::Answer(_)) => {
                self.set_loaded(key);
                self.used(key, trigger);
                Ok(())
            }
            Ok(Catalogue::Missing) => {
                let e = SettingsError::NoCatalogue(base);
                self.announce_error(key, &e);
                Err(e)
            }
            Err(e) => {
                let e = ai_error(&base, e);
                self.announce_error(key, &e);
                Err(e)
            }
        }
    }

    fn set_loaded(&self, key: &str) {
        let at = now_ms();
        {
            let mut h = self.held();
            h.current = Some(key.to_string());
            h.loaded_at_ms = at;
        }
        self.announce(ModelEvent {
            loaded_at: Some(at),
            ..event("loaded", Some(key))
        });
    }

    pub(super) fn announce_error(&self, key: &str, e: &SettingsError) {
        self.announce(ModelEvent {
            message: Some(e.to_string()),
            ..event("error", Some(key))
        });
    }

    /// The AI service just used `key` (a generation): it holds it now, and
    /// its idle timer starts over.
    pub fn used(self: &Arc<Self>, key: &str, trigger: Trigger) {
        if self.current().as_deref() != Some(key) {
            self.set_loaded(key);
        }
        self.held().trigger = Some(trigger);
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let wait = match trigger {
            Trigger::Auto => self.auto,
            Trigger::Manual => self.manual,
        };
        let me = self.clone();
        crate::tasks::spawn_named("model-idle", async move {
            tokio::time::sleep(wait).await;
            if me.epoch.load(Ordering::SeqCst) == epoch {
                tracing::info!(
                    after_ms = wait.as_millis() as u64,
                    "unloading the idle model"
                );
                let _ = me.unload(None).await;
            }
        });
    }

    /// The AI service just produced with `key`, so it has the model on
    /// disk (SHARP downloads itself on first use): record that, so the
    /// catalogue does not wait for the next reconciliation to say so.
    pub async fn produced_with(&self, key: &str) {
        let Ok(rec) = self.record(key).await else {
            return;
        };
        if rec.status != ModelStatus::Downloaded
            && self
                .set_status(key, ModelStatus::Downloaded, false)
                .await
                .is_ok()
        {
            self.announce(event("downloaded", Some(key)));
        }
    }

    /// Unloads `key` (or the held model). Always answers with the status
    /// that results, `unloaded` included when nothing was loaded.
    pub async fn unload(&self, key: Option<&str>) -> Result<ModelEvent, SettingsError> {
        let target = key.map(str::to_string).or_else(|| self.current());
        let Some(target) = target else {
            let e = event("unloaded", None);
            self.announce(e.clone());
            return Ok(e);
        };
        let base = self.base()?.to_string();
        match self.ai.unload(&base, &target).await {
            Ok(Catalogue::Answer(_)) => {}
            Ok(Catalogue::Missing) => return Err(SettingsError::NoCatalogue(base)),
            Err(e) => {
                let e = ai_error(&base, e);
                self.announce_error(&target, &e);
                return Err(e);
            }
        }
        {
            let mut h = self.held();
            if h.current.as_deref() == Some(target.as_str()) {
                h.current = None;
                h.trigger = None;
            }
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let e = event("unloaded", Some(&target));
        self.announce(e.clone());
        Ok(e)
    }

    /// Marks a model deleted; the AI service is asked to unload it (it
    /// deletes nothing on disk, and refuses for SHARP: both are fine).
    pub async fn delete(&self, key: &str) -> Result<ModelRecord, SettingsError> {
        self.record(key).await?;
        let rec = self
            .set_status(key, ModelStatus::NotDownloaded, true)
            .await?;
        if let Ok(base) = self.base() {
            let _ = self.ai.delete(base, key).await;
        }
        if self.current().as_deref() == Some(key) {
            self.held().current = None;
            self.announce(event("unloaded", Some(key)));
        }
        Ok(rec)
    }

    pub(super) async fn set_status(
        &self,
        key: &str,
        status: ModelStatus,
        deleted: bool,
    ) -> Result<ModelRecord, SettingsError> {
        let key = key.to_string();
        self.catalog
            .commit(Durability::Durable, move |txn, _| {
                let mut rec = store::model(txn, &key)?
                    .ok_or_else(|| SettingsError::UnknownModel(key.clone()))?;
                rec.status = status;
                rec.deleted_by_user = deleted;
                match status {
                    ModelStatus::Downloaded => {
                        rec.downloaded_at.get_or_insert_with(Timestamp::now);
                        rec.download_progress = 100;
                    }
                    ModelStatus::NotDownloaded => {
                        rec.downloaded_at = None;
                        rec.download_progress = 0;
                    }
                    ModelStatus::Downloading | ModelStatus::Error => {}
                }
                store::put_model(txn, &rec)?;
                Ok(rec)
            })
            .await
    }
}

/// A poisoned lock still holds consistent data here (plain fields).
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn status_str(s: ModelStatus) -> &'static str {
    match s {
        ModelStatus::NotDownloaded => "not_downloaded",
        ModelStatus::Downloading => "downloading",
        ModelStatus::Downloaded => "downloaded",
        ModelStatus::Error => "error",
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
