//! [`MemoryNode`]: the node's twin for tests — templates set by hand, long
//! polls that wake when one changes, blocks kept, and an off switch.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use bitcoin::{Block, BlockHash};
use tokio::sync::Notify;

use super::{BlockSubmitter, ChainQuery, NetworkInfo, NodeError, SubmitOutcome, Template, TemplateSource};

#[derive(Debug, Default)]
struct State {
    template: Option<Template>,
    reachable: bool,
    submitted: Vec<Block>,
    confirmations: HashMap<BlockHash, i64>,
    tip: Option<(BlockHash, u32)>,
    template_calls: usize,
    network: Option<NetworkInfo>,
}

/// An in-memory node.
#[derive(Debug)]
pub struct MemoryNode {
    state: Mutex<State>,
    changed: Notify,
}

impl Default for MemoryNode {
    fn default() -> Self {
        MemoryNode { state: Mutex::new(State { reachable: true, ..State::default() }), changed: Notify::new() }
    }
}

impl MemoryNode {
    /// A reachable node with no template yet.
    pub fn new() -> MemoryNode {
        MemoryNode::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("no test panics while holding the node's lock")
    }

    /// Sets the template it serves, waking long polls.
    pub fn set_template(&self, template: Template) {
        self.lock().template = Some(template);
        self.changed.notify_waiters();
    }

    /// Turns the node on or off; off, every call fails.
    pub fn set_reachable(&self, reachable: bool) {
        self.lock().reachable = reachable;
        self.changed.notify_waiters();
    }

    /// Sets a block's confirmations (`-1`: off the active chain).
    pub fn set_confirmations(&self, hash: BlockHash, confirmations: i64) {
        self.lock().confirmations.insert(hash, confirmations);
    }

    /// Sets the tip.
    pub fn set_tip(&self, hash: BlockHash, height: u32) {
        self.lock().tip = Some((hash, height));
    }

    /// The blocks submitted so far.
    pub fn submitted(&self) -> Vec<Block> {
        self.lock().submitted.clone()
    }

    /// Sets what `network_info` answers.
    pub fn set_network_info(&self, info: NetworkInfo) {
        self.lock().network = Some(info);
    }

    /// How many `getblocktemplate` calls were answered.
    pub fn template_calls(&self) -> usize {
        self.lock().template_calls
    }
}

impl TemplateSource for MemoryNode {
    async fn get_template(&self, longpoll: Option<&str>) -> Result<Template, NodeError> {
        loop {
            let notified = self.changed.notified();
            {
                let mut state = self.lock();
                if !state.reachable {
                    return Err(NodeError::Unreachable);
                }
                if let Some(template) = &state.template {
                    let newer = longpoll.is_none_or(|id| template.longpollid.as_deref() != Some(id));
                    if newer {
                        let template = template.clone();
                        state.template_calls += 1;
                        return Ok(template);
                    }
                } else if longpoll.is_none() {
                    return Err(NodeError::Unreachable);
                }
            }
            notified.await;
        }
    }
}

impl BlockSubmitter for MemoryNode {
    async fn submit_block(&self, block: &Block) -> Result<SubmitOutcome, NodeError> {
        let mut state = self.lock();
        if !state.reachable {
            return Err(NodeError::Unreachable);
        }
        let hash = block.block_hash();
        if state.submitted.iter().any(|b| b.block_hash() == hash) {
            return Ok(SubmitOutcome::Rejected("duplicate".into()));
        }
        state.submitted.push(block.clone());
        state.confirmations.entry(hash).or_insert(1);
        Ok(SubmitOutcome::Accepted)
    }
}

impl ChainQuery for MemoryNode {
    async fn tip(&self) -> Result<(BlockHash, u32), NodeError> {
        let state = self.lock();
        if !state.reachable {
            return Err(NodeError::Unreachable);
        }
        state.tip.ok_or(NodeError::Unreachable)
    }

    async fn confirmations(&self, hash: &BlockHash) -> Result<Option<i64>, NodeError> {
        let state = self.lock();
        if !state.reachable {
            return Err(NodeError::Unreachable);
        }
        Ok(state.confirmations.get(hash).copied())
    }

    async fn network_info(&self) -> Result<Option<NetworkInfo>, NodeError> {
        let state = self.lock();
        if !state.reachable {
            return Err(NodeError::Unreachable);
        }
        Ok(state.network)
    }
}
