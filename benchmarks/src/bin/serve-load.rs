//! Load test of `siren serve` on loopback, bounded in requests and time (run by
//! `benchmarks/serve-load.sh`, which starts the server and stops it with SIGTERM):
//!
//! 1. closed loop at each concurrency of `--levels`: `--predict` requests to `/v1/predict`
//!    (known valid users, their held-out item; a different user each request) and `--rank`
//!    requests to `/v1/rank` with `--candidates` items from the MF retriever; p50/p95/p99
//!    latency and requests/s;
//! 2. fault run: an open loop offering 3× the measured `/v1/predict` capacity for
//!    `--fault-seconds` (users not seen before): every status counted (only 200 and 503
//!    expected), the server's resident memory sampled throughout;
//! 3. clients killed mid-request: `--killed` rank requests whose connections close before the
//!    answer; then the server must still answer, and its memory stay bounded;
//! 4. one model-thread panic (the test-only trigger `POST /v1/test/panic-next`, open when the
//!    server runs with `SIREN_SERVE_TEST_FAULTS`): that request gets 500, the next 200, and
//!    `/healthz` stays 200.
//!
//! Writes `serve-load.json`, `serve-load.md` and `pairs.jsonl` (the predict pairs, for timing
//! `siren predict` on the same pairs) into `--out`.
//!
//! ```text
//! serve-load CONFIG --addr HOST:PORT --server-pid PID --out DIR [--set KEY=VALUE]...
//!     [--levels 1,8,32] [--predict 48] [--rank 12] [--candidates 20] [--fault-seconds 20]
//!     [--killed 16]
//! ```

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use siren_cli::serve::client::Client;
use siren_core::config::RunConfig;
use siren_core::stages::rank::Candidates;
use {siren_backends as _, siren_plugins as _};

/// Users kept aside for the fault run.
const FAULT_POOL: usize = 400;

struct Args {
    config: std::path::PathBuf,
    sets: Vec<String>,
    addr: SocketAddr,
    pid: u32,
    out: std::path::PathBuf,
    levels: Vec<usize>,
    predict: usize,
    rank: usize,
    candidates: usize,
    fault_seconds: f64,
    killed: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        config: it
            .next()
            .context("usage: serve-load CONFIG --addr HOST:PORT ...")?
            .into(),
        sets: Vec::new(),
        addr: "127.0.0.1:8080".parse()?,
        pid: 0,
        out: "runs/serve-load".into(),
        levels: vec![1, 8, 32],
        predict: 48,
        rank: 12,
        candidates: 20,
        fault_seconds: 20.0,
        killed: 16,
    };
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--set" => a.sets.push(v),
            "--addr" => a.addr = v.parse().with_context(|| format!("--addr {v}"))?,
            "--server-pid" => a.pid = v.parse()?,
            "--out" => a.out = v.into(),
            "--levels" => {
                a.levels = v.split(',').map(str::parse).collect::<Result<_, _>>()?;
            }
            "--predict" => a.predict = v.parse()?,
            "--rank" => a.rank = v.parse()?,
            "--candidates" => a.candidates = v.parse()?,
            "--fault-seconds" => a.fault_seconds = v.parse()?,
            "--killed" => a.killed = v.parse()?,
            _ => bail!("unknown argument {k}"),
        }
    }
    Ok(a)
}

