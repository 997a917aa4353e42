//! The scenarios of MLPerf Inference's LoadGen, over any [`Sut`].
//!
//! - single-stream: one query at a time, the next issued when the previous
//!   completes; reports the 90th percentile with the early-stopping estimate.
//! - multi-stream: the same loop with queries of several samples (8 by
//!   default), reporting the 99th percentile of query latency.
//! - server: queries arrive as a Poisson process at the target rate, from a
//!   generator thread that sleeps to each precomputed arrival and never waits
//!   for the system under test; latency counts from the scheduled time; the
//!   run is valid when the 99th percentile meets the bound.
//! - offline: every query available at once; reports throughput.
//!
//! Warm-up queries run on every worker before the clock starts and are never
//! counted. A run ends when both the duration and the query count are met.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::stats::{early_stopping, server_early_stopping_ok, EarlyStop, Latencies};
use crate::system::EnergyMeter;
use crate::BenchError;

/// A system under test. `run` is called from `workers()` threads at once,
/// each with its own worker index, so an implementation can keep one session
/// per worker and never lock.
pub trait Sut: Send + Sync {
    /// Samples in one query (the batch size).
    fn samples_per_query(&self) -> usize;
    /// How many queries may run at once.
    fn workers(&self) -> usize;
    /// Runs query number `query` on worker `worker`.
    fn run(&self, worker: usize, query: u64) -> Result<(), String>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    SingleStream,
    MultiStream,
    Server,
    Offline,
}

impl Scenario {
    pub fn parse(s: &str) -> Option<Scenario> {
        Some(match s {
            "single-stream" | "singlestream" => Scenario::SingleStream,
            "multi-stream" | "multistream" => Scenario::MultiStream,
            "server" => Scenario::Server,
            "offline" => Scenario::Offline,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::SingleStream => "single-stream",
            Scenario::MultiStream => "multi-stream",
            Scenario::Server => "server",
            Scenario::Offline => "offline",
        }
    }

    /// The percentile this scenario's latency claim is about.
    pub fn percentile(self) -> f64 {
        match self {
            Scenario::SingleStream => 0.90,
            _ => 0.99,
        }
    }

    /// MLPerf Inference's minimum query (offline: sample) count for a
    /// datacenter/edge result; the minimum duration is 600 s for all.
    pub fn mlperf_min_queries(self) -> u64 {
        match self {
            Scenario::SingleStream => 1024,
            Scenario::MultiStream | Scenario::Server => 270_336,
            Scenario::Offline => 24_576,
        }
    }
}

/// MLPerf Inference's minimum run duration.
pub const MLPERF_MIN_DURATION: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct Settings {
    pub scenario: Scenario,
    pub duration: Duration,
    pub min_queries: u64,
    /// Server: the Poisson arrival rate (queries per second).
    pub target_qps: Option<f64>,
    /// Server: the bound on the 99th percentile.
    pub latency_bound: Option<Duration>,
    /// Warm-up queries per worker, before the clock starts.
    pub warmup_queries: u64,
    pub seed: u64,
}

/// What a run measured, before the system description is attached.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub scenario: Scenario,
    pub valid: bool,
    pub invalid_reason: Option<String>,
    pub queries: u64,
    pub samples: u64,
    pub elapsed: Duration,
    pub samples_per_second: f64,
    pub latencies: Latencies,
    pub early_stop: Option<EarlyStop>,
    pub target_qps: Option<f64>,
    pub scheduled_qps: Option<f64>,
    pub achieved_qps: Option<f64>,
    pub latency_bound_ms: Option<f64>,
    /// Server: how late the generator issued queries (max, microseconds).
    pub generator_max_lag_us: Option<f64>,
    pub short_of_mlperf_minimums: bool,
    pub notes: Vec<String>,
    pub energy: crate::system::Energy,
}

/// A seeded Poisson arrival schedule (offsets from the start): arrivals
/// continue until both `duration` and `min_queries` are reached.
pub fn poisson_schedule(
    qps: f64,
    duration: Duration,
    min_queries: u64,
    seed: u64,
) -> Vec<Duration> {
    let mut rng = mdc_infer::generic::Seeded::new(seed);
    let mut t = 0.0f64;
    let mut out = Vec::new();
    let d = duration.as_secs_f64();
    loop {
        // Exponential gap by inversion; 1 − u is in (0, 1].
        let u = 1.0 - rng.unit();
        t += -u.ln() / qps;
        if t >= d && out.len() as u64 >= min_queries {
            break;
        }
        out.push(Duration::from_secs_f64(t));
    }
    out
}

