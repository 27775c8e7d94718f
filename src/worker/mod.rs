//! The in-process worker: a dispatcher that claims jobs and one task per
//! job (`dispatch`, `job`), the AI's slots handed out best first
//! (`slots`), and the gate that says whether background work may run
//! (`gate`).
//!
//! The app's own requests (priority 0) are always served, from start-up to
//! shutdown. `start` and `stop` open and close the gate for background
//! work (uploads, imports, what following Immich makes): `stop` returns
//! the background jobs that are still preparing to the queue at once and
//! gives those at the AI the grace period, then returns once none is held.

pub mod dispatch;
pub mod endpoint;
pub mod gate;
pub mod job;
mod process;
pub mod routes;
pub mod slots;
mod stages;

pub use process::TRIGGER;

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{ai::AiClient, catalog::Catalog, config::Config, events::Event};
pub use endpoint::Endpoint;
use gate::Gate;
use slots::Slots;

/// A snapshot of the worker, as `/api/queue/worker/status` shows it.
#[derive(Debug, Clone, poem_openapi::Object)]
#[oai(rename = "WorkerSnapshot", rename_all = "camelCase")]
pub struct Status {
    pub running: bool,
    /// Requests in flight at most per AI endpoint.
    pub concurrency: u64,
    /// Queue ids being processed now.
    pub in_flight: Vec<Uuid>,
    /// Items completed since start.
    pub processed: u64,
    /// Items failed for good since start.
    pub failed: u64,
    /// Why processing pauses (disk full, database read-only), while it does;
    /// it resumes by itself.
    #[oai(nullable)]
    pub paused_reason: Option<String>,
    pub endpoints: Vec<EndpointStatus>,
    /// Why background work (uploads, imports, following Immich) waits
    /// now: the worker is stopped, outside `BACKGROUND_HOURS`, or the disk
    /// budget is full; `null` while it runs. The app's own requests are
    /// served either way.
    #[oai(nullable)]
    pub background_paused_reason: Option<String>,
    /// `BACKGROUND_HOURS` as configured (`null`: any hour).
    #[oai(nullable)]
    pub background_hours: Option<String>,
    /// Jobs the app asked for that are being processed now.
    pub on_demand_in_flight: u64,
    /// Jobs completed per second over the last ones (up to 100 in the last
    /// 10 minutes); `null` before there are two.
    #[oai(nullable)]
    pub rate_per_sec: Option<f64>,
}

#[derive(Debug, Clone, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct EndpointStatus {
    pub url: String,
    pub in_flight: u64,
    pub reachable: bool,
    #[oai(nullable)]
    pub last_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("The processing worker is already running")]
    AlreadyRunning,
    #[error("The processing worker is not running")]
    NotRunning,
}

/// What the dispatcher and the jobs share.
pub struct Shared {
    pub catalog: Catalog,
    pub ai: AiClient,
    pub endpoints: Vec<Arc<Endpoint>>,
    pub slots: Arc<Slots>,
    pub gate: Gate,
    pub concurrency: usize,
    pub grace: Duration,
    pub retry_base: Duration,
    /// How long "model not loaded" lasts before the log hints at it.
    pub not_ready_hint: Duration,
    pub model_name: String,
    pub model_version: String,
    pub processed: AtomicU64,
    pub failed: AtomicU64,
    /// Jobs being processed now, and whether each is the app's.
    jobs: std::sync::Mutex<Vec<(Uuid, bool)>>,
    /// Told when a job ends (stop waits for the background ones).
    ended: Notify,
    /// Wakes the dispatcher: a job got its slot or ended, the gate or an
    /// endpoint changed.
    pub kick: Notify,
    /// Background jobs claimed and not yet at the AI; the app's likewise.
    pub ahead_bg: Arc<AtomicUsize>,
    pub ahead_app: Arc<AtomicUsize>,
    /// Cancelled when background work stops; a new one at each start.
    background: std::sync::Mutex<CancellationToken>,
    /// The process's shutdown: ends everything.
    pub shutdown: CancellationToken,
    /// When the last jobs completed (the measured rate).
    completions: std::sync::Mutex<VecDeque<Instant>>,
    /// Why processing pauses (a full disk, a read-only database), while it does.
    pub paused: std::sync::Mutex<Option<String>>,
    /// Where the inputs of items that live in Immich come from.
    pub immich: Option<crate::immich::ImmichClient>,
    /// Signed-in people's keys: a job reads a person's asset with theirs.
    pub auth: Arc<crate::auth::Auth>,
    /// Told which model each depth job used (it holds it now).
    pub models: Arc<crate::settings::manager::ModelManager>,
    /// Largest input fetched from Immich for one job.
    pub max_input_bytes: u64,
}

