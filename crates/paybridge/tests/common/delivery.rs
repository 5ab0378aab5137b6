//! Stripe's side of a long delivery: signed webhooks posted by several concurrent senders to
//! one or more servers (replicas behind a load balancer), round-robin, paced, and delivered
//! again when not answered 200 (a server killed mid-request, or not up yet), as Stripe
//! retries until an endpoint acknowledges.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::post_signed_to;

pub struct Delivery {
    targets: Arc<Mutex<Vec<String>>>,
    acknowledged: Arc<AtomicUsize>,
    /// 200s per target (by index in the targets).
    by_target: Arc<Mutex<Vec<usize>>>,
    posters: Vec<tokio::task::JoinHandle<()>>,
}

impl Delivery {
    /// Starts `senders` tasks that post every event of `events` until each was answered
    /// 200. The n-th post (retries included) goes to target `n % targets.len()`; a sender
    /// waits `pause` after each post (pacing), and an event not acknowledged goes back at
    /// the end of the queue.
    pub fn start(
        events: Vec<Value>,
        targets: Vec<String>,
        senders: usize,
        pause: Duration,
    ) -> Delivery {
        let queue = Arc::new(Mutex::new(VecDeque::from(events)));
        let by_target = Arc::new(Mutex::new(vec![0; targets.len()]));
        let targets = Arc::new(Mutex::new(targets));
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let turn = Arc::new(AtomicUsize::new(0));
        let posters = (0..senders)
            .map(|_| {
                let (queue, targets, acknowledged, by_target, turn) = (
                    queue.clone(),
                    targets.clone(),
                    acknowledged.clone(),
                    by_target.clone(),
                    turn.clone(),
                );
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    loop {
                        let Some(event) = queue.lock().ok().and_then(|mut q| q.pop_front()) else {
                            return;
                        };
                        let (index, url) = {
                            let t = targets.lock().expect("targets");
                            let i = turn.fetch_add(1, Ordering::Relaxed) % t.len();
                            (i, t[i].clone())
                        };
                        let body = serde_json::to_vec(&event).expect("json");
                        match post_signed_to(&client, &url, body).await {
                            Ok(r) if r.status() == 200 => {
                                acknowledged.fetch_add(1, Ordering::Relaxed);
                                if let Ok(mut b) = by_target.lock() {
                                    b[index] += 1;
                                }
                            }
                            // Not acknowledged: Stripe delivers it again later.
                            _ => {
                                if let Ok(mut q) = queue.lock() {
                                    q.push_back(event);
                                }
                            }
                        }
                        tokio::time::sleep(pause).await;
                    }
                })
            })
            .collect();
        Delivery {
            targets,
            acknowledged,
            by_target,
            posters,
        }
    }

    /// Deliveries answered 200 so far.
    pub fn acknowledged(&self) -> usize {
        self.acknowledged.load(Ordering::Relaxed)
    }

    /// 200s per target so far.
    pub fn acknowledged_by_target(&self) -> Vec<usize> {
        self.by_target.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Target `index` now answers at `url` (a restarted server on a new port).
    pub fn retarget(&self, index: usize, url: String) {
        if let Ok(mut t) = self.targets.lock() {
            t[index] = url;
        }
    }

    /// Waits until every event has been acknowledged; the 200s per target.
    pub async fn finish(mut self) -> Vec<usize> {
        for p in std::mem::take(&mut self.posters) {
            p.await.expect("a sender task");
        }
        self.acknowledged_by_target()
    }
}
