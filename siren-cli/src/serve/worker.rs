//! The model worker: one thread that owns the model, fed by a bounded queue. It takes the
//! first waiting request, waits up to `max_wait` for more until `max_batch` prompts are
//! gathered, scores them together ([`Scorer::score`]) and answers each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use siren_core::prompt::Task;
use siren_core::rating::AnswerScores;
use siren_core::serving::{Job, QueryPrompts, Scorer};
use tokio::sync::oneshot;

use super::metrics::Metrics;

/// A request's scores, or why there are none.
pub type Outcome = Result<Vec<AnswerScores>, String>;

/// One request waiting for the model.
pub struct Work {
    /// Its prompts.
    pub prompts: QueryPrompts,
    /// Where the answer goes (closed when the client has gone).
    pub reply: oneshot::Sender<Outcome>,
    /// After this the request is not worth computing.
    pub deadline: Instant,
    /// What the prompts ask: ratings are calibrated, relevance answers are not.
    pub task: Task,
}

/// The worker's state as the HTTP side sees it.
#[derive(Debug, Default)]
pub struct Health {
    /// The worker thread is running (false once it has stopped, for whatever reason).
    pub alive: AtomicBool,
    /// The server is shutting down: it finishes what it has and takes nothing new.
    pub draining: AtomicBool,
    /// A test-only fault: the next batch panics inside the model thread (set through
    /// [`super::Server::inject_model_panic`]).
    pub panic_next: AtomicBool,
}

/// Marks the worker dead when its thread ends, however it ends.
struct AliveGuard(Arc<Health>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::SeqCst);
    }
}

/// The text of a panic's payload.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// The sending side of the queue.
#[derive(Clone)]
pub struct Queue {
    tx: SyncSender<Work>,
    metrics: Arc<Metrics>,
}

/// Why a request could not be queued.
pub enum Refused {
    /// The queue is full.
    Full,
    /// The worker has stopped (the server is shutting down or the model failed).
    Stopped,
}

impl Queue {
    /// Whether a new request could be queued now: the queue has a free place and the work
    /// already ahead would be done within `budget` at the model's recent speed. Checked before
    /// a request's prompts are built, so a full server spends nothing on it (the request is
    /// counted as refused when not).
    pub fn has_room(&self, budget: Duration) -> bool {
        let m = &self.metrics;
        let ahead = m.queued_tokens.load(Ordering::Relaxed) + m.busy_tokens.load(Ordering::Relaxed);
        let full =
            m.queue_depth.load(Ordering::Relaxed) >= m.queue_capacity.load(Ordering::Relaxed);
        let room = !full && ahead as f64 * m.seconds_per_token() <= budget.as_secs_f64();
        if !room {
            m.rejected.fetch_add(1, Ordering::Relaxed);
        }
        room
    }

    /// Queues `work` without waiting, unless the queue is full or the model would not reach
    /// it within `budget` at its recent speed (so that an overloaded server answers 503 at
    /// once instead of 504 later).
    pub fn offer(&self, work: Work, budget: Duration) -> Result<(), Refused> {
        let m = &self.metrics;
        let n = cost(&work.prompts);
        let ahead = m.queued_tokens.load(Ordering::Relaxed) + m.busy_tokens.load(Ordering::Relaxed);
        let wait = (ahead + n) as f64 * m.seconds_per_token();
        if wait > budget.as_secs_f64() {
            m.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::Full);
        }
        // Counted before the send: the worker may take the request before `try_send` returns.
        m.queue_depth.fetch_add(1, Ordering::Relaxed);
        m.queued_tokens.fetch_add(n, Ordering::Relaxed);
        match self.tx.try_send(work) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
                self.metrics.queued_tokens.fetch_sub(n, Ordering::Relaxed);
                match e {
                    TrySendError::Full(_) => {
                        self.metrics.rejected.fetch_add(1, Ordering::Relaxed);
                        Err(Refused::Full)
                    }
                    TrySendError::Disconnected(_) => Err(Refused::Stopped),
                }
            }
        }
    }
}

/// The prompt tokens a request costs at most: each distinct user part once, then each
/// candidate's rest.
fn cost(q: &QueryPrompts) -> i64 {
    let mut parts: Vec<&[u32]> = q
        .prompts
        .iter()
        .zip(&q.heads)
        .map(|(p, &k)| &p[..k.min(p.len())])
        .collect();
    let tails: usize = q
        .prompts
        .iter()
        .zip(&parts)
        .map(|(p, h)| p.len() - h.len())
        .sum();
    parts.sort_unstable();
    parts.dedup();
    (parts.iter().map(|h| h.len()).sum::<usize>() + tails) as i64
}

