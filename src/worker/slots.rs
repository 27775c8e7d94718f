//! The AI's slots: `AI_CONCURRENCY` per endpoint, handed to waiting jobs
//! best first (lowest priority number, then oldest) among those whose
//! input is ready, whichever endpoint frees one. A background job waits
//! here once its input is ready; the app's own jobs wait from the moment
//! they are claimed, and a background job never takes a slot while one
//! of them waits, ready or not (it then holds the slot until its input is
//! there). An endpoint that is down gets nothing; one that failed waits a
//! little longer after each failure; among free ones the fastest is
//! chosen, so a slow or failing endpoint gets less work and never holds
//! the others back.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{atomic::Ordering, Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::oneshot;
use uuid::Uuid;

use super::Endpoint;

/// (priority, seq, ticket): the order slots are handed out in.
type Key = (u32, u64, u64);

struct Ep {
    free: usize,
    /// After a failure, no new work before this.
    cool_until: Option<Instant>,
    failures: u32,
    /// Moving average of one job's time at this endpoint, in seconds.
    ewma: Option<f64>,
}

struct State {
    eps: Vec<Ep>,
    /// Each waiter, and whether its input is ready.
    waiting: BTreeMap<Key, (Uuid, oneshot::Sender<usize>, bool)>,
    keys: HashMap<Uuid, Key>,
    /// Jobs that became the app's own while they were held.
    promoted: HashSet<Uuid>,
    ticket: u64,
}

pub struct Slots {
    endpoints: Vec<Arc<Endpoint>>,
    state: Mutex<State>,
}

/// How one use of a slot ended, for the endpoint's record.
pub enum Used {
    /// An answer came (good or bad for the item, the endpoint works).
    Answered(Duration),
    /// The endpoint failed the request: it cools down a while.
    Failed,
    /// Down or not ready: the health probe brings it back.
    Down,
    /// Never used (cancelled before sending).
    Unused,
}

/// A slot held; give it back with [`Slot::release`] (dropping it gives it
/// back unused).
pub struct Slot {
    slots: Arc<Slots>,
    pub ep: usize,
    done: bool,
}

impl Slot {
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.slots.endpoints[self.ep]
    }

    pub fn release(mut self, used: Used) {
        self.done = true;
        self.slots.give_back(self.ep, used);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.done {
            self.slots.give_back(self.ep, Used::Unused);
        }
    }
}

/// Removes a waiter that gave up, returning a slot it was handed too late.
struct Waiting<'a> {
    slots: &'a Arc<Slots>,
    id: Uuid,
    rx: Option<oneshot::Receiver<usize>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        {
            let mut s = self.slots.lock();
            if let Some(k) = s.keys.remove(&self.id) {
                s.waiting.remove(&k);
            }
        }
        if let Ok(ep) = rx.try_recv() {
            self.slots.give_back(ep, Used::Unused);
        }
    }
}

/// The longest an endpoint rests after failures in a row.
const MAX_COOL: Duration = Duration::from_secs(30);

