//! The audit writer: group commit on top of any [`Store`].
//!
//! Callers hand an event to [`AuditWriter::record`] and wait. One task collects whatever events are queued,
//! seals and appends them in one transaction (one fsync), and then answers every waiter. Under load a batch
//! grows to [`MAX_BATCH`] events, so the cost of durability is shared instead of paid per request; idle, a lone
//! event is written at once. A caller is only answered after its event is durable, which is what lets the server
//! return a token only once its issuance is in the log.

use crate::{Result, Store, StoreError};
use std::sync::Arc;
use std::time::Instant;
use tessera_core::audit::NewEvent;
use tokio::sync::{mpsc, oneshot};

/// Most events written in one transaction.
pub const MAX_BATCH: usize = 512;
/// Most events waiting; callers beyond this wait for room (backpressure).
pub const QUEUE_CAPACITY: usize = 16_384;

type Reply = oneshot::Sender<Result<i64, String>>;

/// A handle to the audit writer task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    tx: mpsc::Sender<(NewEvent, Reply)>,
}

impl AuditWriter {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(store, rx));
        Self { tx }
    }

    /// Appends `event` and waits until it is durable; returns its sequence number.
    pub async fn record(&self, event: NewEvent) -> Result<i64> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((event, reply))
            .await
            .map_err(|_| StoreError::AuditClosed)?;
        metrics::gauge!("tessera_audit_queue_depth").set((QUEUE_CAPACITY - self.tx.capacity()) as f64);
        match answer.await {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(message)) => Err(StoreError::AuditFailed(message)),
            Err(_) => Err(StoreError::AuditClosed),
        }
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<(NewEvent, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (events, replies): (Vec<NewEvent>, Vec<Reply>) = batch.drain(..).unzip();
        let size = events.len();
        let started = Instant::now();
        let outcome = store.append_audit(events).await;
        metrics::histogram!("tessera_audit_flush_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("tessera_audit_batch_size").record(size as f64);
        metrics::gauge!("tessera_audit_queue_depth").set(rx.len() as f64);
        match outcome {
            Ok(sealed) => {
                for (reply, event) in replies.into_iter().zip(sealed) {
                    let _ = reply.send(Ok(event.seq));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, events = size, "audit append failed; the callers are refused");
                metrics::counter!("tessera_audit_flush_failures_total").increment(1);
                let message = err.to_string();
                for reply in replies {
                    let _ = reply.send(Err(message.clone()));
                }
            }
        }
    }
}
