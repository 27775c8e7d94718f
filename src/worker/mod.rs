//! The in-process worker: one task per (AI endpoint, slot), each claiming
//! the best queued item when woken, sending it, and recording the outcome.
//!
//! Starting and stopping is generational: `start` spawns the slot tasks
//! under a child of the process's shutdown token, `stop` cancels it and
//! waits until every in-flight item finished or went back to `queued`.

pub mod endpoint;
pub mod job;
mod process;
pub mod routes;
mod stages;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{ai::AiClient, catalog::Catalog, config::Config, events::Event};
pub use endpoint::Endpoint;

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

/// What the slots share.
pub struct Shared {
    pub catalog: Catalog,
    pub ai: AiClient,
    pub endpoints: Vec<Arc<Endpoint>>,
    pub grace: Duration,
    pub retry_base: Duration,
    /// How long "model not loaded" lasts before the log hints at it.
    pub not_ready_hint: Duration,
    pub model_name: String,
    pub model_version: String,
    pub processed: AtomicU64,
    pub failed: AtomicU64,
    /// Queue ids being processed now.
    pub in_flight: std::sync::Mutex<Vec<Uuid>>,
    /// Why processing pauses (a full disk, a read-only database), while it does.
    pub paused: std::sync::Mutex<Option<String>>,
    /// Where the inputs of items that live in Immich come from.
    pub immich: Option<crate::immich::ImmichClient>,
    /// Told which model each depth job used (it holds it now).
    pub models: Arc<crate::settings::manager::ModelManager>,
    /// Largest input fetched from Immich for one job.
    pub max_input_bytes: u64,
}

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
}

struct Run {
    token: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Clone)]
pub struct Worker {
    shared: Arc<Shared>,
    run: Arc<Mutex<Option<Run>>>,
    shutdown: CancellationToken,
    concurrency: usize,
}

impl Worker {
    pub fn new(
        config: &Config,
        catalog: Catalog,
        ai: AiClient,
        immich: Option<crate::immich::ImmichClient>,
        models: Arc<crate::settings::manager::ModelManager>,
        shutdown: CancellationToken,
    ) -> Self {
        let endpoints = config
            .ai_urls()
            .into_iter()
            .map(|u| Arc::new(Endpoint::new(u)))
            .collect();
        Worker {
            shared: Arc::new(Shared {
                catalog,
                ai,
                endpoints,
                grace: Duration::from_secs(config.shutdown_grace_secs),
                retry_base: Duration::from_secs_f64(config.retry_base_secs.max(0.0)),
                not_ready_hint: Duration::from_secs(config.ai_not_ready_hint_secs.max(1)),
                model_name: config.ai_model_name.clone(),
                model_version: config.ai_model_version.clone(),
                processed: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                in_flight: std::sync::Mutex::new(Vec::new()),
                paused: std::sync::Mutex::new(None),
                immich,
                models,
                max_input_bytes: config.max_upload_bytes,
            }),
            run: Arc::new(Mutex::new(None)),
            shutdown,
            concurrency: config.ai_concurrency.max(1),
        }
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    pub async fn is_running(&self) -> bool {
        self.run.lock().await.is_some()
    }

    pub async fn start(&self) -> Result<(), WorkerError> {
        let mut run = self.run.lock().await;
        if run.is_some() {
            return Err(WorkerError::AlreadyRunning);
        }
        let token = self.shutdown.child_token();
        let mut tasks = Vec::new();
        for ep in &self.shared.endpoints {
            tasks.push(crate::tasks::spawn_named(
                "ai-health",
                endpoint::watch(self.shared.clone(), ep.clone(), token.clone()),
            ));
            for _ in 0..self.concurrency {
                tasks.push(crate::tasks::spawn_named(
                    "worker-slot",
                    job::slot(self.shared.clone(), ep.clone(), token.clone()),
                ));
            }
        }
        *run = Some(Run { token, tasks });
        tracing::info!(
            endpoints = self.shared.endpoints.len(),
            per_endpoint = self.concurrency,
            "worker started"
        );
        self.shared
            .catalog
            .events()
            .publish(Event::Worker(crate::events::WorkerEvent { running: true }));
        Ok(())
    }

    /// Stops claiming; in-flight items get the grace period, then go back
    /// to `queued`. Returns once no slot holds an item.
    pub async fn stop(&self) -> Result<(), WorkerError> {
        let mut run = self.run.lock().await;
        let Some(r) = run.take() else {
            return Err(WorkerError::NotRunning);
        };
        r.token.cancel();
        for t in r.tasks {
            let _ = t.await;
        }
        tracing::info!("worker stopped");
        self.shared
            .catalog
            .events()
            .publish(Event::Worker(crate::events::WorkerEvent { running: false }));
        Ok(())
    }

    /// Everything `/api/queue/worker/status` and `/metrics` show, read now.
    pub async fn status(&self) -> Status {
        let in_flight = self
            .shared
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Status {
            running: self.is_running().await,
            concurrency: self.concurrency as u64,
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
            in_flight,
        }
    }
}
