//! `siren serve`: the model behind HTTP (axum + tokio).
//!
//! - `POST /v1/predict` `{"user", "item"}` (known ids) or `{"history": [{title, genres,
//!   rating}], "candidate": {title, genres}}` (a new user, a new item; either form of user
//!   goes with either form of item) → the distribution over 1..5 with `expected`, `median`,
//!   `argmax`, `rating` (the `[eval] decoder`) and `latency_ms`;
//! - `POST /v1/rank` `{"user" | "history", "candidates": [id | {title, genres}], "k"}` → the
//!   top `k` candidates by expected rating with their distributions; the user's part of the
//!   prompt is computed once;
//! - `GET /healthz` (liveness: 503 once the model worker has stopped), `GET /readyz`
//!   (readiness: 200 only while the worker runs and the server is not draining), `GET /metrics`
//!   (Prometheus text).
//!
//! Requests are checked and turned into prompts on the async side, then queued (bounded:
//! when full, 503 with `Retry-After`) for the model worker ([`worker`]), which batches
//! requests arriving within `[serve] max_wait_ms` up to `max_batch` prompts and keeps
//! per-user prefixes in a memory-bounded cache. Headers must arrive within
//! `header_timeout_ms` (else the connection is closed) and bodies within `body_timeout_ms`
//! (else 408). Bodies over `max_body_kb` get 413, requests
//! not answered within `timeout_ms` get 504, bad requests get 400 with a JSON error naming the
//! field, a prompt longer than the model's context 413 naming the field, internal failures 500.
//! Admission comes before prompt building, and at most `PROMPT_BUILDERS` requests build
//! prompts at once (the others wait within their time). A panic while scoring fails only its
//! batch (500, logged, counted in `siren_model_panics_total`). SIGTERM or Ctrl-C stops
//! accepting connections (`/readyz` says 503 from then on) and lets in-flight requests finish.

pub mod client;
mod metrics;
mod worker;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Value, json};
use siren_core::config::RunConfig;
use siren_core::prompt::Task;
use siren_core::rating::{AnswerScores, RatingDecoder};
use siren_core::serving::request::{predict_request, rank_request};
use siren_core::serving::{Candidate, FieldError, Limits, Prompter, Query, Subject};
use siren_core::stages::eval::Weights;

use metrics::Metrics;
use worker::{Health, Queue, Refused, Work};

/// The arguments of `siren serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run config (TOML).
    pub config: std::path::PathBuf,
    /// Listen here (default [serve] addr, 127.0.0.1:8080; port 0 picks a free one).
    #[arg(long)]
    pub addr: Option<String>,
    /// Use the weights of stage 1 or 2 (default: the newest the run has).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub stage: Option<u8>,
    /// Serve this PEFT adapter folder over the base model.
    #[arg(long)]
    pub adapter: Option<std::path::PathBuf>,
    /// The model's calibration (`[model] calibration`) on the distributions: `model`
    /// (default, when the model has one) or `none` (sets `[eval] calibration`).
    #[arg(long, value_enum)]
    pub calibration: Option<crate::CalibrationArg>,
    /// Override a config key: `--set serve.max_batch=16` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Most requests building their prompts at once (tokenizing, and encoding a new user's items).
const PROMPT_BUILDERS: usize = 4;

/// What `siren serve` serves: the config, which weights, and where to listen.
#[derive(Debug, Clone)]
pub struct Options {
    /// The run config.
    pub config: std::path::PathBuf,
    /// Config overrides (`--set`).
    pub overrides: Vec<String>,
    /// Which weights (default: the newest the run has).
    pub weights: Weights,
    /// Listen here instead of `[serve] addr` (port 0 picks a free port).
    pub addr: Option<String>,
}