impl Slots {
    pub fn new(endpoints: Vec<Arc<Endpoint>>, per_endpoint: usize) -> Arc<Self> {
        let eps = endpoints
            .iter()
            .map(|_| Ep {
                free: per_endpoint,
                cool_until: None,
                failures: 0,
                ewma: None,
            })
            .collect();
        Arc::new(Slots {
            endpoints,
            state: Mutex::new(State {
                eps,
                waiting: BTreeMap::new(),
                keys: HashMap::new(),
                promoted: HashSet::new(),
                ticket: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Slots of the endpoints that answer: how much work to prepare ahead.
    pub fn reachable_capacity(&self, per_endpoint: usize) -> usize {
        self.endpoints.iter().filter(|e| e.reachable()).count() * per_endpoint
    }

    /// Waits for a slot, in the order of `(priority, seq)` among waiters
    /// whose input is ready (see [`Slots::ready`]).
    pub async fn acquire(self: &Arc<Self>, id: Uuid, priority: u32, seq: u64) -> Slot {
        self.acquire_when(id, priority, seq, true).await
    }

    /// [`Slots::acquire`] for a job whose input is still being fetched: it
    /// says [`Slots::ready`] once it is.
    pub async fn acquire_early(self: &Arc<Self>, id: Uuid, priority: u32, seq: u64) -> Slot {
        self.acquire_when(id, priority, seq, false).await
    }

    /// A waiter's input is ready.
    pub fn ready(self: &Arc<Self>, id: Uuid) {
        let mut s = self.lock();
        if let Some(k) = s.keys.get(&id).copied() {
            if let Some(w) = s.waiting.get_mut(&k) {
                w.2 = true;
            }
        }
        self.hand_out(&mut s);
    }

    async fn acquire_when(
        self: &Arc<Self>,
        id: Uuid,
        priority: u32,
        seq: u64,
        ready: bool,
    ) -> Slot {
        let rx = {
            let mut s = self.lock();
            let priority = if s.promoted.contains(&id) {
                crate::queue::INTERACTIVE_PRIORITY
            } else {
                priority
            };
            s.ticket += 1;
            let key = (priority, seq, s.ticket);
            let (tx, rx) = oneshot::channel();
            s.waiting.insert(key, (id, tx, ready));
            s.keys.insert(id, key);
            self.hand_out(&mut s);
            rx
        };
        let mut w = Waiting {
            slots: self,
            id,
            rx: Some(rx),
        };
        let ep = match w.rx.as_mut().expect("set above").await {
            Ok(ep) => ep,
            // The sender lives in the map until it is used: not reached.
            Err(_) => std::future::pending().await,
        };
        w.rx = None;
        Slot {
            slots: self.clone(),
            ep,
            done: false,
        }
    }

    /// A job became the app's own: it goes ahead of every background job.
    pub fn promote(&self, id: Uuid) {
        let mut s = self.lock();
        s.promoted.insert(id);
        if let Some(k) = s.keys.remove(&id) {
            if let Some(w) = s.waiting.remove(&k) {
                let key = (crate::queue::INTERACTIVE_PRIORITY, k.1, k.2);
                s.waiting.insert(key, w);
                s.keys.insert(id, key);
            }
        }
    }

    pub fn is_promoted(&self, id: Uuid) -> bool {
        self.lock().promoted.contains(&id)
    }

    /// The job ended: forget it.
    pub fn forget(&self, id: Uuid) {
        self.lock().promoted.remove(&id);
    }

    /// An endpoint came back, or a cool-down ran out: hand out what is free.
    pub fn wake(self: &Arc<Self>) {
        let mut s = self.lock();
        self.hand_out(&mut s);
    }

    fn give_back(self: &Arc<Self>, ep: usize, used: Used) {
        let mut s = self.lock();
        self.endpoints[ep].in_flight.fetch_sub(1, Ordering::SeqCst);
        let e = &mut s.eps[ep];
        e.free += 1;
        match used {
            Used::Answered(d) => {
                e.failures = 0;
                e.cool_until = None;
                let secs = d.as_secs_f64();
                e.ewma = Some(e.ewma.map_or(secs, |old| old * 0.8 + secs * 0.2));
            }
            Used::Failed => {
                e.failures = e.failures.saturating_add(1);
                let cool = Duration::from_millis(250)
                    .saturating_mul(1 << e.failures.min(8).saturating_sub(1))
                    .min(MAX_COOL);
                e.cool_until = Some(Instant::now() + cool);
                let me = self.clone();
                crate::tasks::spawn_named("ai-cool-down", async move {
                    tokio::time::sleep(cool).await;
                    me.wake();
                });
            }
            Used::Down | Used::Unused => {}
        }
        self.hand_out(&mut s);
    }

    /// Which waiter gets the next slot: the best ready one, unless that is
    /// background work while one of the app's waits unready (then the
    /// app's, which holds the slot until its input is there).
    fn next(s: &State) -> Option<Key> {
        let ready = s.waiting.iter().find(|(_, w)| w.2).map(|(k, _)| *k);
        let app_unready = s
            .waiting
            .iter()
            .take_while(|(k, _)| k.0 == crate::queue::INTERACTIVE_PRIORITY)
            .find(|(_, w)| !w.2)
            .map(|(k, _)| *k);
        match (ready, app_unready) {
            (Some(r), Some(u)) if r.0 != crate::queue::INTERACTIVE_PRIORITY => Some(u),
            (Some(r), _) => Some(r),
            (None, u) => u,
        }
    }

    /// Gives free slots to the best waiters.
    fn hand_out(&self, s: &mut State) {
        let now = Instant::now();
        while let Some(key) = Self::next(s) {
            let pick = (0..s.eps.len())
                .filter(|&i| {
                    let e = &s.eps[i];
                    e.free > 0
                        && self.endpoints[i].reachable()
                        && e.cool_until.is_none_or(|t| t <= now)
                })
                // Fastest first; one never measured counts as fast, so it
                // gets tried.
                .min_by(|&a, &b| {
                    let (ea, eb) = (s.eps[a].ewma.unwrap_or(0.0), s.eps[b].ewma.unwrap_or(0.0));
                    ea.partial_cmp(&eb)
                        .unwrap_or(std::cmp::Ordering::Equal)
                        .then(s.eps[b].free.cmp(&s.eps[a].free))
                });
            let Some(i) = pick else { return };
            let (id, tx, _) = s.waiting.remove(&key).expect("the key is a waiter's");
            s.keys.remove(&id);
            s.eps[i].free -= 1;
            self.endpoints[i].in_flight.fetch_add(1, Ordering::SeqCst);
            if tx.send(i).is_err() {
                // The waiter gave up in between: the slot stays free.
                s.eps[i].free += 1;
                self.endpoints[i].in_flight.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(n: usize) -> Vec<Arc<Endpoint>> {
        (0..n)
            .map(|i| Arc::new(Endpoint::new(format!("http://ai{i}"))))
            .collect()
    }

    #[tokio::test]
    async fn slots_go_to_the_best_waiter_and_an_app_request_first() {
        let slots = Slots::new(eps(1), 1);
        let held = slots.acquire(Uuid::new_v4(), 500, 1).await;
        let (bg, app) = (Uuid::new_v4(), Uuid::new_v4());
        let s1 = slots.clone();
        let background = tokio::spawn(async move { s1.acquire(bg, 500, 2).await });
        tokio::task::yield_now().await;
        let s2 = slots.clone();
        let on_demand = tokio::spawn(async move { s2.acquire(app, 0, 3).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        held.release(Used::Answered(Duration::from_millis(50)));
        let got = on_demand.await.unwrap();
        assert!(!background.is_finished(), "the app's request went first");
        got.release(Used::Answered(Duration::from_millis(50)));
        background.await.unwrap().release(Used::Unused);
    }

    #[tokio::test]
    async fn a_ready_app_job_goes_before_one_still_fetching_and_background_never_before_either() {
        let slots = Slots::new(eps(1), 1);
        let held = slots.acquire(Uuid::new_v4(), 500, 1).await;
        let (fetching, ready_app, bg) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let s = slots.clone();
        let first = tokio::spawn(async move { s.acquire_early(fetching, 0, 2).await });
        let s = slots.clone();
        let second = tokio::spawn(async move { s.acquire(ready_app, 0, 3).await });
        let s = slots.clone();
        let background = tokio::spawn(async move { s.acquire(bg, 500, 4).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        held.release(Used::Answered(Duration::from_millis(5)));
        let got = second.await.unwrap();
        assert!(!first.is_finished(), "the one still fetching waits");
        got.release(Used::Answered(Duration::from_millis(5)));
        // Now only the app's job still fetching and a ready background job
        // wait: the app's gets the slot, and holds it until it is ready.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!background.is_finished(), "background went before the app");
        slots.ready(fetching);
        first.await.unwrap().release(Used::Unused);
        background.await.unwrap().release(Used::Unused);
    }

    #[tokio::test]
    async fn a_promoted_waiter_moves_ahead() {
        let slots = Slots::new(eps(1), 1);
        let held = slots.acquire(Uuid::new_v4(), 5, 1).await;
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let s1 = slots.clone();
        let first = tokio::spawn(async move { s1.acquire(a, 500, 2).await });
        let s2 = slots.clone();
        let second = tokio::spawn(async move { s2.acquire(b, 500, 3).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        slots.promote(b);
        held.release(Used::Unused);
        let got = second.await.unwrap();
        assert!(!first.is_finished());
        drop(got);
        drop(first.await.unwrap());
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_no_slot_behind() {
        let slots = Slots::new(eps(1), 1);
        let held = slots.acquire(Uuid::new_v4(), 5, 1).await;
        let s1 = slots.clone();
        let gave_up = tokio::spawn(async move { s1.acquire(Uuid::new_v4(), 5, 2).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        gave_up.abort();
        let _ = gave_up.await;
        drop(held);
        let again =
            tokio::time::timeout(Duration::from_secs(1), slots.acquire(Uuid::new_v4(), 5, 3)).await;
        assert!(again.is_ok(), "the slot came back");
    }

    #[tokio::test]
    async fn a_failing_endpoint_cools_down_and_the_other_takes_the_work() {
        let slots = Slots::new(eps(2), 1);
        let a = slots.acquire(Uuid::new_v4(), 5, 1).await;
        let b = slots.acquire(Uuid::new_v4(), 5, 2).await;
        assert_ne!(a.ep, b.ep);
        let failing = a.ep;
        a.release(Used::Failed);
        b.release(Used::Answered(Duration::from_millis(10)));
        for i in 0..5 {
            let s = slots.acquire(Uuid::new_v4(), 5, 10 + i).await;
            assert_ne!(s.ep, failing, "a cooling endpoint got work");
            s.release(Used::Answered(Duration::from_millis(10)));
        }
    }
}