fn sut_failure(done: u64, e: &str) -> BenchError {
    BenchError::Sut(format!(
        "the system under test failed after {done} completed queries: {e}"
    ))
}

/// Runs the scenario. `Err` means the run could not execute (bad settings,
/// the system under test failed); an unmet rule is an `Outcome` with
/// `valid: false` and the reason.
pub fn run(sut: &dyn Sut, s: &Settings) -> Result<Outcome, BenchError> {
    if s.duration.is_zero() && s.min_queries == 0 {
        return Err(BenchError::Invalid(
            "give a positive --duration or --min-queries".into(),
        ));
    }
    if sut.workers() == 0 || sut.samples_per_query() == 0 {
        return Err(BenchError::Invalid(
            "the system under test has no workers".into(),
        ));
    }
    let (target_qps, bound) = match s.scenario {
        Scenario::Server => {
            let q = s.target_qps.ok_or_else(|| {
                BenchError::Invalid("the server scenario needs --target-qps".into())
            })?;
            if !(q.is_finite() && q > 0.0) {
                return Err(BenchError::Invalid("--target-qps must be positive".into()));
            }
            let b = s.latency_bound.ok_or_else(|| {
                BenchError::Invalid("the server scenario needs --latency-bound".into())
            })?;
            (Some(q), Some(b))
        }
        _ => (None, s.latency_bound),
    };
    // Warm-up: every worker, before the clock.
    for w in 0..sut.workers() {
        for q in 0..s.warmup_queries {
            sut.run(w, q).map_err(|e| {
                BenchError::Sut(format!("the system under test failed during warm-up: {e}"))
            })?;
        }
    }
    let meter = EnergyMeter::start();
    let mut out = match s.scenario {
        Scenario::SingleStream | Scenario::MultiStream => stream(sut, s)?,
        Scenario::Offline => offline(sut, s)?,
        Scenario::Server => server(
            sut,
            s,
            target_qps.unwrap_or(1.0),
            bound.unwrap_or(Duration::from_millis(50)),
        )?,
    };
    out.energy = meter.stop(out.samples);
    finish(&mut out, s, bound);
    Ok(out)
}

fn blank(s: &Settings) -> Outcome {
    Outcome {
        scenario: s.scenario,
        valid: true,
        invalid_reason: None,
        queries: 0,
        samples: 0,
        elapsed: Duration::ZERO,
        samples_per_second: 0.0,
        latencies: Latencies::new(),
        early_stop: None,
        target_qps: None,
        scheduled_qps: None,
        achieved_qps: None,
        latency_bound_ms: None,
        generator_max_lag_us: None,
        short_of_mlperf_minimums: false,
        notes: Vec::new(),
        energy: crate::system::Energy::default(),
    }
}

fn stream(sut: &dyn Sut, s: &Settings) -> Result<Outcome, BenchError> {
    let mut out = blank(s);
    let start = Instant::now();
    let mut q = 0u64;
    let mut last_end = start;
    while start.elapsed() < s.duration || q < s.min_queries {
        let t0 = Instant::now();
        sut.run(0, q).map_err(|e| sut_failure(q, &e))?;
        last_end = Instant::now();
        out.latencies.record((last_end - t0).as_nanos() as u64);
        q += 1;
    }
    out.queries = q;
    out.samples = q * sut.samples_per_query() as u64;
    out.elapsed = last_end - start;
    Ok(out)
}