struct App {
    prompter: Prompter,
    queue: Queue,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    builders: Arc<tokio::sync::Semaphore>,
    max_tokens: usize,
    limits: Limits,
    timeout: Duration,
    body_timeout: Duration,
    max_body: usize,
    decoder: RatingDecoder,
    values: Vec<f32>,
    method: String,
    calibration: &'static str,
    /// Retrievers for `/v1/rank` requests without candidates (`[serve] retrievers`).
    retrievers: Vec<siren_core::stages::rank::Candidates>,
    /// Candidates a retriever proposes (`[rank] candidates`).
    retrieved: usize,
    /// What `/v1/rank` orders by (`[rank] by`).
    rank_by: Task,
    /// With `[rank.blend]`: its fitted weights and the retriever (in `retrievers`) whose scores
    /// it reads; `/v1/rank` then orders by the blend.
    blend: Option<(siren_core::blend::Blend, usize)>,
}

/// A running server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    health: Arc<Health>,
}

impl Server {
    /// A test-only fault: the model thread panics on its next batch (whose requests get 500;
    /// the worker goes on). For the fault tests and `benchmarks/serve-load.sh`.
    #[doc(hidden)]
    pub fn inject_model_panic(&self) {
        self.health
            .panic_next
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits for the
    /// model worker to stop.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.join()
    }

    /// Waits until the server stops (SIGTERM, Ctrl-C or [`Server::shutdown`]).
    pub fn join(mut self) -> anyhow::Result<()> {
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => anyhow::bail!("the server thread panicked"),
            None => Ok(()),
        }
    }
}

