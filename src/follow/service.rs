//! The follower's two tasks: reading each followed library every
//! `IMMICH_SYNC_SECS` (or at once when asked), one after the other, a
//! failure recorded in that library's figures and never stopping the
//! others; and keeping their figures,
//! the disk the 3D assets use and the disk budget current (at most once
//! a second, after whatever changed them).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{
    broadcast::error::{RecvError, TryRecvError},
    Notify,
};
use tokio_util::sync::CancellationToken;

use super::{
    budget,
    figures::{self, Disk},
    libraries::{self, Requests},
    settings_for, store,
    sync::Round,
    Figures, FollowError,
};
use crate::{
    auth::Auth, catalog::Catalog, config::Config, events::Event, immich::ImmichClient, media,
    timestamp::Timestamp, worker::Worker,
};

/// How long the figures wait for more changes before they are read again.
const SETTLE: Duration = Duration::from_secs(1);
/// The figures are read at least this often (the estimate moves).
const REFRESH: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Latest {
    figures: Vec<Figures>,
    disk: Disk,
    /// The library being read now.
    syncing: Option<String>,
    /// Why the service key's library cannot be read (the key, Immich
    /// unreachable); each library's own failure is in its figures.
    error: Option<String>,
    /// The service key's user, once its key answered.
    service: Option<String>,
    /// Libraries to read now.
    requests: Requests,
}

pub struct Follower {
    catalog: Catalog,
    client: Option<ImmichClient>,
    /// The keys held for signed-in people (their libraries).
    auth: Arc<Auth>,
    worker: Worker,
    interval: Duration,
    grace: Duration,
    budget: Option<u64>,
    sync_now: Notify,
    changed: Notify,
    latest: Mutex<Latest>,
}

impl Follower {
    pub fn new(
        config: &Config,
        catalog: Catalog,
        client: Option<ImmichClient>,
        auth: Arc<Auth>,
        worker: Worker,
    ) -> Arc<Self> {
        let bg = &config.background;
        Arc::new(Follower {
            catalog,
            client,
            auth,
            worker,
            interval: Duration::from_secs(bg.immich_sync_secs),
            grace: Duration::from_secs(bg.immich_delete_grace_secs),
            budget: bg.asset_disk_budget.map(|b| b.0),
            sync_now: Notify::new(),
            changed: Notify::new(),
            latest: Mutex::new(Latest::default()),
        })
    }

