//! Transparent batching (a DataLoader per endpoint): callers ask for one record; the
//! batcher waits until the limiter has room, gathers every request queued meanwhile (up to
//! the endpoint's maximum) into one call, and hands each caller its own result. Under load
//! the queue fills while the limiter waits, so batches fill by themselves; a lone request
//! goes out at once.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::HubspotError;
use super::limiter::{Bucket, Limiter};

type Reply<O> = oneshot::Sender<Result<O, HubspotError>>;

/// One call's outcome: per input (aligned with the inputs), or the whole call failed.
pub type BatchResult<O> = Result<Vec<Result<O, HubspotError>>, HubspotError>;

pub struct Batcher<I, O> {
    tx: mpsc::UnboundedSender<(I, Reply<O>)>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<I, O> Batcher<I, O>
where
    I: Clone + Send + 'static,
    O: Send + 'static,
{
    /// `conflicts(a, b)`: the two inputs may not share a call (e.g. the same record id).
    pub fn spawn<F, Fut>(
        limiter: Arc<Limiter>,
        max: usize,
        conflicts: fn(&I, &I) -> bool,
        flush: F,
    ) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = BatchResult<O>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<(I, Reply<O>)>();
        let flush = Arc::new(flush);
        tokio::spawn(async move {
            let mut held: Vec<(I, Reply<O>)> = Vec::new();
            loop {
                if held.is_empty() {
                    match rx.recv().await {
                        Some(item) => held.push(item),
                        None => return,
                    }
                }
                limiter.ready(Bucket::Standard).await;
                while let Ok(item) = rx.try_recv() {
                    held.push(item);
                }
                // Take up to `max` inputs that do not conflict; the rest wait for the next call.
                let mut batch: Vec<(I, Reply<O>)> = Vec::new();
                let mut rest = Vec::new();
                for item in held.drain(..) {
                    if batch.len() < max && !batch.iter().any(|(b, _)| conflicts(b, &item.0)) {
                        batch.push(item);
                    } else {
                        rest.push(item);
                    }
                }
                held = rest;
                tokio::spawn(run(flush.clone(), batch));
            }
        });
        Self { tx }
    }

    pub async fn call(&self, input: I) -> Result<O, HubspotError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send((input, reply)).map_err(|_| closed_error())?;
        answer.await.map_err(|_| closed_error())?
    }
}

fn closed_error() -> HubspotError {
    HubspotError::Retryable {
        route: "batcher",
        status: None,
        message: "the HubSpot client is shutting down".into(),
        retry_after: None,
    }
}

async fn run<I, O, F, Fut>(flush: Arc<F>, batch: Vec<(I, Reply<O>)>)
where
    I: Clone + Send + 'static,
    O: Send + 'static,
    F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = BatchResult<O>> + Send + 'static,
{
    let inputs: Vec<I> = batch.iter().map(|(i, _)| i.clone()).collect();
    let n = inputs.len();
    match flush(inputs).await {
        Ok(results) => {
            for ((_, reply), result) in batch.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        // A terminal error for a whole batch may be one bad input: send each alone so one
        // poisoned record cannot fail the others.
        Err(e) if e.is_terminal() && n > 1 => {
            tracing::warn!(inputs = n, error = %e, "batch refused; retrying its inputs one by one");
            let mut singles = Vec::new();
            for (input, reply) in batch {
                let flush = flush.clone();
                singles.push(tokio::spawn(async move {
                    let result = match flush(vec![input]).await {
                        Ok(mut r) if r.len() == 1 => r.remove(0),
                        Ok(_) => Err(closed_error()),
                        Err(e) => Err(e),
                    };
                    let _ = reply.send(result);
                }));
            }
            for s in singles {
                let _ = s.await;
            }
        }
        Err(e) => {
            for (_, reply) in batch {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