/// Loads the model and starts serving on a thread of its own; returns once it listens.
pub fn start(opts: &Options) -> anyhow::Result<Server> {
    let config = RunConfig::load(&opts.config, &opts.overrides)?;
    config.validate()?;
    let sc = config.serve.clone().unwrap_or_default();
    sc.validate()?;
    let addr = opts.addr.clone().unwrap_or_else(|| sc.addr.clone());
    let run = siren_core::run::RunDir::create(&config, &config.device)?;
    let ds = siren_core::stages::load_dataset(&config)?;
    let rank = config.rank.clone().unwrap_or_default();
    let blend = siren_core::stages::rank::fitted_blend(&config, &run)?;
    let mut names = sc.retrievers.clone();
    if blend.is_some() && !names.contains(&rank.retriever) {
        // The blend reads the configured retriever's scores; it is loaded for requests too.
        names.push(rank.retriever.clone());
    }
    let blend = blend.map(|b| {
        let at = names.iter().position(|n| *n == rank.retriever).unwrap_or(0);
        (b, at)
    });
    let retrievers = names
        .iter()
        .map(|name| {
            siren_core::stages::rank::Candidates::fit_named(
                &config,
                name,
                &rank.params_for(name),
                &ds,
                config.eval.split,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let timelines = siren_core::stages::predict::full_timelines(&ds);
    let (prompter, mut scorer, method) = siren_core::serving::load(
        &config,
        ds,
        &run,
        &opts.weights,
        timelines,
        (sc.max_batch, sc.prefix_cache_mb << 20),
    )?;
    scorer.set_max_batch_users(sc.max_batch_users);
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::default());
    let values = scorer.values().to_vec();
    let max_tokens = scorer.max_tokens();
    let calibration = scorer.calibration_label();
    let (queue, worker) = worker::start(
        scorer,
        sc.queue,
        (sc.max_batch, Duration::from_millis(sc.max_wait_ms)),
        metrics.clone(),
        health.clone(),
    )?;
    let app = Arc::new(App {
        prompter,
        queue,
        metrics,
        health: health.clone(),
        builders: Arc::new(tokio::sync::Semaphore::new(PROMPT_BUILDERS)),
        max_tokens,
        limits: Limits {
            max_candidates: sc.max_candidates,
            max_history: sc.max_history,
        },
        timeout: Duration::from_millis(sc.timeout_ms),
        body_timeout: Duration::from_millis(sc.body_timeout_ms),
        max_body: sc.max_body_kb << 10,
        decoder: config.eval.decoder,
        values,
        method,
        calibration,
        retrievers,
        retrieved: rank.candidates,
        rank_by: rank.by,
        blend,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr.as_str()))
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let router = router(app);
    let draining = health.clone();
    let header_timeout = Duration::from_millis(sc.header_timeout_ms);
    let thread = std::thread::Builder::new()
        .name("siren-http".into())
        .spawn(move || -> anyhow::Result<()> {
            rt.block_on(accept(
                listener,
                router,
                header_timeout,
                stopped(stop_rx, draining),
            ));
            // The router (and with it the queue's sender) is gone: the worker finishes what
            // is queued and stops.
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("the model worker panicked"))?;
            tracing::info!("stopped");
            Ok(())
        })?;
    tracing::info!("serving on http://{local}");
    Ok(Server {
        addr: local,
        stop: Some(stop_tx),
        thread: Some(thread),
        health,
    })
}

/// Serves HTTP/1 connections until `stop` resolves, then stops accepting and waits for the
/// open connections' in-flight requests. Each connection's request headers must arrive within
/// `header_timeout` (hyper's header read timeout, which needs a timer: `axum::serve` sets
/// none, so a client could hold a connection open forever by sending headers slowly).
async fn accept(
    listener: tokio::net::TcpListener,
    router: Router,
    header_timeout: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            conn = listener.accept() => match conn {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection closed: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Resolves on SIGTERM, Ctrl-C or a stop request, marking the server as draining.
async fn stopped(stop: tokio::sync::oneshot::Receiver<()>, health: Arc<Health>) {
    let term = async {
        #[cfg(unix)]
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
        _ = stop => {},
    }
    health
        .draining
        .store(true, std::sync::atomic::Ordering::SeqCst);
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Set in the environment of `siren serve`, opens the test-only fault route
/// `POST /v1/test/panic-next` (the model thread panics on its next batch).
pub const TEST_FAULTS_ENV: &str = "SIREN_SERVE_TEST_FAULTS";

/// Every route in one table: method, path and handler. The router, the metrics' route label
/// and the 404's list of routes derive from it.
fn routes() -> Vec<(&'static str, &'static str, MethodRouter<Arc<App>>)> {
    vec![
        ("POST", "/v1/predict", post(predict)),
        ("POST", "/v1/rank", post(rank)),
        ("GET", "/healthz", get(health)),
        ("GET", "/readyz", get(ready)),
        ("GET", "/metrics", get(prometheus)),
    ]
}

fn router(app: Arc<App>) -> Router {
    let mut r = Router::new();
    if std::env::var_os(TEST_FAULTS_ENV).is_some() {
        tracing::warn!("{TEST_FAULTS_ENV} is set: POST /v1/test/panic-next is open");
        r = r.route("/v1/test/panic-next", post(panic_next));
    }
    let table = routes();
    let paths: Arc<[&'static str]> = table.iter().map(|t| t.1).collect();
    let listed = table
        .iter()
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect::<Vec<_>>()
        .join(", ");
    for (_, path, handler) in table {
        r = r.route(path, handler);
    }
    r.fallback(move || {
        let listed = listed.clone();
        async move {
            error(
                StatusCode::NOT_FOUND,
                None,
                format!("no such route; {listed}"),
            )
        }
    })
    // The body's size and time limits are read_body's; the extractors see a body already read.
    .layer(DefaultBodyLimit::disable())
    .layer(middleware::from_fn_with_state(app.clone(), read_body))
    .layer(middleware::from_fn_with_state((app.clone(), paths), track))
    .with_state(app)
}

/// Counts every response by route (`other` for a path no route has) and status, with its
/// latency.
async fn track(
    State((app, paths)): State<(Arc<App>, Arc<[&'static str]>)>,
    req: Request,
    next: Next,
) -> Response {
    let t = Instant::now();
    let path = req.uri().path();
    let route = paths
        .iter()
        .find(|p| **p == path)
        .copied()
        .unwrap_or("other");
    let resp = next.run(req).await;
    app.metrics
        .request(route, resp.status().as_u16(), t.elapsed().as_secs_f64());
    resp
}

/// Reads the whole body before the route sees it: within `[serve] body_timeout_ms` of the
/// headers (408 naming the body otherwise: a client sending its body slowly holds nothing for
/// long) and at most `max_body_kb` (413).
async fn read_body(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(body, app.max_body);
    match tokio::time::timeout(app.body_timeout, read).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Some("(body)"),
                    format!("the body is over {} KiB", app.max_body >> 10),
                )
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    Some("(body)"),
                    format!("reading the body failed: {e}"),
                )
            }
        }
        Err(_) => error(
            StatusCode::REQUEST_TIMEOUT,
            Some("(body)"),
            format!(
                "the body did not arrive within {} ms",
                app.body_timeout.as_millis()
            ),
        ),
    }
}

/// A JSON error: `{"error": message, "field": field}`.
fn error(status: StatusCode, field: Option<&str>, message: impl Into<String>) -> Response {
    let mut body = json!({"error": message.into()});
    if let Some(f) = field {
        body["field"] = f.into();
    }
    (status, axum::Json(body)).into_response()
}

/// Liveness: ok while the model worker runs; 503 once it has stopped (a supervisor restarts
/// the process then).
async fn health(State(app): State<Arc<App>>) -> Response {
    use std::sync::atomic::Ordering;
    if app.health.alive.load(Ordering::SeqCst) {
        axum::Json(json!({"status": "ok", "model": app.method})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "dead", "error": "the model worker has stopped"})),
        )
            .into_response()
    }
}