/// Completions the rate is measured over, at most, and how far back.
const RATE_WINDOW: usize = 100;
const RATE_AGE: Duration = Duration::from_secs(600);

impl Shared {
    /// Sets or clears the pause reason, logging the changes.
    pub fn pause(&self, reason: Option<String>) {
        let mut p = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        if *p == reason {
            return;
        }
        match &reason {
            Some(r) if p.is_none() => tracing::warn!(reason = %r, "processing paused"),
            Some(_) => {}
            None => tracing::info!("processing resumed"),
        }
        *p = reason;
    }

    pub fn paused(&self) -> Option<String> {
        self.paused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, Vec<(Uuid, bool)>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn job_started(&self, id: Uuid, on_demand: bool) {
        self.jobs().push((id, on_demand));
    }

    fn job_ended(&self, id: Uuid) {
        self.jobs().retain(|(j, _)| *j != id);
        self.slots.forget(id);
        self.ended.notify_waiters();
        self.kick.notify_one();
    }

    /// A job the worker holds became the app's own.
    fn promote(&self, id: Uuid) {
        let mut jobs = self.jobs();
        if let Some(j) = jobs.iter_mut().find(|(j, _)| *j == id) {
            j.1 = true;
            self.slots.promote(id);
        }
    }

    fn is_on_demand(&self, id: Uuid) -> bool {
        self.jobs().iter().any(|(j, app)| *j == id && *app)
    }

    fn background_token(&self) -> CancellationToken {
        self.background
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Resolves when job `id` must stop: at shutdown, or when background
    /// work stops (`bg` is the token it was claimed under) and it is not
    /// the app's.
    async fn cancelled(&self, id: Uuid, bg: &CancellationToken) {
        tokio::select! {
            _ = self.shutdown.cancelled() => {}
            _ = bg.cancelled() => {
                if self.is_on_demand(id) {
                    self.shutdown.cancelled().await;
                }
            }
        }
    }

    fn completed_now(&self) {
        let mut c = self.completions.lock().unwrap_or_else(|e| e.into_inner());
        if c.len() == RATE_WINDOW {
            c.pop_front();
        }
        c.push_back(Instant::now());
    }

    /// Jobs per second over the recent completions.
    pub fn rate(&self) -> Option<f64> {
        let c = self.completions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let recent: Vec<&Instant> = c
            .iter()
            .filter(|t| now.duration_since(**t) <= RATE_AGE)
            .collect();
        let (first, last) = (recent.first()?, recent.last()?);
        let span = last.duration_since(**first).as_secs_f64();
        (recent.len() >= 2 && span > 0.0).then(|| (recent.len() - 1) as f64 / span)
    }
}

#[derive(Clone)]
pub struct Worker {
    shared: Arc<Shared>,
    /// Serialises start and stop.
    switch: Arc<tokio::sync::Mutex<()>>,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Worker {
    pub fn new(
        config: &Config,
        catalog: Catalog,
        ai: AiClient,
        immich: Option<crate::immich::ImmichClient>,
        auth: Arc<crate::auth::Auth>,
        models: Arc<crate::settings::manager::ModelManager>,
        shutdown: CancellationToken,
    ) -> Self {
        let endpoints: Vec<Arc<Endpoint>> = config
            .ai_urls()
            .into_iter()
            .map(|u| Arc::new(Endpoint::new(u)))
            .collect();
        let concurrency = config.ai_concurrency.max(1);
        let background = shutdown.child_token();
        // Closed until `start`: nothing of it runs before then.
        background.cancel();
        Worker {
            shared: Arc::new(Shared {
                catalog,
                ai,
                auth,
                slots: Slots::new(endpoints.clone(), concurrency),
                endpoints,
                gate: Gate::new(config.background.background_hours),
                concurrency,
                grace: Duration::from_secs(config.shutdown_grace_secs),
                retry_base: Duration::from_secs_f64(config.retry_base_secs.max(0.0)),
                not_ready_hint: Duration::from_secs(config.ai_not_ready_hint_secs.max(1)),
                model_name: config.ai_model_name.clone(),
                model_version: config.ai_model_version.clone(),
                processed: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                jobs: Default::default(),
                ended: Notify::new(),
                kick: Notify::new(),
                ahead_bg: Default::default(),
                ahead_app: Default::default(),
                background: std::sync::Mutex::new(background),
                shutdown,
                completions: Default::default(),
                paused: std::sync::Mutex::new(None),
                immich,
                models,
                max_input_bytes: config.max_upload_bytes,
            }),
            switch: Default::default(),
            tasks: Default::default(),
        }
    }

    pub fn concurrency(&self) -> usize {
        self.shared.concurrency
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Starts serving: the dispatcher and the endpoints' health probes.
    /// The app's requests are served from now until shutdown; background
    /// work waits for [`Worker::start`].
    pub fn launch(&self) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if !tasks.is_empty() {
            return;
        }
        for ep in &self.shared.endpoints {
            tasks.push(crate::tasks::spawn_named(
                "ai-health",
                endpoint::watch(
                    self.shared.clone(),
                    ep.clone(),
                    self.shared.shutdown.clone(),
                ),
            ));
        }
        tasks.push(crate::tasks::spawn_named(
            "worker-dispatch",
            dispatch::run(self.shared.clone()),
        ));
        tracing::info!(
            endpoints = self.shared.endpoints.len(),
            per_endpoint = self.shared.concurrency,
            "worker serving the app's requests"
        );
    }

    pub async fn is_running(&self) -> bool {
        self.shared.gate.running()
    }

    /// Lets background work run.
    pub async fn start(&self) -> Result<(), WorkerError> {
        let _switch = self.switch.lock().await;
        if self.shared.gate.running() {
            return Err(WorkerError::AlreadyRunning);
        }
        self.launch();
        *self
            .shared
            .background
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = self.shared.shutdown.child_token();
        self.shared.gate.set_running(true);
        self.shared.kick.notify_one();
        tracing::info!("worker started: background work runs");
        self.shared
            .catalog
            .events()
            .publish(Event::Worker(crate::events::WorkerEvent { running: true }));
        Ok(())
    }

    /// Stops background work: jobs still preparing go back to `queued` at
    /// once, those at the AI get the grace period. Returns once no
    /// background job is held; the app's jobs carry on.
    pub async fn stop(&self) -> Result<(), WorkerError> {
        let _switch = self.switch.lock().await;
        if !self.shared.gate.running() {
            return Err(WorkerError::NotRunning);
        }
        self.shared.gate.set_running(false);
        self.shared.background_token().cancel();
        self.wait_until(|jobs| jobs.iter().all(|(_, app)| *app))
            .await;
        tracing::info!("worker stopped: background work waits; the app's requests are served");
        self.shared
            .catalog
            .events()
            .publish(Event::Worker(crate::events::WorkerEvent { running: false }));
        Ok(())
    }

    async fn wait_until(&self, done: impl Fn(&[(Uuid, bool)]) -> bool) {
        loop {
            let ended = self.shared.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if done(&self.shared.jobs()) {
                return;
            }
            ended.await;
        }
    }

    /// After the shutdown token is cancelled: waits until every job has
    /// finished or gone back to the queue, and the tasks have ended.
    pub async fn finished(&self) {
        self.shared.gate.set_running(false);
        self.wait_until(|jobs| jobs.is_empty()).await;
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Everything `/api/queue/worker/status` and `/metrics` show, read now.
    pub async fn status(&self) -> Status {
        let jobs = self.shared.jobs().clone();
        let gate = &self.shared.gate;
        let held = gate
            .held(chrono::Local::now())
            .or_else(|| gate.budget_reason());
        Status {
            running: gate.running(),
            concurrency: self.shared.concurrency as u64,
            processed: self.shared.processed.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            paused_reason: self.shared.paused(),
            endpoints: self
                .shared
                .endpoints
                .iter()
                .map(|e| EndpointStatus {
                    url: e.url.clone(),
                    in_flight: e.in_flight.load(Ordering::SeqCst) as u64,
                    reachable: e.reachable(),
                    last_error: e.last_error(),
                })
                .collect(),
            on_demand_in_flight: jobs.iter().filter(|(_, app)| *app).count() as u64,
            in_flight: jobs.into_iter().map(|(id, _)| id).collect(),
            background_paused_reason: held,
            background_hours: gate.hours().map(|h| h.to_string()),
            rate_per_sec: self.shared.rate(),
        }
    }

    /// Completed jobs per second, measured (for estimates).
    pub fn rate(&self) -> Option<f64> {
        self.shared.rate()
    }

    /// The disk budget's bound on background claims (see `gate`).
    pub fn set_budget(&self, bound: Option<(u32, String)>) {
        self.shared.gate.set_budget(bound);
        self.shared.kick.notify_one();
    }
}
