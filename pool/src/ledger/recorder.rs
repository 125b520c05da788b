//! Group commit: the Stratum sessions hand shares to one task through a
//! bounded channel; it commits them in batches — one transaction per batch,
//! closed after `linger` or `max_batch` shares, whichever comes first — and
//! only then completes each share's oneshot, so that a session answers
//! `true` only for a share that is on disk. One fsync serves a whole batch.
//!
//! The task ends when every [`ShareRecorder`] handle is dropped, after
//! committing what it already holds: stopping the sessions stops it cleanly.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{LedgerError, ShareRecord, ShareStore};

/// Tuning of the group commit.
#[derive(Debug, Clone)]
pub struct RecorderOptions {
    /// Shares that may wait in the channel; a full channel makes sessions
    /// wait (back-pressure), it never drops a share.
    pub capacity: usize,
    /// Most shares in one transaction.
    pub max_batch: usize,
    /// How long a batch stays open after its first share.
    pub linger: Duration,
    /// Tries of a failing commit before its shares are answered with an error.
    pub attempts: u32,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions { capacity: 16_384, max_batch: 1_024, linger: Duration::from_millis(2), attempts: 3 }
    }
}

impl RecorderOptions {
    /// The defaults, with the queue's bound from the configuration
    /// (`limits.share_queue`).
    pub fn from_limits(limits: &crate::config::Limits) -> RecorderOptions {
        RecorderOptions { capacity: limits.share_queue, ..RecorderOptions::default() }
    }
}

/// Why a share was not recorded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordError {
    /// The recorder has stopped (the pool is shutting down).
    #[error("the share recorder has stopped")]
    Stopped,
    /// The batch holding the share could not be committed.
    #[error("the share could not be stored")]
    Ledger(#[source] Arc<LedgerError>),
}

struct Pending {
    share: ShareRecord,
    done: oneshot::Sender<Result<(), RecordError>>,
}

/// A handle on the group-commit task; clone one into each session.
#[derive(Debug, Clone)]
pub struct ShareRecorder {
    tx: mpsc::Sender<Pending>,
}

impl ShareRecorder {
    /// Starts the task over `store`.
    pub fn spawn<S: ShareStore>(store: Arc<S>, options: RecorderOptions) -> (ShareRecorder, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(options.capacity.max(1));
        let task = tokio::spawn(commit_loop(store, rx, options));
        (ShareRecorder { tx }, task)
    }

    /// Records a share; returns once it is durably stored.
    pub async fn record(&self, share: ShareRecord) -> Result<(), RecordError> {
        let (done, outcome) = oneshot::channel();
        self.tx.send(Pending { share, done }).await.map_err(|_| RecordError::Stopped)?;
        outcome.await.map_err(|_| RecordError::Stopped)?
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("share", &self.share).finish_non_exhaustive()
    }
}

async fn commit_loop<S: ShareStore>(store: Arc<S>, mut rx: mpsc::Receiver<Pending>, options: RecorderOptions) {
    let max_batch = options.max_batch.max(1);
    let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let close_at = Instant::now() + options.linger;
        while batch.len() < max_batch {
            match tokio::time::timeout_at(close_at, rx.recv()).await {
                Ok(Some(pending)) => batch.push(pending),
                Ok(None) | Err(_) => break,
            }
        }
        let shares: Vec<ShareRecord> = batch.iter().map(|p| p.share.clone()).collect();
        let outcome = commit(&*store, &shares, options.attempts).await;
        tracing::trace!(shares = shares.len(), ok = outcome.is_ok(), "share batch");
        let outcome = outcome.map_err(|error| {
            tracing::error!(error = %error, shares = shares.len(), "cannot store a batch of shares");
            RecordError::Ledger(Arc::new(error))
        });
        for pending in batch.drain(..) {
            // A session that went away no longer waits: nothing to tell it.
            let _ = pending.done.send(outcome.clone());
        }
    }
    tracing::debug!("share recorder stopped");
}

async fn commit<S: ShareStore>(store: &S, shares: &[ShareRecord], attempts: u32) -> Result<(), LedgerError> {
    let mut delay = Duration::from_millis(20);
    let mut attempt = 1;
    loop {
        match store.record_shares(shares).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt >= attempts.max(1) => return Err(error),
            Err(error) => {
                tracing::warn!(error = %error, attempt, "storing shares failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MemoryStore;
    use std::time::SystemTime;

    fn share(n: u32) -> ShareRecord {
        ShareRecord {
            time: SystemTime::now(),
            address: format!("addr{}", n % 3),
            worker: "w".into(),
            difficulty: 1.0,
            height: 1,
            job_id: "1".into(),
            block_hash: None,
        }
    }

    #[tokio::test]
    async fn batches_many_shares_and_answers_each() {
        let store = Arc::new(MemoryStore::new());
        let options = RecorderOptions { linger: Duration::from_millis(20), ..RecorderOptions::default() };
        let (recorder, task) = ShareRecorder::spawn(store.clone(), options);
        let mut waits = Vec::new();
        for n in 0..200 {
            let recorder = recorder.clone();
            waits.push(tokio::spawn(async move { recorder.record(share(n)).await }));
        }
        for wait in waits {
            wait.await.expect("no panic").expect("recorded");
        }
        assert_eq!(store.shares().len(), 200);
        assert!(store.batches() < 20, "{} batches for 200 shares", store.batches());
        drop(recorder);
        task.await.expect("the task ends when the handles are gone");
    }

    #[tokio::test]
    async fn a_failed_batch_is_reported_after_retries() {
        let store = Arc::new(MemoryStore::new());
        store.fail_next_batches(2);
        let (recorder, _task) = ShareRecorder::spawn(store.clone(), RecorderOptions::default());
        recorder.record(share(0)).await.expect("the third try succeeds");
        store.fail_next_batches(3);
        assert!(matches!(recorder.record(share(1)).await, Err(RecordError::Ledger(_))));
        assert_eq!(store.shares().len(), 1);
    }
}