/// The test-only fault: the model thread panics on its next batch.
async fn panic_next(State(app): State<Arc<App>>) -> Response {
    app.health
        .panic_next
        .store(true, std::sync::atomic::Ordering::SeqCst);
    axum::Json(json!({"armed": true})).into_response()
}

/// Readiness: ready once the weights are loaded (the server listens only after that), while
/// the worker runs and the server is not draining.
async fn ready(State(app): State<Arc<App>>) -> Response {
    use std::sync::atomic::Ordering;
    let (alive, draining) = (
        app.health.alive.load(Ordering::SeqCst),
        app.health.draining.load(Ordering::SeqCst),
    );
    let (status, word) = match (alive, draining) {
        (true, false) => (StatusCode::OK, "ready"),
        (true, true) => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "dead"),
    };
    (
        status,
        axum::Json(json!({"status": word, "model": app.method})),
    )
        .into_response()
}

async fn prometheus(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        app.metrics.render(),
    )
        .into_response()
}

/// An error response on its way out of a helper (boxed: a response is large).
type Refusal = Box<Response>;

/// The body as JSON, or the error response.
fn body_json(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Value, Refusal> {
    let bytes = body.map_err(|e| Box::new(error(e.status(), Some("(body)"), e.body_text())))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            Some("(body)"),
            format!("not JSON: {e}"),
        ))
    })
}

/// The body as a request of `read`'s kind, or the error response naming the field.
fn parse<T>(
    app: &App,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
    read: fn(&siren_core::data::Dataset, &Value, Limits) -> Result<T, FieldError>,
) -> Result<T, Refusal> {
    let v = body_json(body)?;
    read(&app.prompter.ds, &v, app.limits)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, Some(&e.field), e.message)))
}

/// The 503 of a server at capacity.
fn at_capacity() -> Refusal {
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        "the model is at capacity (its queue is full, or the wait would pass the \
         request timeout); retry later",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    Box::new(r)
}

