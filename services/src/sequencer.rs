//! The sequencer puts commands in one order and has the node apply them: in
//! memory at once (the core lock is the order), or through the region's Redis
//! log (the stream is the order, shared by every node of the region).

use std::sync::Arc;

use crate::command::{Envelope, Outcome};
use crate::durable::RedisLog;
use crate::error::ServerError;
use crate::node::NodeState;

/// Where this node's commands are ordered.
pub enum Sequencer {
    /// This process only: applied as they arrive.
    Memory,
    /// The region's log in Redis, read back by this node's log reader.
    Redis(Arc<RedisLog>),
}

impl Sequencer {
    /// Orders `envelope` and returns its outcome once this node applied it.
    pub async fn submit(
        &self,
        node: &NodeState,
        envelope: Envelope,
    ) -> Result<Outcome, ServerError> {
        match self {
            Sequencer::Memory => node.apply(envelope, &mut ()),
            Sequencer::Redis(log) => log.submit(envelope).await,
        }
    }

    /// Refuses new commands (shutdown); callers waiting get Unavailable.
    pub fn close(&self) {
        if let Sequencer::Redis(log) = self {
            log.close();
        }
    }
}
