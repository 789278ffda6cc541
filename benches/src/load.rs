//! Shared by the load workloads: worker threads that repeat one operation for a fixed time, each
//! with its own connection, latencies in HDR histograms merged at the end; and the median used to
//! report repeated runs.

use hdrhistogram::Histogram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One timed phase: operations completed, wall time, per-operation latency in microseconds.
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

fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    // Up to 10 minutes, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

/// Runs `concurrency` workers for `seconds`. Each opens its own connection with
/// `connect(worker)` and then calls `operation(connection, worker, sequence)` until time is up;
/// the first error of any worker is the phase's error.
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
    let (connect, operation) = (Arc::new(connect), Arc::new(operation));
    let stop = Arc::new(AtomicBool::new(false));
    let operations = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (connect, operation, stop, operations) = (
                connect.clone(),
                operation.clone(),
                stop.clone(),
                operations.clone(),
            );
            std::thread::spawn(move || -> anyhow::Result<Histogram<u64>> {
                let mut histogram = latency_histogram()?;
                let mut connection = connect(worker)?;
                let mut sequence = 0;
                while !stop.load(Ordering::Relaxed) {
                    let begin = Instant::now();
                    operation(&mut connection, worker, sequence)?;
                    histogram.saturating_record(begin.elapsed().as_micros() as u64);
                    operations.fetch_add(1, Ordering::Relaxed);
                    sequence += 1;
                }
                Ok(histogram)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut histogram = latency_histogram()?;
    for worker in workers {
        histogram.add(
            &worker
                .join()
                .map_err(|_| anyhow::anyhow!("worker panicked"))??,
        )?;
    }
    Ok(Phase {
        operations: operations.load(Ordering::Relaxed),
        seconds: start.elapsed().as_secs_f64(),
        histogram,
    })
}

/// The median of repeated measurements (the upper one of an even count).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
