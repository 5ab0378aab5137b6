//! Transparent batching (a DataLoader per endpoint): callers ask for one record; the
//! batcher waits until the limiter has room, gathers every request queued meanwhile (up to
//! the endpoint's maximum) into one call, and hands each caller its own result. Under load
//! the queue fills while the limiter waits, so batches fill by themselves; while the budget
//! paces the calls the batcher also gathers a little longer, and takes the limiter's room
//! itself before forming the batch (so one formed early does not wait in the limiter while
//! later inputs start another); a lone request goes out at once.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

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
                if held.len() < max && limiter.is_tight() {
                    gather(&mut rx, &mut held, max).await;
                }
                // The room is taken here, and the batch formed once it is ours: what
                // arrived while another batcher took the room before us goes along.
                limiter.acquire(Bucket::Standard).await;
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

tokio::task_local! {
    /// Set while a batch is flushed: its batcher took the limiter's room for the first call.
    static PREPAID: Cell<bool>;
}

/// Whether this call's room in the limiter was taken by its batcher already (true once per
/// flush; a batch's inputs sent one by one after a refusal take their own).
pub(crate) fn take_prepaid() -> bool {
    PREPAID.try_with(|p| p.replace(false)).unwrap_or(false)
}

/// The longest a batcher gathers, and how long a pause in arrivals ends it: while the
/// budget paces the calls, inputs that keep coming are worth the wait (a burst's batches
/// fill instead of going out a fifth full); a pause means the flow has stopped.
const GATHER: Duration = Duration::from_millis(1_000);
const GATHER_PAUSE: Duration = Duration::from_millis(250);

/// Takes inputs until `max` are held, arrivals pause, or `GATHER` has passed.
async fn gather<I, O>(
    rx: &mut mpsc::UnboundedReceiver<(I, Reply<O>)>,
    held: &mut Vec<(I, Reply<O>)>,
    max: usize,
) {
    let until = tokio::time::Instant::now() + GATHER;
    while held.len() < max {
        let pause = tokio::time::Instant::now() + GATHER_PAUSE;
        match tokio::time::timeout_at(pause.min(until), rx.recv()).await {
            Ok(Some(item)) => held.push(item),
            Ok(None) | Err(_) => return,
        }
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
    match PREPAID.scope(Cell::new(true), flush(inputs)).await {
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

/// The `objectWriteTraceId` paybridge gives the `i`-th input of a batch create. With one on
/// every input, HubSpot answers a partial failure with a 207 whose errors name the trace
/// id, instead of failing the whole batch (Using Object APIs, "Multi-status errors for
/// batch create requests": "any unique string").
pub(crate) fn trace_id(i: usize) -> String {
    i.to_string()
}

/// Pairs the inputs of a batch create with HubSpot's answer, whose `results` come in no
/// promised order (HubSpot staff, hubspot-api-nodejs#190) and may or may not echo each
/// input's `objectWriteTraceId` (the schema has the field; the guide's example of a success
/// does not show it). In this order: errors by the trace id they name; results by an echoed
/// trace id; results by `matches(input index, result)` (a property HubSpot returns as
/// written); then, if exactly one input and one result (or error) are left, those two.
/// An input left over is a retryable error: its record may exist, and the step that asked
/// for it finds it again by its key before creating anything.
pub(crate) fn pair_created<T>(
    route: &'static str,
    inputs: usize,
    results: Vec<(Option<String>, T)>,
    errors: Vec<super::answer::ItemError>,
    matches: impl Fn(usize, &T) -> bool,
) -> Vec<Result<T, HubspotError>> {
    let mut paired: Vec<Option<Result<T, HubspotError>>> = (0..inputs).map(|_| None).collect();
    let index = |trace: &str| trace.parse::<usize>().ok().filter(|i| *i < inputs);
    let mut loose_errors = Vec::new();
    for e in errors {
        let named: Vec<usize> = e.trace_ids.iter().filter_map(|t| index(t)).collect();
        if named.is_empty() {
            loose_errors.push(e.error);
            continue;
        }
        for i in named {
            paired[i].get_or_insert_with(|| Err(e.error.clone()));
        }
    }
    let mut loose_results = Vec::new();
    for (trace, result) in results {
        match trace.as_deref().and_then(index) {
            Some(i) if paired[i].is_none() => paired[i] = Some(Ok(result)),
            _ => loose_results.push(result),
        }
    }
    let mut unplaced = Vec::new();
    for result in loose_results {
        match (0..inputs).find(|i| paired[*i].is_none() && matches(*i, &result)) {
            Some(i) => paired[i] = Some(Ok(result)),
            None => unplaced.push(result),
        }
    }
    let open: Vec<usize> = (0..inputs).filter(|i| paired[*i].is_none()).collect();
    if let [only] = open[..] {
        if unplaced.len() == 1 && loose_errors.is_empty() {
            paired[only] = unplaced.pop().map(Ok);
        } else if loose_errors.len() == 1 && unplaced.is_empty() {
            paired[only] = loose_errors.pop().map(Err);
        }
    }
    paired
        .into_iter()
        .map(|p| {
            p.unwrap_or_else(|| {
                Err(HubspotError::Retryable {
                    route,
                    status: None,
                    message: "the created record cannot be told apart in HubSpot's answer".into(),
                    retry_after: None,
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hubspot::answer::ItemError;

    fn conflict(trace: &str) -> ItemError {
        ItemError {
            ids: Vec::new(),
            trace_ids: vec![trace.to_owned()],
            error: HubspotError::Terminal {
                route: "r",
                status: 409,
                category: "CONFLICT".into(),
                message: "taken".into(),
                correlation_id: None,
            },
        }
    }

    #[test]
    fn inputs_are_paired_by_trace_id_then_by_property_then_by_elimination() {
        let keys = ["a", "b", "c", "d"];
        // Reversed, one echoed trace id, one error, one result matched by elimination only.
        let results = vec![
            (None, "?".to_owned()),
            (None, "c".to_owned()),
            (Some("0".to_owned()), "first".to_owned()),
        ];
        let paired = pair_created("r", 4, results, vec![conflict("1")], |i, r: &String| {
            r == keys[i]
        });
        let shown: Vec<String> = paired
            .iter()
            .map(|p| match p {
                Ok(r) => r.clone(),
                Err(e) => e.category().unwrap_or("retryable").to_owned(),
            })
            .collect();
        assert_eq!(shown, ["first", "CONFLICT", "c", "?"]);
    }

    #[test]
    fn what_cannot_be_told_apart_is_retried_not_guessed() {
        let results = vec![(None, "x".to_owned()), (None, "y".to_owned())];
        let paired = pair_created("r", 2, results, Vec::new(), |_, _| false);
        assert!(
            paired
                .iter()
                .all(|p| matches!(p, Err(e) if !e.is_terminal()))
        );
    }
}