fn offline(sut: &dyn Sut, s: &Settings) -> Result<Outcome, BenchError> {
    let mut out = blank(s);
    let next = AtomicU64::new(0);
    let completed = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let barrier = Barrier::new(sut.workers());
    let start_cell: Mutex<Option<Instant>> = Mutex::new(None);
    let results: Vec<(Latencies, Option<Instant>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..sut.workers())
            .map(|w| {
                let (next, completed, stop, failure, barrier, start_cell) =
                    (&next, &completed, &stop, &failure, &barrier, &start_cell);
                scope.spawn(move || {
                    let mut lat = Latencies::new();
                    let mut last_done = None;
                    barrier.wait();
                    let start = {
                        let mut g = start_cell
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        *g.get_or_insert_with(Instant::now)
                    };
                    while !stop.load(Ordering::Relaxed) {
                        let q = next.fetch_add(1, Ordering::Relaxed);
                        let t0 = Instant::now();
                        if let Err(e) = sut.run(w, q) {
                            let mut f = failure
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            f.get_or_insert(
                                sut_failure(completed.load(Ordering::Relaxed), &e).to_string(),
                            );
                            stop.store(true, Ordering::Relaxed);
                            break;
                        }
                        let end = Instant::now();
                        lat.record((end - t0).as_nanos() as u64);
                        last_done = Some(end);
                        let done = completed.fetch_add(1, Ordering::Relaxed) + 1;
                        if end - start >= s.duration && done >= s.min_queries {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                    (lat, last_done)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| (Latencies::new(), None)))
            .collect()
    });
    if let Some(f) = failure
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(BenchError::Sut(f));
    }
    let start = start_cell
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .unwrap_or_else(Instant::now);
    let mut last_end = start;
    for (l, last) in &results {
        out.latencies.merge(l);
        if let Some(t) = last {
            last_end = last_end.max(*t);
        }
    }
    out.queries = out.latencies.len();
    out.samples = out.queries * sut.samples_per_query() as u64;
    out.elapsed = last_end - start;
    out.notes.push(
        "offline latencies are per-query service times (issue to completion on a worker), not time since the run began"
            .into(),
    );
    Ok(out)
}

fn server(sut: &dyn Sut, s: &Settings, qps: f64, bound: Duration) -> Result<Outcome, BenchError> {
    let mut out = blank(s);
    let schedule = poisson_schedule(qps, s.duration, s.min_queries, s.seed);
    let planned = schedule.len() as u64;
    // More than 1% over the bound means the 99th percentile cannot meet it:
    // stop instead of queueing for ever.
    let allowed_over = planned / 100;
    let over = AtomicU64::new(0);
    let abort = AtomicBool::new(false);
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let completed = AtomicU64::new(0);
    let (tx, rx) = mpsc::channel::<(u64, Instant)>();
    let rx = Arc::new(Mutex::new(rx));
    let bound_ns = bound.as_nanos() as u64;
    let start = Instant::now() + Duration::from_millis(5);
    let (results, gen) = std::thread::scope(|scope| {
        let generator = {
            let abort = &abort;
            let schedule = &schedule;
            scope.spawn(move || {
                let mut max_lag = Duration::ZERO;
                let mut sent = 0u64;
                for (i, off) in schedule.iter().enumerate() {
                    if abort.load(Ordering::Relaxed) {
                        break;
                    }
                    let at = start + *off;
                    // Sleep to just before the arrival, then spin: sleep alone
                    // overshoots by the scheduler's granularity.
                    loop {
                        let now = Instant::now();
                        if now >= at {
                            break;
                        }
                        let left = at - now;
                        if left > Duration::from_micros(300) {
                            std::thread::sleep(left.saturating_sub(Duration::from_micros(200)));
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                    max_lag = max_lag.max(at.elapsed());
                    if tx.send((i as u64, at)).is_err() {
                        break;
                    }
                    sent += 1;
                }
                drop(tx);
                (max_lag, sent)
            })
        };
        let handles: Vec<_> = (0..sut.workers())
            .map(|w| {
                let (rx, over, abort, failure, completed) =
                    (Arc::clone(&rx), &over, &abort, &failure, &completed);
                scope.spawn(move || {
                    let mut lat = Latencies::new();
                    let mut last_done = None;
                    loop {
                        let msg = {
                            let g = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                            g.recv()
                        };
                        let Ok((q, scheduled)) = msg else { break };
                        if abort.load(Ordering::Relaxed) {
                            continue; // drain what is queued without running it
                        }
                        if let Err(e) = sut.run(w, q) {
                            let mut f = failure
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            f.get_or_insert(
                                sut_failure(completed.load(Ordering::Relaxed), &e).to_string(),
                            );
                            abort.store(true, Ordering::Relaxed);
                            continue;
                        }
                        let end = Instant::now();
                        let ns = end.saturating_duration_since(scheduled).as_nanos() as u64;
                        lat.record(ns);
                        last_done = Some(end);
                        completed.fetch_add(1, Ordering::Relaxed);
                        if ns > bound_ns && over.fetch_add(1, Ordering::Relaxed) + 1 > allowed_over
                        {
                            abort.store(true, Ordering::Relaxed);
                        }
                    }
                    (lat, last_done)
                })
            })
            .collect();
        let gen = generator.join().unwrap_or((Duration::ZERO, 0));
        let results: Vec<(Latencies, Option<Instant>)> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| (Latencies::new(), None)))
            .collect();
        (results, gen)
    });
    if let Some(f) = failure
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(BenchError::Sut(f));
    }
    let mut last_end = start;
    for (l, last) in &results {
        out.latencies.merge(l);
        if let Some(t) = last {
            last_end = last_end.max(*t);
        }
    }
    out.queries = out.latencies.len();
    out.samples = out.queries * sut.samples_per_query() as u64;
    out.elapsed = last_end.saturating_duration_since(start);
    out.target_qps = Some(qps);
    let span = schedule.last().map_or(0.0, Duration::as_secs_f64);
    out.scheduled_qps = Some(if span > 0.0 {
        planned as f64 / span
    } else {
        0.0
    });
    out.achieved_qps = Some(if out.elapsed.as_secs_f64() > 0.0 {
        out.queries as f64 / out.elapsed.as_secs_f64()
    } else {
        0.0
    });
    out.generator_max_lag_us = Some(gen.0.as_secs_f64() * 1e6);
    out.latency_bound_ms = Some(bound.as_secs_f64() * 1e3);
    if abort.load(Ordering::Relaxed) {
        out.valid = false;
        out.invalid_reason = Some(format!(
            "target QPS {qps} is unsustainable: more than 1% of the {planned} planned queries exceeded the {} ms latency bound, so the 99th percentile cannot meet it; stopped after {} of them completed",
            bound.as_secs_f64() * 1e3,
            out.queries
        ));
    } else {
        let n_over = over.load(Ordering::Relaxed);
        if let Err(more) = server_early_stopping_ok(out.queries, n_over, 0.99) {
            out.valid = false;
            out.invalid_reason = Some(format!(
                "early stopping: {n_over} of {} queries exceeded the bound; at least {more} more queries would be needed to claim the 99th percentile meets it",
                out.queries
            ));
        }
    }
    Ok(out)
}