    fn latest(&self) -> std::sync::MutexGuard<'_, Latest> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether libraries are followed: Immich configured (the service
    /// key, or people signing in with their accounts), interval above 0.
    pub fn on(&self) -> bool {
        (self.client.is_some() || self.auth.immich_sign_in()) && !self.interval.is_zero()
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The figures of every followed library, as last read.
    pub fn figures(&self) -> Vec<Figures> {
        self.latest().figures.clone()
    }

    pub fn disk(&self) -> Disk {
        self.latest().disk.clone()
    }

    /// Why following cannot read the library now, if it cannot.
    pub fn error(&self) -> Option<String> {
        self.latest().error.clone()
    }

    /// Reads a library now (`owner`; `None`: every one) rather than at
    /// the next interval; `full`: everything, so deletions are noticed now
    /// rather than within a day.
    pub fn sync_now(&self, owner: Option<&str>, full: bool) -> Result<(), FollowError> {
        if !self.on() {
            return Err(FollowError::Off);
        }
        self.latest().requests.add(owner, full);
        self.sync_now.notify_one();
        Ok(())
    }

    /// Whether `owner`'s library is followed: the service key's, or that
    /// of a signed-in person who turned `followLibrary` on.
    pub async fn follows(&self, owner: &str) -> Result<bool, FollowError> {
        if !self.on() {
            return Ok(false);
        }
        let service = self.latest().service.clone();
        if service.as_deref() != Some(owner) && self.auth.user(owner).is_none() {
            return Ok(false);
        }
        let id = owner.to_string();
        Ok(self
            .catalog
            .store()
            .read(move |txn| settings_for(txn, &id, true, service.as_deref()))
            .await?
            .follow)
    }

    pub fn spawn(self: &Arc<Self>, shutdown: CancellationToken) {
        if self.on() {
            let me = self.clone();
            let stop = shutdown.clone();
            crate::tasks::spawn_named("immich-follow", async move { me.follow(stop).await });
        }
        let me = self.clone();
        crate::tasks::spawn_named(
            "library-figures",
            async move { me.keep_figures(shutdown).await },
        );
    }

    async fn follow(self: Arc<Self>, stop: CancellationToken) {
        // Every library at start-up, then every interval; in between,
        // those asked for.
        let mut due = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {
                    self.latest().requests.all = true;
                    due = tokio::time::Instant::now() + self.interval;
                }
                _ = self.sync_now.notified() => {}
                _ = stop.cancelled() => return,
            }
            let asked = std::mem::take(&mut self.latest().requests);
            let found = match libraries::find(
                self.catalog.store(),
                &self.auth,
                self.client.as_ref(),
                true,
            )
            .await
            {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "following Immich: who is followed could not be read");
                    continue;
                }
            };
            if let Some(why) = &found.error {
                tracing::warn!("following Immich waits: {why}");
            }
            {
                let mut l = self.latest();
                l.error = found.error.clone();
                if found.service.is_some() {
                    l.service = found.service.clone();
                }
            }
            match libraries::stopped(self.catalog.store(), &found).await {
                Ok(ids) if !ids.is_empty() => {
                    tracing::info!(
                        libraries = ids.len(),
                        "following Immich: no longer followed (signed out, or turned off); what was made stays"
                    );
                    if let Err(e) = self.catalog.follow_stopped(ids).await {
                        tracing::warn!(error = %e, "following Immich: the end of following not stored");
                    }
                    // Their figures are no longer shown.
                    self.changed.notify_one();
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "following Immich: libraries not read"),
            }
            for lib in found.libraries.iter().filter(|l| asked.wants(&l.owner_id)) {
                self.latest().syncing = Some(lib.owner_id.clone());
                self.changed.notify_one();
                let round = Round {
                    catalog: &self.catalog,
                    client: &lib.client,
                    owner_id: &lib.owner_id,
                    owner_name: &lib.owner_name,
                    sync_on: true,
                    service: found.service.as_deref(),
                    grace: self.grace,
                    full: asked.full,
                };
                let r = tokio::select! {
                    r = round.run() => r,
                    _ = stop.cancelled() => return,
                };
                // Kept in the library's own figures (`lastError`); the
                // next library is read all the same.
                if let Err(e) = &r {
                    tracing::warn!(owner = %lib.owner_id, error = %e, "following Immich: the round stopped; the next one resumes it");
                }
                self.latest().syncing = None;
                self.changed.notify_one();
            }
        }
    }

    async fn keep_figures(self: Arc<Self>, stop: CancellationToken) {
        let mut rx = self.catalog.events().subscribe();
        loop {
            let began = std::time::Instant::now();
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "the library's figures could not be read");
            }
            // A large library takes a while to read: never more than a
            // fifth of the time goes to it.
            let settle = SETTLE.max(began.elapsed() * 4);
            // Until something changes (or the estimate is due), then a
            // moment for more changes to gather.
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = tokio::time::sleep(REFRESH) => {}
                _ = async {
                    loop {
                        match rx.recv().await {
                            Ok(Event::Item(_) | Event::MediaDeleted(_)) | Err(RecvError::Lagged(_)) => return,
                            Ok(_) => {}
                            Err(RecvError::Closed) => std::future::pending::<()>().await,
                        }
                    }
                } => {}
                _ = stop.cancelled() => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(settle) => {}
                _ = stop.cancelled() => return,
            }
            while let Ok(_) | Err(TryRecvError::Lagged(_)) = rx.try_recv() {}
        }
    }

    /// Reads the figures and the disk, applies the budget, and tells the
    /// event stream what changed.
    async fn refresh(&self) -> Result<(), crate::catalog::CatalogError> {
        let budget = self.budget;
        let sync_on = self.on();
        let service = self.latest().service.clone();
        let (mut figures, disk, rows) = self
            .catalog
            .store()
            .read(move |txn| {
                let mut out = Vec::new();
                for o in store::owners(txn)? {
                    let s = settings_for(txn, &o.owner_id, sync_on, service.as_deref())?;
                    if s.follow && o.stopped_at.is_none() {
                        out.push(figures::library(txn, &o, &s.depth_model)?);
                    }
                }
                let (mut disk, rows) = figures::disk(txn, budget.is_some())?;
                disk.budget_bytes = budget;
                // The photo's date orders what the budget removes; only
                // what refers to Immich may go (uploads and imported copies
                // are files someone gave us).
                let mut dated = Vec::with_capacity(rows.len());
                for r in rows {
                    if let Some(m) = media::store::get(txn, r.media_item_id)? {
                        if m.is_referenced() {
                            dated.push((r, m.captured_at));
                        }
                    }
                }
                Ok::<_, crate::storage::StorageError>((out, disk, dated))
            })
            .await?;
        let rate = self.worker.rate();
        let syncing = self.latest().syncing.clone();
        for f in &mut figures {
            f.syncing |= syncing.as_deref() == Some(f.owner_id.as_str());
            f.eta_seconds = match rate {
                Some(r) if f.left > 0 && r > 0.0 => Some((f.left as f64 / r).ceil() as u64),
                _ => None,
            };
        }
        if let Some(b) = budget {
            self.catalog.record_views().await?;
            self.apply_budget(rows, disk.used_bytes, b).await?;
        }
        let changed = {
            let mut l = self.latest();
            let changed = l.figures != figures;
            l.figures = figures.clone();
            l.disk = disk;
            changed
        };
        if changed {
            for f in figures {
                self.catalog.announce_now(Event::Library(f));
            }
        }
        Ok(())
    }

    async fn apply_budget(
        &self,
        rows: Vec<(crate::assets::AssetRow, Option<Timestamp>)>,
        used: u64,
        budget: u64,
    ) -> Result<(), crate::catalog::CatalogError> {
        let views: HashMap<uuid::Uuid, Timestamp> = self.catalog.views();
        let rows = rows
            .into_iter()
            .map(|(r, when)| {
                let viewed = views.get(&r.id).copied();
                (r, when, viewed)
            })
            .collect();
        let verdict = budget::decide(rows, used, budget, Timestamp::now());
        if !verdict.evict.is_empty() {
            let n = verdict.evict.len();
            let freed: u64 = verdict.evict.iter().map(|r| r.file_size).sum();
            self.catalog.evict(verdict.evict).await?;
            // The figures moved: read them again.
            self.changed.notify_one();
            tracing::info!(
                assets = n,
                bytes = freed,
                "ASSET_DISK_BUDGET: removed the least recently viewed 3D assets made in the background"
            );
        }
        self.worker.set_budget(verdict.bound);
        Ok(())
    }
}