/// Starts the worker thread with a queue of `capacity`; it stops when every [`Queue`] is
/// dropped and the queue is empty.
pub fn start(
    scorer: Scorer,
    capacity: usize,
    (max_batch, max_wait): (usize, Duration),
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> std::io::Result<(Queue, std::thread::JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
    metrics
        .queue_capacity
        .store(capacity as i64, Ordering::Relaxed);
    let m = metrics.clone();
    health.alive.store(true, Ordering::SeqCst);
    let handle = std::thread::Builder::new()
        .name("siren-model".into())
        .spawn(move || {
            let _alive = AliveGuard(health.clone());
            run(scorer, &rx, (max_batch, max_wait), &m, &health);
        })?;
    Ok((Queue { tx, metrics }, handle))
}

fn run(
    mut scorer: Scorer,
    rx: &Receiver<Work>,
    (max_batch, max_wait): (usize, Duration),
    m: &Metrics,
    health: &Health,
) {
    let take = |w: Work| {
        m.queue_depth.fetch_sub(1, Ordering::Relaxed);
        m.queued_tokens
            .fetch_sub(cost(&w.prompts), Ordering::Relaxed);
        w
    };
    while let Ok(first) = rx.recv() {
        let mut batch = vec![take(first)];
        let mut prompts = batch[0].prompts.prompts.len();
        let until = Instant::now() + max_wait;
        while prompts < max_batch {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(w) => {
                    prompts += w.prompts.prompts.len();
                    batch.push(take(w));
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        // Requests whose client has gone or whose time is up are not computed.
        let now = Instant::now();
        let (live, dropped): (Vec<Work>, Vec<Work>) = batch
            .into_iter()
            .partition(|w| !w.reply.is_closed() && w.deadline > now);
        m.abandoned
            .fetch_add(dropped.len() as u64, Ordering::Relaxed);
        for w in dropped {
            let _ = w.reply.send(Err("timed out waiting for the model".into()));
        }
        if live.is_empty() {
            continue;
        }
        let jobs: Vec<Job<'_>> = live
            .iter()
            .map(|w| match w.task {
                Task::Rating => Job::from(&w.prompts),
                Task::Relevance => Job::uncalibrated(&w.prompts),
            })
            .collect();
        let n: usize = jobs.iter().map(|j| j.prompts.len()).sum();
        m.busy_tokens.store(
            live.iter().map(|w| cost(&w.prompts)).sum(),
            Ordering::Relaxed,
        );
        let t = Instant::now();
        // A panic while scoring fails this batch only: its requests get 500, the prefix
        // cache (which the panic may have left half-updated) is emptied, the worker goes on.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if health.panic_next.swap(false, Ordering::SeqCst) {
                panic!("injected fault (test trigger)");
            }
            scorer.score(&jobs)
        }))
        .unwrap_or_else(|p| {
            m.model_panics.fetch_add(1, Ordering::Relaxed);
            scorer.clear_cache();
            let text = panic_text(p.as_ref());
            tracing::error!("scoring a batch of {n} prompts panicked: {text}; the worker goes on");
            Err(siren_core::CoreError::Data(format!(
                "the model panicked: {text}"
            )))
        });
        if let Ok((_, report)) = &result {
            m.observe_speed(t.elapsed().as_secs_f64(), report.computed_tokens);
        }
        m.busy_tokens.store(0, Ordering::Relaxed);
        drop(jobs);
        m.batch(n, scorer.cache_stats());
        match result {
            Ok((scores, _)) => {
                for (w, s) in live.into_iter().zip(scores) {
                    // The client may have gone meanwhile: nothing to do then.
                    let _ = w.reply.send(Ok(s));
                }
            }
            Err(e) => {
                tracing::error!("scoring a batch of {n} prompts failed: {e}");
                for w in live {
                    let _ = w
                        .reply
                        .send(Err(format!("internal error: scoring failed: {e}")));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work() -> (Work, oneshot::Receiver<Outcome>) {
        let (tx, rx) = oneshot::channel();
        let w = Work {
            prompts: QueryPrompts {
                prompts: vec![vec![1, 2, 3]],
                heads: vec![2],
            },
            reply: tx,
            deadline: Instant::now() + Duration::from_secs(60),
            task: Task::Rating,
        };
        (w, rx)
    }

    #[test]
    fn a_full_queue_refuses_and_a_stopped_worker_is_reported() {
        let metrics = Arc::new(Metrics::default());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let q = Queue {
            tx,
            metrics: metrics.clone(),
        };
        let budget = Duration::from_secs(10);
        assert!(q.offer(work().0, budget).is_ok());
        assert!(matches!(q.offer(work().0, budget), Err(Refused::Full)));
        assert_eq!(metrics.rejected.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.queue_depth.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.queued_tokens.load(Ordering::Relaxed), 3);
        drop(rx);
        assert!(matches!(q.offer(work().0, budget), Err(Refused::Stopped)));
        assert_eq!(metrics.queue_depth.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_wait_past_the_budget_is_refused_before_queueing() {
        let metrics = Arc::new(Metrics::default());
        let (tx, _rx) = std::sync::mpsc::sync_channel(100);
        let q = Queue {
            tx,
            metrics: metrics.clone(),
        };
        // A second per token, 7 tokens being computed: a new 3-token request would wait 10 s.
        metrics.observe_speed(4.0, 4);
        metrics.busy_tokens.store(7, Ordering::Relaxed);
        assert!(matches!(
            q.offer(work().0, Duration::from_secs(9)),
            Err(Refused::Full)
        ));
        assert!(q.offer(work().0, Duration::from_secs(11)).is_ok());
        assert_eq!(metrics.rejected.load(Ordering::Relaxed), 1);
        // Admission before any prompt is built: 10 tokens ahead are 10 s of work.
        metrics.queue_capacity.store(100, Ordering::Relaxed);
        assert!(!q.has_room(Duration::from_secs(9)));
        assert!(q.has_room(Duration::from_secs(11)));
        assert_eq!(metrics.rejected.load(Ordering::Relaxed), 2);
    }
}
