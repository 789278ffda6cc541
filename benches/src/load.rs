//! Shared by the load workloads: worker threads that repeat operations until a deadline or an
//! operation budget is used up, each with its own connection. Every worker keeps its own HDR
//! histogram per operation kind and its own per-second timeline; they are merged once the workers
//! have stopped, so the measured path takes no lock. Also the median used to report repeated runs.
//!
//! A progress bar on stderr redraws in place when stderr is a terminal; otherwise one progress
//! line every few seconds keeps logs short.

use hdrhistogram::Histogram;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One timed phase of a single operation kind: operations completed, wall time, per-operation
/// latency in microseconds.
pub struct Phase {
    pub operations: u64,
    pub seconds: f64,
    pub histogram: Histogram<u64>,
}

impl Phase {
    pub fn ops_per_second(&self) -> f64 {
        self.operations as f64 / self.seconds
    }
}

pub fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    // Up to 10 minutes, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

/// When a load run stops, and how it shows progress.
pub struct LoadSpec {
    pub concurrency: usize,
    /// Stop after this many seconds (`None`: only the operation budget stops the run).
    pub seconds: Option<f64>,
    /// Stop once this many operations have been started in total across workers.
    pub operations: Option<u64>,
    /// Names of the operation kinds an [`Outcome::kind`] indexes.
    pub kinds: Vec<&'static str>,
    /// Progress-bar label; `None` draws no progress.
    pub progress_label: Option<String>,
}

/// What one operation did: its kind (index into [`LoadSpec::kinds`]), the payload bytes it moved
/// and the items it handled (keys listed, parts uploaded; 1 for a plain request).
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    pub kind: usize,
    pub bytes: u64,
    pub items: u64,
}

/// Totals of one kind of operation over a load run.
pub struct KindResult {
    pub name: &'static str,
    pub operations: u64,
    pub bytes: u64,
    pub items: u64,
    pub histogram: Histogram<u64>,
}

/// One second of a load run (all kinds together), counted when operations complete.
#[derive(Clone, Copy, Default, Debug)]
pub struct Second {
    pub operations: u64,
    pub bytes: u64,
}

pub struct LoadResult {
    pub seconds: f64,
    pub kinds: Vec<KindResult>,
    pub timeline: Vec<Second>,
    /// CPU spent by the servers, this client and the machine during the phase, when measured.
    pub cpu: Option<crate::cpu::CpuUsage>,
}

impl LoadResult {
    pub fn operations(&self) -> u64 {
        self.kinds.iter().map(|kind| kind.operations).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.kinds.iter().map(|kind| kind.bytes).sum()
    }

    /// All kinds' latencies in one histogram.
    pub fn merged_histogram(&self) -> anyhow::Result<Histogram<u64>> {
        let mut histogram = latency_histogram()?;
        for kind in &self.kinds {
            histogram.add(&kind.histogram)?;
        }
        Ok(histogram)
    }
}

struct WorkerTotals {
    histograms: Vec<Histogram<u64>>,
    operations: Vec<u64>,
    bytes: Vec<u64>,
    items: Vec<u64>,
    timeline: Vec<Second>,
}

