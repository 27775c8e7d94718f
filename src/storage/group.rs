//! Group commit: write transactions that arrive while another commit is
//! in progress share the next commit, so N concurrent writers pay one
//! fsync (and one fsync per directory they renamed files into) instead of
//! N. A caller still gets its answer only after that commit, so a 201
//! still means "on disk".
//!
//! The scheme is LevelDB's writer queue: a writer pushes its job, then
//! takes the commit lock; whoever holds it drains every queued job into
//! one transaction. No thread of its own, so nothing outlives the `Store`.
//!
//! Jobs are `Fn`, not `FnOnce`: when one job of a batch fails (or panics),
//! the batch is aborted and every job runs again in a transaction of its
//! own, so a failing job never leaves half its writes in someone else's
//! commit and the others still succeed. Jobs must therefore be
//! repeatable: they read what they need from the transaction.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard,
    },
};

use redb::{Database, Durability, WriteTransaction};

use super::{panic_text, StorageError};

/// Enough to amortise a commit; small enough that one batch's transaction
/// stays short for the readers of its results.
const MAX_BATCH: usize = 256;

#[derive(Default)]
pub struct Group {
    queue: Mutex<Vec<Box<dyn Pending>>>,
    commit: Mutex<()>,
    /// Commits made, to compare with writes asked for (metrics, tests).
    commits: AtomicU64,
}

/// What a write asks of its commit.
#[derive(Clone, Debug, Default)]
pub struct Needs {
    /// fsync the commit (`false`: durable with the next durable commit).
    pub durable: bool,
    /// fsync this directory before committing: a file renamed into it
    /// must not be named by a durable row before its name is durable.
    pub sync_dir: Option<PathBuf>,
}

/// A job with its result type erased, so one batch can hold many kinds.
trait Pending: Send {
    fn needs(&self) -> &Needs;
    /// Runs the job in `txn`, keeping its result; `false` if it failed.
    fn run(&mut self, txn: &WriteTransaction) -> bool;
    /// Sends the kept result to the waiting caller.
    fn deliver(self: Box<Self>);
    /// Sends `err` instead of any result.
    fn fail(self: Box<Self>, err: StorageError);
}

struct Job<T, E, F> {
    f: F,
    needs: Needs,
    out: Option<Result<T, E>>,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> Pending for Job<T, E, F>
where
    T: Send,
    E: From<StorageError> + Send,
    F: Fn(&WriteTransaction) -> Result<T, E> + Send,
{
    fn needs(&self) -> &Needs {
        &self.needs
    }

    fn run(&mut self, txn: &WriteTransaction) -> bool {
        let r = match catch_unwind(AssertUnwindSafe(|| (self.f)(txn))) {
            Ok(r) => r,
            Err(p) => {
                Err(StorageError::Task(format!("a write panicked: {}", panic_text(&p))).into())
            }
        };
        let ok = r.is_ok();
        self.out = Some(r);
        ok
    }

    fn deliver(self: Box<Self>) {
        if let Some(out) = self.out {
            let _ = self.reply.send(out);
        }
    }

    fn fail(self: Box<Self>, err: StorageError) {
        let _ = self.reply.send(Err(err.into()));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Group {
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Runs `f` in a shared transaction and returns once it is committed.
    /// Blocks: call it from a blocking thread.
    pub fn write<T, E, F>(&self, db: &Database, needs: Needs, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        lock(&self.queue).push(Box::new(Job {
            f,
            needs,
            out: None,
            reply,
        }));
        let _leader = lock(&self.commit);
        loop {
            // Done by an earlier leader, or by us in the batch before. The
            // leader stops once its own write is answered, so under steady
            // load no caller keeps committing for everyone else.
            match answer.try_recv() {
                Ok(out) => return out,
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                    return Err(StorageError::Task("write abandoned".into()).into())
                }
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
            }
            // The queue is in arrival order: ours is in a batch soon.
            let batch: Vec<_> = {
                let mut q = lock(&self.queue);
                let n = q.len().min(MAX_BATCH);
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                return Err(StorageError::Task("write lost from the queue".into()).into());
            }
            self.run_batch(db, batch);
        }
    }

    fn run_batch(&self, db: &Database, mut batch: Vec<Box<dyn Pending>>) {
        let durable = batch.iter().any(|j| j.needs().durable);
        let mut dirs: Vec<&Path> = batch
            .iter()
            .filter_map(|j| j.needs().sync_dir.as_deref())
            .collect();
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            if let Err(e) = fsync_dir(dir) {
                // Only the jobs that needed this directory fail.
                let dir = dir.to_path_buf();
                let (bad, good): (Vec<_>, Vec<_>) = batch
                    .into_iter()
                    .partition(|j| j.needs().sync_dir.as_deref() == Some(dir.as_path()));
                for j in bad {
                    j.fail(StorageError::Db(redb::Error::Io(std::io::Error::new(
                        e.kind(),
                        e.to_string(),
                    ))));
                }
                return self.run_batch(db, good);
            }
        }
        if batch.is_empty() {
            return;
        }
        if batch.len() == 1 {
            return self.run_alone(db, batch.pop().expect("one job"));
        }
        let together = (|| -> Result<bool, StorageError> {
            let mut txn = db.begin_write()?;
            if !durable {
                txn.set_durability(Durability::None)
                    .map_err(|e| StorageError::Task(e.to_string()))?;
            }
            for job in batch.iter_mut() {
                if !job.run(&txn) {
                    txn.abort()?;
                    return Ok(false);
                }
            }
            txn.commit()?;
            self.commits.fetch_add(1, Ordering::Relaxed);
            Ok(true)
        })();
        match together {
            Ok(true) => batch.into_iter().for_each(|j| j.deliver()),
            // A job failed or the commit did: each job alone, so each gets
            // its own answer and the good ones still land.
            Ok(false) | Err(_) => batch.into_iter().for_each(|j| self.run_alone(db, j)),
        }
    }

    fn run_alone(&self, db: &Database, mut job: Box<dyn Pending>) {
        let attempt = (|| -> Result<bool, StorageError> {
            let mut txn = db.begin_write()?;
            if !job.needs().durable {
                txn.set_durability(Durability::None)
                    .map_err(|e| StorageError::Task(e.to_string()))?;
            }
            if job.run(&txn) {
                txn.commit()?;
                self.commits.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            } else {
                txn.abort()?;
                Ok(false)
            }
        })();
        match attempt {
            Ok(_) => job.deliver(),
            Err(e) => job.fail(e),
        }
    }
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, thread, time::Duration};

