//! Read-index rounds shared by concurrent reads: one leadership check answers every read of a
//! group that was waiting when the check began.
//!
//! # Model
//!
//! A linearizable read on the leader needs a read index: the leader confirms with a quorum that
//! it still leads, takes its commit index as it was when the check began, and answers once its
//! state machine has applied that far. openraft 0.9.25 runs one such check per
//! `Raft::ensure_linearizable` call: an empty AppendEntries to every other voter and a wait for a
//! quorum of answers. Under load that is two heartbeats and their answers per read per group,
//! several times the work of the read itself, and it grows with the number of reads rather than
//! with time.
//!
//! A [`ReadBarrier`] per group makes reads share checks, as etcd's read-index batching does:
//! - a read joins the queue of waiting reads and, if no check is running, starts one;
//! - a check takes every read queued so far, runs one `ensure_linearizable`, and gives each of
//!   them its outcome (the read index once applied, or the error: not the leader, no quorum,
//!   openraft stopped);
//! - reads that arrive while a check runs wait for the next check, which starts as soon as the
//!   running one ends.
//!
//! So under load a group runs one check at a time, each answering every read that arrived
//! during the previous one, and an idle group runs one check per read, as before.
//!
//! # Invariants
//!
//! - A read is answered only by a check that began after it was queued: the check's commit index
//!   is at least every write acknowledged before the read began, and its quorum round proves
//!   leadership at a moment after that. This is what makes sharing a check as strong as running
//!   one per read: a check already running when a read arrives never answers that read.
//! - At most one check per group runs at a time; every queued read is answered by the next one
//!   (or has given up waiting first).
//! - A read waits at most the client timeout, including the wait for a running check to end, and
//!   a check that does not finish within it fails its reads as unavailable, so a stuck check
//!   cannot hold later reads back forever. A checking task that panics leaves the queue idle,
//!   so the next read starts a new one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, RaftError};
use tokio::sync::oneshot;

use crate::types::{LogId, NodeId, Raft};

/// Why a shared read-index check did not confirm a read.
#[derive(Debug, Clone)]
pub enum ReadIndexError {
    /// openraft's answer: this node does not lead (with the leader it knows of), the quorum did
    /// not answer, or openraft stopped.
    Raft(Box<RaftError<NodeId, CheckIsLeaderError<NodeId, openraft::BasicNode>>>),
    /// The check did not finish within the timeout.
    TimedOut,
    /// The task running the checks ended without answering (it panicked).
    CheckFailed,
}

/// Outcome of one check: the read index (None before anything was committed) or the error.
pub type ReadIndexResult = Result<Option<LogId>, ReadIndexError>;

/// Counters of a group's read-index checks, for status and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadIndexStats {
    /// Reads that asked for a read index.
    pub reads: u64,
    /// Checks run (each one leadership round with the quorum).
    pub checks: u64,
}

/// The shared read-index checks of one group on one node. Cheap to clone.
#[derive(Clone)]
pub struct ReadBarrier {
    inner: Arc<Inner>,
}

struct Inner {
    raft: Raft,
    timeout: Duration,
    shared: bool,
    queue: Mutex<Queue>,
    reads: AtomicU64,
    checks: AtomicU64,
}

#[derive(Default)]
struct Queue {
    /// A task is running checks; it takes the queue before each one.
    running: bool,
    waiting: Vec<oneshot::Sender<ReadIndexResult>>,
}

impl ReadBarrier {
    /// A barrier for `raft`'s group; each check gives up after `timeout`. Unless `shared`,
    /// every read runs a check of its own (for comparison).
    pub fn new(raft: Raft, timeout: Duration, shared: bool) -> ReadBarrier {
        ReadBarrier {
            inner: Arc::new(Inner {
                raft,
                timeout,
                shared,
                queue: Mutex::new(Queue::default()),
                reads: AtomicU64::new(0),
                checks: AtomicU64::new(0),
            }),
        }
    }

    /// Waits until a leadership check that began after this call has confirmed this node as
    /// leader and its state machine has applied the commit index the check saw. Must be called
    /// inside a tokio runtime (it may spawn the checking task).
    pub async fn confirm(&self) -> ReadIndexResult {
        if !self.inner.shared {
            self.inner.reads.fetch_add(1, Ordering::Relaxed);
            return self.inner.check().await;
        }
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queue = self.inner.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.waiting.push(answer);
            !std::mem::replace(&mut queue.running, true)
        };
        self.inner.reads.fetch_add(1, Ordering::Relaxed);
        if start {
            tokio::spawn(Arc::clone(&self.inner).run_checks());
        }
        // A read waits at most the timeout, as it did for a check of its own, even when it
        // queued behind a running check. A sender dropped unanswered means the checking task
        // panicked (its guard dropped the queue).
        match tokio::time::timeout(self.inner.timeout, answered).await {
            Ok(Ok(result)) => result,
            Ok(Err(_dropped)) => Err(ReadIndexError::CheckFailed),
            Err(_elapsed) => Err(ReadIndexError::TimedOut),
        }
    }

    /// Reads and checks so far.
    pub fn stats(&self) -> ReadIndexStats {
        ReadIndexStats {
            reads: self.inner.reads.load(Ordering::Relaxed),
            checks: self.inner.checks.load(Ordering::Relaxed),
        }
    }
}

impl Inner {
    /// One leadership check with the quorum, and the wait for the state machine to apply the
    /// read index it found.
    async fn check(&self) -> ReadIndexResult {
        self.checks.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(self.timeout, self.raft.ensure_linearizable()).await {
            Err(_elapsed) => Err(ReadIndexError::TimedOut),
            Ok(outcome) => outcome.map_err(|error| ReadIndexError::Raft(Box::new(error))),
        }
    }

    /// Runs checks until no read is waiting. Each check answers exactly the reads queued before
    /// it began.
    async fn run_checks(self: Arc<Inner>) {
        // If a check panics, the guard lets the next read start a new task, and the reads
        // queued meanwhile see their senders dropped instead of waiting out the timeout.
        let guard = PanicGuard(&self);
        loop {
            let batch = {
                let mut queue = guard.0.queue.lock().unwrap_or_else(|e| e.into_inner());
                if queue.waiting.is_empty() {
                    // Under the lock, so a read queued after this starts a new task.
                    queue.running = false;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            let result = guard.0.check().await;
            for answer in batch {
                // A read that gave up waiting has dropped its receiver; nothing to do.
                let _ = answer.send(result.clone());
            }
        }
    }
}

/// Marks the queue idle when a check panics (a normal end does so itself, under the lock).
struct PanicGuard<'a>(&'a Inner);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queue = self.0.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.running = false;
            queue.waiting.clear();
        }
    }
}