/// Admits the query (a first look at the queue, before any work is spent on it), builds its
/// prompts (at most [`PROMPT_BUILDERS`] at once), queues them and waits for the scores.
/// `field(c)` names what makes candidate `c`'s prompt long, for the 413 of a prompt longer
/// than the model's context.
async fn score(
    app: &Arc<App>,
    (query, task): (Query, Task),
    field: impl Fn(usize) -> String,
) -> Result<Vec<AnswerScores>, Refusal> {
    let deadline = Instant::now() + app.timeout;
    if !app.queue.has_room(
        deadline
            .saturating_duration_since(Instant::now())
            .mul_f64(0.8),
    ) {
        return Err(at_capacity());
    }
    let permit = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        app.builders.clone().acquire_owned(),
    )
    .await
    .map_err(|_| at_capacity())?
    .map_err(|e| {
        Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            e.to_string(),
        ))
    })?;
    let a = app.clone();
    let prompts = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        a.prompter.prompts_for(&query, task)
    })
    .await
    .map_err(|e| e.to_string())
    // The request was checked field by field: what fails now is the server's.
    .and_then(|r| r.map_err(|e| e.to_string()))
    .map_err(|e| {
        Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            format!("building the prompts failed: {e}"),
        ))
    })?;
    if let Some(c) = prompts
        .prompts
        .iter()
        .position(|p| p.len() > app.max_tokens)
    {
        return Err(Box::new(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            Some(&field(c)),
            format!(
                "the prompt (the user's part and this candidate) has {} tokens; the model's context is {}",
                prompts.prompts[c].len(),
                app.max_tokens
            ),
        )));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A margin for the estimate's error: what would wait longer is refused now.
    let budget = deadline
        .saturating_duration_since(Instant::now())
        .mul_f64(0.8);
    match app.queue.offer(
        Work {
            prompts,
            reply: tx,
            deadline,
            task,
        },
        budget,
    ) {
        Ok(()) => {}
        Err(Refused::Full) => return Err(at_capacity()),
        Err(Refused::Stopped) => {
            return Err(Box::new(error(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "the model worker has stopped",
            )));
        }
    }
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, rx).await {
        Ok(Ok(Ok(s))) => Ok(s),
        Ok(Ok(Err(e))) if e.starts_with("timed out") => {
            Err(Box::new(error(StatusCode::GATEWAY_TIMEOUT, None, e)))
        }
        Ok(Ok(Err(e))) => Err(Box::new(error(StatusCode::INTERNAL_SERVER_ERROR, None, e))),
        Ok(Err(_)) => Err(Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "the model worker has stopped",
        ))),
        Err(_) => Err(Box::new(error(
            StatusCode::GATEWAY_TIMEOUT,
            None,
            format!("not answered within {} ms", app.timeout.as_millis()),
        ))),
    }
}

/// A scored candidate as JSON ([`siren_core::stages::rank::scored_json`]) with the config's
/// `rating`; the caller fills `item`.
fn distribution(app: &App, s: &AnswerScores) -> Value {
    let mut v = siren_core::stages::rank::scored_json(Value::Null, s, &app.values);
    v["rating"] = app.decoder.decode(&s.probs, &app.values).into();
    v["calibration"] = app.calibration.into();
    v
}

fn item_json(app: &App, c: &Candidate) -> Value {
    match c {
        Candidate::Known(i) => app.prompter.ds.items[*i as usize].id.clone().into(),
        Candidate::New(it) => json!({"title": it.title, "genres": it.genres}),
    }
}

async fn predict(
    State(app): State<Arc<App>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let t = Instant::now();
    let query = match parse(&app, body, predict_request) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    let (subject, cand) = (query.subject.clone(), query.candidates[0].clone());
    let field = match (&query.subject, &query.candidates[0]) {
        (_, Candidate::New(_)) => "candidate",
        (Subject::New(_), _) => "history",
        (Subject::Known(_), Candidate::Known(_)) => "item",
    };
    let scores = match score(&app, (query, Task::Rating), |_| field.to_string()).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let Some(s) = scores.first() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "no score came back",
        );
    };
    let mut out = distribution(&app, s);
    if let Subject::Known(u) = subject {
        out["user"] = app.prompter.ds.users[u as usize].clone().into();
    }
    out["item"] = item_json(&app, &cand);
    out["latency_ms"] = (t.elapsed().as_secs_f64() * 1e3).into();
    axum::Json(out).into_response()
}