/// Runs `spec.concurrency` workers. Each opens its own connection with `connect(worker)` and then
/// calls `operation(connection, worker, sequence)` with a run-wide sequence number until the
/// deadline passes, the operation budget is used up, or the operation returns `Ok(None)` (nothing
/// left to do for this worker). The first error of any worker is the run's error.
pub fn run_load<C, M, F>(spec: &LoadSpec, connect: M, operation: F) -> anyhow::Result<LoadResult>
where
    C: 'static,
    M: Fn(usize) -> anyhow::Result<C> + Send + Sync + 'static,
    F: Fn(&mut C, usize, u64) -> anyhow::Result<Option<Outcome>> + Send + Sync + 'static,
{
    let (connect, operation) = (Arc::new(connect), Arc::new(operation));
    let stop = Arc::new(AtomicBool::new(false));
    let next_sequence = Arc::new(AtomicU64::new(0));
    let completed = Arc::new(AtomicU64::new(0));
    let completed_bytes = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicUsize::new(spec.concurrency));
    let kind_count = spec.kinds.len();
    let budget = spec.operations.unwrap_or(u64::MAX);
    let start = Instant::now();
    let workers: Vec<_> = (0..spec.concurrency)
        .map(|worker| {
            let (connect, operation, stop, next_sequence, completed, completed_bytes, running) = (
                connect.clone(),
                operation.clone(),
                stop.clone(),
                next_sequence.clone(),
                completed.clone(),
                completed_bytes.clone(),
                running.clone(),
            );
            std::thread::spawn(move || -> anyhow::Result<WorkerTotals> {
                let result = (|| {
                    let mut totals = WorkerTotals {
                        histograms: (0..kind_count)
                            .map(|_| latency_histogram())
                            .collect::<anyhow::Result<_>>()?,
                        operations: vec![0; kind_count],
                        bytes: vec![0; kind_count],
                        items: vec![0; kind_count],
                        timeline: Vec::new(),
                    };
                    let mut connection = connect(worker)?;
                    while !stop.load(Ordering::Relaxed) {
                        let sequence = next_sequence.fetch_add(1, Ordering::Relaxed);
                        if sequence >= budget {
                            break;
                        }
                        let begin = Instant::now();
                        let Some(outcome) = operation(&mut connection, worker, sequence)? else {
                            break;
                        };
                        let end = Instant::now();
                        anyhow::ensure!(outcome.kind < kind_count, "unknown operation kind");
                        totals.histograms[outcome.kind]
                            .saturating_record((end - begin).as_micros() as u64);
                        totals.operations[outcome.kind] += 1;
                        totals.bytes[outcome.kind] += outcome.bytes;
                        totals.items[outcome.kind] += outcome.items;
                        let second = (end - start).as_secs() as usize;
                        if totals.timeline.len() <= second {
                            totals.timeline.resize(second + 1, Second::default());
                        }
                        totals.timeline[second].operations += 1;
                        totals.timeline[second].bytes += outcome.bytes;
                        completed.fetch_add(1, Ordering::Relaxed);
                        completed_bytes.fetch_add(outcome.bytes, Ordering::Relaxed);
                    }
                    Ok(totals)
                })();
                running.fetch_sub(1, Ordering::Relaxed);
                if result.is_err() {
                    // One failed worker ends the run; the others need not finish their budget.
                    stop.store(true, Ordering::Relaxed);
                }
                result
            })
        })
        .collect();
    let mut progress = spec
        .progress_label
        .as_ref()
        .map(|label| Progress::new(label.clone(), spec.seconds, spec.operations));
    while running.load(Ordering::Relaxed) > 0 {
        std::thread::sleep(Duration::from_millis(100));
        let elapsed = start.elapsed().as_secs_f64();
        if spec.seconds.is_some_and(|seconds| elapsed >= seconds) {
            stop.store(true, Ordering::Relaxed);
        }
        if let Some(progress) = progress.as_mut() {
            progress.draw(
                elapsed,
                completed.load(Ordering::Relaxed),
                completed_bytes.load(Ordering::Relaxed),
            );
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    if let Some(progress) = progress.as_mut() {
        progress.finish(
            seconds,
            completed.load(Ordering::Relaxed),
            completed_bytes.load(Ordering::Relaxed),
        );
    }
    let mut kinds: Vec<KindResult> = spec
        .kinds
        .iter()
        .map(|name| {
            Ok(KindResult {
                name,
                operations: 0,
                bytes: 0,
                items: 0,
                histogram: latency_histogram()?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut timeline: Vec<Second> = Vec::new();
    let mut first_error = None;
    for worker in workers {
        match worker
            .join()
            .map_err(|_| anyhow::anyhow!("worker panicked"))?
        {
            Ok(totals) => {
                for (index, kind) in kinds.iter_mut().enumerate() {
                    kind.histogram.add(&totals.histograms[index])?;
                    kind.operations += totals.operations[index];
                    kind.bytes += totals.bytes[index];
                    kind.items += totals.items[index];
                }
                if timeline.len() < totals.timeline.len() {
                    timeline.resize(totals.timeline.len(), Second::default());
                }
                for (merged, second) in timeline.iter_mut().zip(&totals.timeline) {
                    merged.operations += second.operations;
                    merged.bytes += second.bytes;
                }
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    Ok(LoadResult {
        seconds,
        kinds,
        timeline,
        cpu: None,
    })
}

/// Runs `concurrency` workers for `seconds`, each repeating one operation kind (no progress bar).
pub fn run_workers<C, M, F>(
    concurrency: usize,
    seconds: f64,
    connect: M,
    operation: F,
) -> anyhow::Result<Phase>
where
    C: 'static,
    M: Fn(usize) -> anyhow::Result<C> + Send + Sync + 'static,
    F: Fn(&mut C, usize, u64) -> anyhow::Result<()> + Send + Sync + 'static,
{
    let spec = LoadSpec {
        concurrency,
        seconds: Some(seconds),
        operations: None,
        kinds: vec!["operation"],
        progress_label: None,
    };
    let mut result = run_load(&spec, connect, move |connection, worker, sequence| {
        operation(connection, worker, sequence)?;
        Ok(Some(Outcome {
            kind: 0,
            bytes: 0,
            items: 1,
        }))
    })?;
    let kind = result.kinds.remove(0);
    Ok(Phase {
        operations: kind.operations,
        seconds: result.seconds,
        histogram: kind.histogram,
    })
}

/// The progress bar of one load run on stderr.
struct Progress {
    label: String,
    seconds: Option<f64>,
    operations: Option<u64>,
    terminal: bool,
    last_line: Instant,
}

impl Progress {
    fn new(label: String, seconds: Option<f64>, operations: Option<u64>) -> Progress {
        Progress {
            label,
            seconds,
            operations,
            terminal: std::io::stderr().is_terminal(),
            last_line: Instant::now(),
        }
    }

    fn line(&self, elapsed: f64, completed: u64, bytes: u64) -> String {
        // The fraction done is the larger of time used and operation budget used.
        let by_time = self.seconds.map(|seconds| elapsed / seconds);
        let by_count = self
            .operations
            .map(|operations| completed as f64 / operations.max(1) as f64);
        let fraction = by_time
            .into_iter()
            .chain(by_count)
            .fold(0.0f64, f64::max)
            .clamp(0.0, 1.0);
        const WIDTH: usize = 30;
        let filled = (fraction * WIDTH as f64).round() as usize;
        let rate = completed as f64 / elapsed.max(1e-9);
        format!(
            "{} [{}{}] {:3.0}% {:6.1}s {} ops {:.0} ops/s {:.1} MB/s",
            self.label,
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            fraction * 100.0,
            elapsed,
            completed,
            rate,
            bytes as f64 / elapsed.max(1e-9) / 1e6
        )
    }

    fn draw(&mut self, elapsed: f64, completed: u64, bytes: u64) {
        let line = self.line(elapsed, completed, bytes);
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(stderr, "\r{line}\x1b[K");
            let _ = stderr.flush();
        } else if self.last_line.elapsed() >= Duration::from_secs(5) {
            let _ = writeln!(stderr, "{line}");
            self.last_line = Instant::now();
        }
    }

    fn finish(&mut self, elapsed: f64, completed: u64, bytes: u64) {
        let line = self.line(elapsed, completed, bytes);
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let _ = writeln!(stderr, "\r{line}\x1b[K");
        } else {
            let _ = writeln!(stderr, "{line}");
        }
    }
}

/// The median of repeated measurements (the upper one of an even count).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