    use redb::{ReadableDatabase, ReadableTable, TableDefinition};

    use super::*;

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    type BoxedJob = Box<dyn Fn(&WriteTransaction) -> Result<u64, StorageError> + Send + Sync>;

    fn db() -> (Arc<Database>, Arc<Group>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("db.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap();
        txn.commit().unwrap();
        (Arc::new(db), Arc::default(), dir)
    }

    fn durable() -> Needs {
        Needs {
            durable: true,
            sync_dir: None,
        }
    }

    fn put(k: u64) -> impl Fn(&WriteTransaction) -> Result<u64, StorageError> {
        move |txn| {
            txn.open_table(T)?.insert(k, k * 10)?;
            Ok(k)
        }
    }

    fn stored(db: &Database) -> Vec<u64> {
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(T).unwrap();
        t.iter().unwrap().map(|r| r.unwrap().0.value()).collect()
    }

    /// Runs 9 writers while a first write holds the commit: they are
    /// queued by then, so they share one commit instead of nine.
    fn with_queued_behind_first(
        db: &Arc<Database>,
        group: &Arc<Group>,
        jobs: Vec<BoxedJob>,
    ) -> Vec<Result<u64, StorageError>> {
        let n = jobs.len();
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let first = {
            let (db, g, g2, s) = (db.clone(), group.clone(), group.clone(), started.clone());
            thread::spawn(move || {
                g.write(&db, durable(), move |txn| {
                    s.store(true, Ordering::SeqCst);
                    while lock(&g2.queue).len() < n {
                        thread::sleep(Duration::from_millis(1));
                    }
                    put(1000)(txn)
                })
            })
        };
        while !started.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(1));
        }
        let others: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                let (db, g) = (db.clone(), group.clone());
                thread::spawn(move || g.write(&db, durable(), job))
            })
            .collect();
        assert_eq!(first.join().unwrap().unwrap(), 1000);
        others.into_iter().map(|t| t.join().unwrap()).collect()
    }

    #[test]
    fn concurrent_writes_share_one_commit() {
        let (db, group, _dir) = db();
        let jobs = (1..=9u64).map(|k| Box::new(put(k)) as _).collect();
        let results = with_queued_behind_first(&db, &group, jobs);
        let keys: Vec<u64> = results.into_iter().map(Result::unwrap).collect();
        assert_eq!(keys, (1..=9).collect::<Vec<_>>());
        assert_eq!(group.commits(), 2, "the first alone, then nine together");
        let mut all = (1..=9).collect::<Vec<_>>();
        all.push(1000);
        assert_eq!(stored(&db), all);
    }

    #[test]
    fn a_failing_or_panicking_job_leaves_no_writes_and_the_others_land() {
        let (db, group, _dir) = db();
        let mut jobs: Vec<BoxedJob> = (1..=4u64).map(|k| Box::new(put(k)) as _).collect();
        jobs.insert(
            2,
            Box::new(|txn: &WriteTransaction| {
                txn.open_table(T)?.insert(77, 0)?;
                Err(StorageError::Corrupt("refused after writing".into()))
            }),
        );
        jobs.push(Box::new(|txn: &WriteTransaction| {
            txn.open_table(T)?.insert(88, 0)?;
            panic!("job exploded")
        }));
        let results = with_queued_behind_first(&db, &group, jobs);
        let shown: Vec<String> = results
            .iter()
            .map(|r| match r {
                Ok(k) => k.to_string(),
                Err(e) => e.to_string(),
            })
            .collect();
        assert_eq!(shown[..2], ["1", "2"]);
        assert!(shown[2].contains("refused after writing"), "{shown:?}");
        assert_eq!(shown[3..5], ["3", "4"]);
        assert!(shown[5].contains("job exploded"), "{shown:?}");
        assert_eq!(stored(&db), vec![1, 2, 3, 4, 1000]);
    }

    #[test]
    fn a_directory_that_cannot_be_synced_fails_only_its_writes() {
        let (db, group, dir) = db();
        let gone = dir.path().join("missing");
        let bad = group.write(
            &db,
            Needs {
                durable: true,
                sync_dir: Some(gone),
            },
            put(5),
        );
        assert!(matches!(bad, Err(StorageError::Db(redb::Error::Io(_)))));
        let good = group.write(
            &db,
            Needs {
                durable: true,
                sync_dir: Some(dir.path().to_path_buf()),
            },
            put(6),
        );
        assert_eq!(good.unwrap(), 6);
        assert_eq!(stored(&db), vec![6]);
    }
}