async fn rank(
    State(app): State<Arc<App>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let t = Instant::now();
    let mut v = match body_json(body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let ds = &app.prompter.ds;
    let default = app.retrievers.first().map_or("", |c| c.name.as_str());
    let req = siren_core::stages::rank::fill_candidates(
        ds,
        &mut v,
        app.retrieved,
        default,
        &app.retrievers,
    )
    .and_then(|()| rank_request(ds, &v, app.limits));
    let req = match req {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, Some(&e.field), e.message),
    };
    let (subject, cands, k) = (
        req.query.subject.clone(),
        req.query.candidates.clone(),
        req.k,
    );
    let field = |c: usize| format!("candidates[{c}]");
    // With `[rank.blend]`, the candidates need the retriever's scores (checked first).
    let own = match &app.blend {
        Some((b, r)) if b.needs_retriever() => {
            match siren_core::stages::rank::retriever_scores(&app.retrievers[*r], &req.query) {
                Ok(s) => Some(s),
                Err(e) => return error(StatusCode::BAD_REQUEST, Some(&e.field), e.message),
            }
        }
        _ => None,
    };
    // With `[rank] by = "relevance"` (or a blend of the relevance answers), the relevance
    // answers order the candidates (a second set of prompts, the user's part shared); the
    // ratings are returned as well.
    let blend = app.blend.as_ref().map(|(b, _)| b);
    let relevance = if siren_core::stages::rank::asks_relevance(app.rank_by, blend) {
        match score(&app, (req.query.clone(), Task::Relevance), field).await {
            Ok(s) => Some(s),
            Err(r) => return *r,
        }
    } else {
        None
    };
    let scores = match score(&app, (req.query, Task::Rating), field).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let (order, blended) = match siren_core::stages::rank::order_candidates(
        blend,
        own.as_deref().unwrap_or(&[]),
        (&scores, relevance.as_deref()),
        &app.values,
    ) {
        Ok(o) => o,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string()),
    };
    let ranked: Vec<Value> = order
        .iter()
        .take(k)
        .map(|&c| {
            let mut d = distribution(&app, &scores[c]);
            d["item"] = item_json(&app, &cands[c]);
            if let Some(r) = &relevance {
                d["relevance"] = RatingDecoder::Expected
                    .decode(&r[c].probs, &app.values)
                    .into();
            }
            if let Some(s) = &blended {
                d["blend"] = s[c].into();
            }
            if let Some(o) = &own {
                d["retriever"] = o[c].into();
            }
            d
        })
        .collect();
    let by = if app.blend.is_some() {
        "blend"
    } else {
        app.rank_by.as_str()
    };
    let mut out = json!({"ranked": ranked, "by": by});
    if let Subject::Known(u) = subject {
        out["user"] = app.prompter.ds.users[u as usize].clone().into();
    }
    out["latency_ms"] = (t.elapsed().as_secs_f64() * 1e3).into();
    axum::Json(out).into_response()
}

/// `siren serve`: starts the server and waits until it stops.
pub fn run(opts: &Options) -> anyhow::Result<()> {
    let server = start(opts)?;
    println!("listening on http://{}", server.addr);
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    server.join()
}

/// The run's weights as `--stage` and `--adapter` choose them.
pub fn weights(stage: Option<u8>, adapter: Option<&Path>) -> Weights {
    match (adapter, stage) {
        (Some(a), _) => Weights::Adapter(a.to_path_buf()),
        (None, Some(1)) => Weights::Stage1,
        (None, Some(_)) => Weights::Stage2,
        (None, None) => Weights::Auto,
    }
}