/// Resident memory of a process, MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Sends `bodies` to `path` from `conc` clients, each taking the next body; returns the
/// latencies (s) of 200s, the count of other statuses and the wall time.
fn closed_loop(
    addr: SocketAddr,
    path: &str,
    bodies: &[String],
    conc: usize,
) -> (Vec<f64>, usize, f64) {
    let next = Arc::new(AtomicUsize::new(0));
    let lat = Arc::new(Mutex::new(Vec::new()));
    let bad = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(bodies.to_vec());
    let t = Instant::now();
    let threads: Vec<_> = (0..conc)
        .map(|_| {
            let (next, lat, bad, bodies, path) = (
                next.clone(),
                lat.clone(),
                bad.clone(),
                bodies.clone(),
                path.to_string(),
            );
            std::thread::spawn(move || {
                let mut c = Client::new(addr, Duration::from_secs(600));
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(b) = bodies.get(i) else { break };
                    let t = Instant::now();
                    match c.post(&path, b) {
                        Ok(r) if r.status == 200 => {
                            lat.lock().unwrap().push(t.elapsed().as_secs_f64());
                        }
                        Ok(r) => {
                            eprintln!("{path}: status {}: {}", r.status, r.body);
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            eprintln!("{path}: {e}");
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for th in threads {
        let _ = th.join();
    }
    let wall = t.elapsed().as_secs_f64();
    let mut v = lat.lock().unwrap().clone();
    v.sort_by(f64::total_cmp);
    (v, bad.load(Ordering::Relaxed), wall)
}

/// An open loop: `total` `/v1/predict` requests of `bodies` started at `rate` per second from
/// 128 client threads; the count of each status (or error) and the wall time.
fn open_loop(
    addr: std::net::SocketAddr,
    bodies: Vec<String>,
    rate: f64,
    total: usize,
) -> (std::collections::BTreeMap<String, usize>, f64) {
    let statuses = Arc::new(Mutex::new(
        std::collections::BTreeMap::<String, usize>::new(),
    ));
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let bodies = Arc::new(bodies);
    let threads: Vec<_> = (0..128)
        .map(|_| {
            let (statuses, next, bodies) = (statuses.clone(), next.clone(), bodies.clone());
            std::thread::spawn(move || {
                let mut c = Client::new(addr, Duration::from_secs(120));
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let at = start + Duration::from_secs_f64(i as f64 / rate);
                    if let Some(d) = at.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d);
                    }
                    let key = match c.post("/v1/predict", &bodies[i % bodies.len()]) {
                        Ok(r) => r.status.to_string(),
                        Err(e) => format!("error: {e}"),
                    };
                    *statuses.lock().unwrap().entry(key).or_default() += 1;
                }
            })
        })
        .collect();
    for th in threads {
        let _ = th.join();
    }
    let wall = start.elapsed().as_secs_f64();
    let statuses = statuses.lock().unwrap().clone();
    (statuses, wall)
}

/// The closed-loop runs: each route at each concurrency level on its own bodies; the rows, the
/// markdown table and the best `/v1/predict` throughput (requests per second).
fn closed_loops(
    a: &Args,
    predict: &[String],
    rank: &[String],
) -> (Vec<serde_json::Value>, String, f64) {
    let mut rows = Vec::new();
    let mut md = String::from(
        "| route | clients | requests | p50 ms | p95 ms | p99 ms | req/s | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut capacity: f64 = 0.0;
    for (route, bodies, per) in [
        ("/v1/predict", predict, a.predict),
        ("/v1/rank", rank, a.rank),
    ] {
        for (li, &conc) in a.levels.iter().enumerate() {
            let part = &bodies[(li * per).min(bodies.len())..((li + 1) * per).min(bodies.len())];
            if part.is_empty() {
                continue;
            }
            eprintln!("{route}: {} requests from {conc} clients", part.len());
            let (lat, bad, wall) = closed_loop(a.addr, route, part, conc);
            let rps = lat.len() as f64 / wall;
            if route == "/v1/predict" {
                capacity = capacity.max(rps);
            }
            let p = |q| 1e3 * percentile(&lat, q);
            let _ = writeln!(
                md,
                "| `{route}`{} | {conc} | {} | {:.0} | {:.0} | {:.0} | {:.2} | {bad} |",
                if route == "/v1/rank" {
                    format!(" ({} candidates)", a.candidates)
                } else {
                    String::new()
                },
                part.len(),
                p(50.0),
                p(95.0),
                p(99.0),
                rps
            );
            rows.push(json!({"route": route, "clients": conc, "requests": part.len(),
                "p50_ms": p(50.0), "p95_ms": p(95.0), "p99_ms": p(99.0), "rps": rps, "errors": bad}));
        }
    }
    (rows, md, capacity)
}

/// The value of Prometheus metric `name` in a `/metrics` body (NaN when absent).
fn metric_value(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    std::fs::create_dir_all(&a.out)?;
    let config = RunConfig::load(&a.config, &a.sets)?;
    let ds = siren_core::stages::load_dataset(&config)?;
    let split = config.eval.split;
    let targets = siren_core::stages::sample_rows(
        ds.split(split),
        Some((a.predict + a.rank) * a.levels.len() + FAULT_POOL),
        config.seed,
    );
    let rank_cfg = config.rank.clone().unwrap_or_default();
    let retriever = Candidates::fit(&config, &rank_cfg, &ds, split)?;
    let id = |i: u32| ds.items[i as usize].id.clone();
    let user = |u: u32| ds.users[u as usize].clone();
    // Predict bodies: one per user; rank bodies: the next users, MF's top candidates.
    let n_pred = a.predict * a.levels.len();
    let predict: Vec<String> = targets[..n_pred.min(targets.len())]
        .iter()
        .map(|x| json!({"user": user(x.user), "item": id(x.item)}).to_string())
        .collect();
    let n_rank = n_pred + a.rank * a.levels.len();
    let rank: Vec<String> = targets[n_pred.min(targets.len())..n_rank.min(targets.len())]
        .iter()
        .map(|x| {
            let c: Vec<String> = retriever
                .top(x.user, a.candidates)
                .iter()
                .map(|t| id(t.0))
                .collect();
            json!({"user": user(x.user), "candidates": c, "k": 5}).to_string()
        })
        .collect();
    // The fault run's users: others again, so that its load is first-time users.
    let fault_bodies: Vec<String> = targets[n_rank.min(targets.len())..]
        .iter()
        .map(|x| json!({"user": user(x.user), "item": id(x.item)}).to_string())
        .collect();
    let pairs: String = predict.iter().map(|b| format!("{b}\n")).collect();
    std::fs::write(a.out.join("pairs.jsonl"), pairs)?;

    let mut c = Client::new(a.addr, Duration::from_secs(60));
    let h = c.get("/healthz")?;
    if h.status != 200 {
        bail!("the server at {} is not healthy: {}", a.addr, h.body);
    }
    let rss0 = rss_mib(a.pid);
    let (rows, mut md, capacity) = closed_loops(&a, &predict, &rank);
    eprint!("{md}");

    // Fault run: an open loop at 3× capacity.
    let rate = 3.0 * capacity.max(0.1);
    let total = (rate * a.fault_seconds).ceil() as usize;
    eprintln!("fault run: {total} requests at {rate:.1}/s (3× capacity {capacity:.2}/s)");
    let peak = Arc::new(Mutex::new(rss0));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling, pid) = (peak.clone(), sampling.clone(), a.pid);
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                let r = rss_mib(pid);
                let mut p = peak.lock().unwrap();
                *p = p.max(r);
                drop(p);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let (statuses, fault_wall) = open_loop(a.addr, fault_bodies, rate, total);
    let rss_fault = *peak.lock().unwrap();

    // Clients killed mid-request.
    eprintln!("killing {} clients mid-request", a.killed);
    for b in rank.iter().cycle().take(a.killed) {
        let mut s = std::net::TcpStream::connect(a.addr)?;
        write!(
            s,
            "POST /v1/rank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )?;
        drop(s);
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = c.post("/v1/predict", &predict[0])?;
    // One panic of the model thread (the server runs with SIREN_SERVE_TEST_FAULTS): that
    // request gets 500, the next is answered, the liveness probe stays up.
    let armed = c.post("/v1/test/panic-next", "{}")?.status;
    let panicked = c.post("/v1/predict", &predict[0])?.status;
    let recovered = c.post("/v1/predict", &predict[0])?.status;
    let alive = c.get("/healthz")?.status;
    let m = c.get("/metrics")?;
    // Let the worker drain what the killed clients queued, then sample memory again.
    std::thread::sleep(Duration::from_secs(5));
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.join();
    let rss_end = rss_mib(a.pid);
    let metric = |name: &str| metric_value(&m.body, name);
    let only_200_503 = statuses.keys().all(|k| k == "200" || k == "503");
    let _ = write!(
        md,
        "\nFault run: {total} `/v1/predict` requests offered at {rate:.1}/s (3× the measured \
         capacity of {capacity:.2}/s) over {fault_wall:.1} s: {}. Only 200 and 503: {}. Server \
         resident memory: {rss0:.0} MiB before, {rss_fault:.0} MiB peak during, {rss_end:.0} MiB \
         at the end. {} clients killed mid-request (`/v1/rank`, connection closed before the \
         answer): the next request got {}, `siren_abandoned_total` {}, prefix cache {:.1} MiB \
         of {:.0} MiB. Model thread panicked once (test trigger, {armed}): that request got \
         {panicked}, the next {recovered}, `/healthz` {alive}, `siren_model_panics_total` {}.\n",
        statuses
            .iter()
            .map(|(k, v)| format!("{v} × {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        if only_200_503 { "yes" } else { "NO" },
        a.killed,
        after.status,
        metric("siren_abandoned_total"),
        metric("siren_prefix_cache_bytes") / 1048576.0,
        metric("siren_prefix_cache_max_bytes") / 1048576.0,
        metric("siren_model_panics_total"),
    );
    print!("{md}");
    std::fs::write(a.out.join("serve-load.md"), &md)?;
    let report = json!({
        "closed_loop": rows,
        "fault": {"offered_rps": rate, "capacity_rps": capacity, "requests": total,
                  "seconds": fault_wall, "statuses": statuses, "only_200_and_503": only_200_503,
                  "rss_mib_before": rss0, "rss_mib_peak": rss_fault, "rss_mib_end": rss_end},
        "killed": {"clients": a.killed, "next_status": after.status,
                   "abandoned_total": metric("siren_abandoned_total")},
        "model_panic": {"trigger_status": armed, "panicked_status": panicked,
                        "next_status": recovered, "healthz": alive,
                        "panics_total": metric("siren_model_panics_total")},
    });
    std::fs::write(
        a.out.join("serve-load.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    if !only_200_503 || after.status != 200 {
        bail!("the fault run saw statuses other than 200 and 503, or the server stopped answering");
    }
    if (armed, panicked, recovered, alive) != (200, 500, 200, 200) {
        bail!(
            "after a model-thread panic: trigger {armed}, that request {panicked}, the next \
             {recovered}, /healthz {alive} (expected 200, 500, 200, 200)"
        );
    }
    Ok(())
}