fn finish(out: &mut Outcome, s: &Settings, bound: Option<Duration>) {
    let secs = out.elapsed.as_secs_f64();
    out.samples_per_second = if secs > 0.0 {
        out.samples as f64 / secs
    } else {
        0.0
    };
    let mut reasons: Vec<String> = out.invalid_reason.take().into_iter().collect();
    if matches!(out.scenario, Scenario::SingleStream | Scenario::MultiStream) {
        match early_stopping(&out.latencies.sorted(), out.scenario.percentile()) {
            Ok(es) => out.early_stop = Some(es),
            Err(need) => reasons.push(format!(
                "too few queries for the early-stopping estimate of the {}th percentile: {} run, {need} needed",
                out.scenario.percentile() * 100.0,
                out.queries
            )),
        }
    }
    if out.scenario == Scenario::Server {
        if let Some(b) = bound {
            let p99 = out.latencies.quantile_ns(0.99);
            if reasons.is_empty() && p99 > b.as_nanos() as u64 {
                reasons.push(format!(
                    "99th percentile latency {:.3} ms exceeds the {:.3} ms bound; reduce --target-qps",
                    p99 as f64 / 1e6,
                    b.as_secs_f64() * 1e3
                ));
            }
        }
    }
    if out.queries < s.min_queries && reasons.is_empty() {
        reasons.push(format!(
            "only {} of the minimum {} queries completed",
            out.queries, s.min_queries
        ));
    }
    let count = if out.scenario == Scenario::Offline {
        out.samples
    } else {
        out.queries
    };
    if out.elapsed < MLPERF_MIN_DURATION || count < out.scenario.mlperf_min_queries() {
        out.short_of_mlperf_minimums = true;
        out.notes.push(format!(
            "shorter than MLPerf Inference's minimums ({} s and {} {}): fine for tuning, not comparable to a full-length run",
            MLPERF_MIN_DURATION.as_secs(),
            out.scenario.mlperf_min_queries(),
            if out.scenario == Scenario::Offline { "samples" } else { "queries" }
        ));
    }
    out.valid = reasons.is_empty();
    out.invalid_reason = if reasons.is_empty() {
        None
    } else {
        Some(reasons.join("; "))
    };
}
