//! Keeping the newest template: a long poll held open on the node (new tips
//! arrive at once), a refresh every `refresh` (so new fees reach miners), a
//! polling fallback for nodes without long polling, and exponential backoff
//! while the node is away — the pool keeps its miners on the last template
//! meanwhile and says so in the log once, not once per retry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{NodeError, Template, TemplateSource};

/// Exponential backoff: `initial`, doubled after each failure, at most `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff from `initial` up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { initial, max, next: initial }
    }

    /// The delay before the next try; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Back to `initial` after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// How the poller paces itself.
#[derive(Debug, Clone)]
pub struct PollerOptions {
    /// A fresh template at least this often.
    pub refresh: Duration,
    /// How often to ask for a template when the node offers no long polling.
    pub fallback_poll: Duration,
    /// The first retry delay while the node is away.
    pub backoff_initial: Duration,
    /// The longest retry delay.
    pub backoff_max: Duration,
}

impl Default for PollerOptions {
    fn default() -> Self {
        PollerOptions {
            refresh: Duration::from_secs(30),
            fallback_poll: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// The newest template, on a watch channel. Offers that would go back (a
/// lower height, or an unchanged template) are dropped, so the two loops of
/// the poller may race without harm.
#[derive(Debug)]
pub struct TemplateBoard {
    tx: watch::Sender<Option<Arc<Template>>>,
    node_up: AtomicBool,
}

impl Default for TemplateBoard {
    fn default() -> Self {
        TemplateBoard { tx: watch::Sender::new(None), node_up: AtomicBool::new(true) }
    }
}

impl TemplateBoard {
    /// An empty board.
    pub fn new() -> TemplateBoard {
        TemplateBoard::default()
    }

    /// A receiver that sees every template accepted from now on.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Template>>> {
        self.tx.subscribe()
    }

    /// The newest template.
    pub fn current(&self) -> Option<Arc<Template>> {
        self.tx.borrow().clone()
    }

    /// Offers a template; true when it replaced the current one.
    pub fn offer(&self, template: Template) -> bool {
        self.tx.send_if_modified(|current| {
            let replace = match current.as_deref() {
                None => true,
                Some(old) if template.height != old.height => template.height > old.height,
                // The same height on another tip: a reorganisation.
                Some(old) if template.previous_block_hash != old.previous_block_hash => true,
                Some(old) => {
                    template.coinbase_value != old.coinbase_value
                        || template.transactions.len() != old.transactions.len()
                        || template.transactions.iter().zip(&old.transactions).any(|(a, b)| a.txid != b.txid)
                        || template.bits != old.bits
                        || template.longpollid != old.longpollid
                }
            };
            if replace {
                *current = Some(Arc::new(template));
            }
            replace
        })
    }

    /// Whether the last call to the node succeeded.
    pub fn node_up(&self) -> bool {
        self.node_up.load(Ordering::Relaxed)
    }

    fn node_failed(&self, error: &NodeError, retry_in: Duration) {
        if self.node_up.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %error_chain(error), "lost the node; miners keep the last template while it retries");
        } else {
            tracing::debug!(error = %error_chain(error), ?retry_in, "the node is still away");
        }
    }

    fn node_answered(&self) {
        if !self.node_up.swap(true, Ordering::Relaxed) {
            tracing::info!("the node is back");
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Feeds a [`TemplateBoard`] from a [`TemplateSource`].
#[derive(Debug)]
pub struct TemplatePoller<S> {
    source: Arc<S>,
    board: Arc<TemplateBoard>,
    options: PollerOptions,
}

impl<S: TemplateSource> TemplatePoller<S> {
    /// A poller of `source` onto `board`.
    pub fn new(source: Arc<S>, board: Arc<TemplateBoard>, options: PollerOptions) -> TemplatePoller<S> {
        TemplatePoller { source, board, options }
    }

    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        tokio::join!(self.refresh_loop(&shutdown), self.long_poll_loop(&shutdown));
        tracing::debug!("template poller stopped");
    }

    /// A plain template now, then every `refresh`; retries with backoff.
    async fn refresh_loop(&self, shutdown: &CancellationToken) {
        let mut backoff = Backoff::new(self.options.backoff_initial, self.options.backoff_max);
        loop {
            let fetched = tokio::select! {
                _ = shutdown.cancelled() => return,
                fetched = self.source.get_template(None) => fetched,
            };
            let delay = match fetched {
                Ok(template) => {
                    self.board.node_answered();
                    backoff.reset();
                    if self.board.offer(template) {
                        tracing::debug!("template refreshed");
                    }
                    self.options.refresh
                }
                Err(error) => {
                    let delay = backoff.next_delay().min(self.options.refresh);
                    self.board.node_failed(&error, delay);
                    delay
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Long polls from the current template's id; without one, plain polls
    /// every `fallback_poll`.
    async fn long_poll_loop(&self, shutdown: &CancellationToken) {
        let mut backoff = Backoff::new(self.options.backoff_initial, self.options.backoff_max);
        let mut templates = self.board.subscribe();
        loop {
            let current = self.board.current();
            let Some(current) = current else {
                // Nothing yet: the refresh loop fetches the first one.
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = templates.changed() => continue,
                }
            };
            let fetched = match &current.longpollid {
                Some(id) => tokio::select! {
                    _ = shutdown.cancelled() => return,
                    fetched = self.source.get_template(Some(id)) => fetched,
                },
                None => {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(self.options.fallback_poll) => {}
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        fetched = self.source.get_template(None) => fetched,
                    }
                }
            };
            match fetched {
                Ok(template) => {
                    self.board.node_answered();
                    backoff.reset();
                    let same_id = template.longpollid.is_some() && template.longpollid == current.longpollid;
                    if self.board.offer(template) {
                        tracing::debug!("new template from the long poll");
                    } else if same_id {
                        // The node answered with nothing new: do not spin.
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(self.options.fallback_poll) => {}
                        }
                    }
                }
                Err(error) if error.is_timeout() => {}
                Err(error) => {
                    let delay = backoff.next_delay();
                    self.board.node_failed(&error, delay);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<_> = (0..4).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }
}
