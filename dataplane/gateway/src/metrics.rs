//! Gateway metrics in the Prometheus text exposition format (version 0.0.4), served on the admin
//! listener at `/metrics`.
//!
//! Model: every executor owns one [`ExecutorMetrics`] (atomics on cache lines of their own) and is
//! the only thread that writes it; the [`MetricsRegistry`] holds a reference to each and merges
//! them when scraped. The request path therefore never takes a lock or contends on a cache line
//! with another core; the registry's mutex is taken only when an executor starts and on a scrape.
//! Requests are indexed by `Endpoint::operation_index` (plus one slot for requests refused
//! before routing), never by label string.
//!
//! Invariants: counters only grow; for every operation the latency histogram's `+Inf` bucket and
//! `_count` equal the sum of `cairn_gateway_requests_total` over its status classes, because both
//! are recorded by the same call ([`ExecutorMetrics::record_request`]); bucket counts are
//! rendered cumulative. A scrape reads each atomic once without stopping the executors, so two
//! series of one scrape may be a request apart.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cairn_s3_proto::endpoint::OPERATION_NAMES;

/// Slot of requests that never reached an operation (the router refused them).
pub const UNROUTED_OPERATION: usize = OPERATION_NAMES.len();
const OPERATION_SLOTS: usize = OPERATION_NAMES.len() + 1;
const UNROUTED_NAME: &str = "Unrouted";

const STATUS_CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

/// Upper bounds of the latency buckets, in microseconds (`le` in seconds when rendered): from
/// 1 ms (a small GET from a warm cache) to 30 s (a 5 GiB part over a slow link).
const LATENCY_BUCKET_BOUNDS_MICROS: [u64; 14] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000,
];
/// The bounded buckets and the `+Inf` one.
const LATENCY_BUCKETS: usize = LATENCY_BUCKET_BOUNDS_MICROS.len() + 1;

/// Why a shard piece could not be used on the read path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardReadError {
    /// The node failed, timed out or does not know the piece.
    Unavailable,
    /// The piece arrived but its CRC32C did not match the shard map.
    Corrupt,
}

#[derive(Default)]
struct OperationMetrics {
    requests_by_status_class: [AtomicU64; STATUS_CLASSES.len()],
    latency_buckets: [AtomicU64; LATENCY_BUCKETS],
    latency_sum_micros: AtomicU64,
    request_body_bytes: AtomicU64,
    response_body_bytes: AtomicU64,
}

/// One executor's counters. Aligned so that two executors' counters never share a cache line.
#[repr(align(128))]
pub struct ExecutorMetrics {
    operations: [OperationMetrics; OPERATION_SLOTS],
    requests_in_flight: AtomicI64,
    shard_write_errors: AtomicU64,
    shard_read_errors_unavailable: AtomicU64,
    shard_read_errors_corrupt: AtomicU64,
    degraded_stripe_reads: AtomicU64,
    aborted_writes: AtomicU64,
    orphan_pieces_deleted: AtomicU64,
    orphan_piece_delete_errors: AtomicU64,
    md5_passes: AtomicU64,
    md5_pass_lanes: AtomicU64,
}

fn add(counter: &AtomicU64, amount: u64) {
    // Relaxed: each counter is an independent tally; a scrape needs no ordering between them.
    counter.fetch_add(amount, Ordering::Relaxed);
}

fn status_class_index(status: u16) -> usize {
    match status {
        0..=299 => 0,
        300..=399 => 1,
        400..=499 => 2,
        _ => 3,
    }
}

fn latency_bucket_index(latency_micros: u64) -> usize {
    LATENCY_BUCKET_BOUNDS_MICROS
        .iter()
        .position(|bound| latency_micros <= *bound)
        .unwrap_or(LATENCY_BUCKET_BOUNDS_MICROS.len())
}

impl ExecutorMetrics {
    fn new() -> Self {
        ExecutorMetrics {
            operations: std::array::from_fn(|_| OperationMetrics::default()),
            requests_in_flight: AtomicI64::new(0),
            shard_write_errors: AtomicU64::new(0),
            shard_read_errors_unavailable: AtomicU64::new(0),
            shard_read_errors_corrupt: AtomicU64::new(0),
            degraded_stripe_reads: AtomicU64::new(0),
            aborted_writes: AtomicU64::new(0),
            orphan_pieces_deleted: AtomicU64::new(0),
            orphan_piece_delete_errors: AtomicU64::new(0),
            md5_passes: AtomicU64::new(0),
            md5_pass_lanes: AtomicU64::new(0),
        }
    }

    pub fn request_started(&self) {
        self.requests_in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a finished request (its response body sent, or the exchange abandoned).
    pub fn record_request(
        &self,
        operation: usize,
        status: u16,
        latency_micros: u64,
        request_body_bytes: u64,
        response_body_bytes: u64,
    ) {
        let slot = &self.operations[operation.min(UNROUTED_OPERATION)];
        add(
            &slot.requests_by_status_class[status_class_index(status)],
            1,
        );
        add(
            &slot.latency_buckets[latency_bucket_index(latency_micros)],
            1,
        );
        add(&slot.latency_sum_micros, latency_micros);
        add(&slot.request_body_bytes, request_body_bytes);
        add(&slot.response_body_bytes, response_body_bytes);
        self.requests_in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn shard_write_failed(&self) {
        add(&self.shard_write_errors, 1);
    }

    pub fn shard_read_failed(&self, error: ShardReadError) {
        match error {
            ShardReadError::Unavailable => add(&self.shard_read_errors_unavailable, 1),
            ShardReadError::Corrupt => add(&self.shard_read_errors_corrupt, 1),
        }
    }

    /// A stripe that had to be decoded from parity because a data piece was unusable.
    pub fn degraded_stripe_read(&self) {
        add(&self.degraded_stripe_reads, 1);
    }

    /// A PREPARING record rolled back by the gateway (AbortWrite accepted).
    pub fn write_aborted(&self) {
        add(&self.aborted_writes, 1);
    }

    /// Pieces of an abandoned write deleted by the gateway, and those it could not delete.
    pub fn orphan_pieces_deleted(&self, deleted: u64, failed: u64) {
        add(&self.orphan_pieces_deleted, deleted);
        add(&self.orphan_piece_delete_errors, failed);
    }

    /// One pass of the executor's shared ETag MD5 over `lanes` uploads
    /// (see `crate::upload_md5`); a pass that found no lane ready (0) is not one.
    pub fn md5_pass(&self, lanes: usize) {
        if lanes == 0 {
            return;
        }
        add(&self.md5_passes, 1);
        add(&self.md5_pass_lanes, lanes as u64);
    }
}

/// Every executor's metrics, merged on scrape.
#[derive(Default)]
pub struct MetricsRegistry {
    executors: Mutex<Vec<Arc<ExecutorMetrics>>>,
}

/// Plain sums over executors, read once per scrape.
struct Snapshot {
    requests: [[u64; STATUS_CLASSES.len()]; OPERATION_SLOTS],
    latency_buckets: [[u64; LATENCY_BUCKETS]; OPERATION_SLOTS],
    latency_sum_micros: [u64; OPERATION_SLOTS],
    request_body_bytes: [u64; OPERATION_SLOTS],
    response_body_bytes: [u64; OPERATION_SLOTS],
    requests_in_flight: i64,
    shard_write_errors: u64,
    shard_read_errors_unavailable: u64,
    shard_read_errors_corrupt: u64,
    degraded_stripe_reads: u64,
    aborted_writes: u64,
    orphan_pieces_deleted: u64,
    orphan_piece_delete_errors: u64,
    md5_passes: u64,
    md5_pass_lanes: u64,
}

pub(crate) fn operation_label(slot: usize) -> &'static str {
    OPERATION_NAMES.get(slot).copied().unwrap_or(UNROUTED_NAME)
}

impl MetricsRegistry {
    /// A new executor's counters, registered for scrapes.
    pub fn register_executor(&self) -> Arc<ExecutorMetrics> {
        let metrics = Arc::new(ExecutorMetrics::new());
        self.executors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::clone(&metrics));
        metrics
    }

    fn snapshot(&self) -> Snapshot {
        let executors = self
            .executors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut snapshot = Snapshot {
            requests: [[0; STATUS_CLASSES.len()]; OPERATION_SLOTS],
            latency_buckets: [[0; LATENCY_BUCKETS]; OPERATION_SLOTS],
            latency_sum_micros: [0; OPERATION_SLOTS],
            request_body_bytes: [0; OPERATION_SLOTS],
            response_body_bytes: [0; OPERATION_SLOTS],
            requests_in_flight: 0,
            shard_write_errors: 0,
            shard_read_errors_unavailable: 0,
            shard_read_errors_corrupt: 0,
            degraded_stripe_reads: 0,
            aborted_writes: 0,
            orphan_pieces_deleted: 0,
            orphan_piece_delete_errors: 0,
            md5_passes: 0,
            md5_pass_lanes: 0,
        };
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        for executor in &executors {
            for (slot, operation) in executor.operations.iter().enumerate() {
                for (class, counter) in operation.requests_by_status_class.iter().enumerate() {
                    snapshot.requests[slot][class] += read(counter);
                }
                for (bucket, counter) in operation.latency_buckets.iter().enumerate() {
                    snapshot.latency_buckets[slot][bucket] += read(counter);
                }
                snapshot.latency_sum_micros[slot] += read(&operation.latency_sum_micros);
                snapshot.request_body_bytes[slot] += read(&operation.request_body_bytes);
                snapshot.response_body_bytes[slot] += read(&operation.response_body_bytes);
            }
            snapshot.requests_in_flight += executor.requests_in_flight.load(Ordering::Relaxed);
            snapshot.shard_write_errors += read(&executor.shard_write_errors);
            snapshot.shard_read_errors_unavailable += read(&executor.shard_read_errors_unavailable);
            snapshot.shard_read_errors_corrupt += read(&executor.shard_read_errors_corrupt);
            snapshot.degraded_stripe_reads += read(&executor.degraded_stripe_reads);
            snapshot.aborted_writes += read(&executor.aborted_writes);
            snapshot.orphan_pieces_deleted += read(&executor.orphan_pieces_deleted);
            snapshot.orphan_piece_delete_errors += read(&executor.orphan_piece_delete_errors);
            snapshot.md5_passes += read(&executor.md5_passes);
            snapshot.md5_pass_lanes += read(&executor.md5_pass_lanes);
        }
        snapshot
    }

    /// The `/metrics` document.
    pub fn render(&self) -> String {
        let snapshot = self.snapshot();
        let mut out = String::with_capacity(16 * 1024);
        // `write!` into a String cannot fail; the results are ignored on purpose.
        let header = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };

        header(
            &mut out,
            "cairn_gateway_requests_total",
            "counter",
            "S3 requests finished, by operation and HTTP status class (499 counts as 4xx: the client went away).",
        );
        for slot in 0..OPERATION_SLOTS {
            for (class, name) in STATUS_CLASSES.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "cairn_gateway_requests_total{{operation=\"{}\",status_class=\"{name}\"}} {}",
                    operation_label(slot),
                    snapshot.requests[slot][class]
                );
            }
        }

        header(
            &mut out,
            "cairn_gateway_request_duration_seconds",
            "histogram",
            "Time from the request head to the last byte of the response body handed to the socket, by operation.",
        );
        for slot in 0..OPERATION_SLOTS {
            let operation = operation_label(slot);
            let mut cumulative = 0u64;
            for (bucket, count) in snapshot.latency_buckets[slot].iter().enumerate() {
                cumulative += count;
                let bound = match LATENCY_BUCKET_BOUNDS_MICROS.get(bucket) {
                    Some(micros) => format!("{}", *micros as f64 / 1e6),
                    None => "+Inf".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "cairn_gateway_request_duration_seconds_bucket{{operation=\"{operation}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "cairn_gateway_request_duration_seconds_sum{{operation=\"{operation}\"}} {:.6}",
                snapshot.latency_sum_micros[slot] as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "cairn_gateway_request_duration_seconds_count{{operation=\"{operation}\"}} {cumulative}"
            );
        }

        for (name, help, values) in [
            (
                "cairn_gateway_request_body_bytes_total",
                "Request body bytes received (after HTTP framing, before aws-chunked decoding), by operation.",
                &snapshot.request_body_bytes,
            ),
            (
                "cairn_gateway_response_body_bytes_total",
                "Response body bytes sent, by operation.",
                &snapshot.response_body_bytes,
            ),
        ] {
            header(&mut out, name, "counter", help);
            for (slot, value) in values.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}{{operation=\"{}\"}} {value}",
                    operation_label(slot)
                );
            }
        }

        header(
            &mut out,
            "cairn_gateway_requests_in_flight",
            "gauge",
            "Requests received whose response has not finished.",
        );
        let _ = writeln!(
            out,
            "cairn_gateway_requests_in_flight {}",
            snapshot.requests_in_flight.max(0)
        );
        header(
            &mut out,
            "cairn_gateway_shard_write_errors_total",
            "counter",
            "Shard piece writes that failed (the piece was then written to an alternate node, if one was left).",
        );
        let _ = writeln!(
            out,
            "cairn_gateway_shard_write_errors_total {}",
            snapshot.shard_write_errors
        );
        header(
            &mut out,
            "cairn_gateway_shard_read_errors_total",
            "counter",
            "Shard pieces that could not be used on the read path, by reason.",
        );
        let _ = writeln!(
            out,
            "cairn_gateway_shard_read_errors_total{{reason=\"unavailable\"}} {}",
            snapshot.shard_read_errors_unavailable
        );
        let _ = writeln!(
            out,
            "cairn_gateway_shard_read_errors_total{{reason=\"corrupt\"}} {}",
            snapshot.shard_read_errors_corrupt
        );
        header(
            &mut out,
            "cairn_gateway_degraded_stripe_reads_total",
            "counter",
            "Stripes served by decoding from parity because a data piece was missing, late or corrupt.",
        );
        let _ = writeln!(
            out,
            "cairn_gateway_degraded_stripe_reads_total {}",
            snapshot.degraded_stripe_reads
        );
        for (name, help, value) in [
            (
                "cairn_gateway_aborted_writes_total",
                "PREPARING records the gateway rolled back (AbortWrite) after a failed PUT.",
                snapshot.aborted_writes,
            ),
            (
                "cairn_gateway_abandoned_pieces_deleted_total",
                "Shard pieces of failed writes (nothing references them) deleted by the gateway.",
                snapshot.orphan_pieces_deleted,
            ),
            (
                "cairn_gateway_abandoned_piece_delete_errors_total",
                "Shard pieces of failed writes the gateway could not delete (left to the janitor).",
                snapshot.orphan_piece_delete_errors,
            ),
            (
                "cairn_gateway_md5_passes_total",
                "Passes of the shared ETag MD5 that hashed several uploads' bytes together.",
                snapshot.md5_passes,
            ),
            (
                "cairn_gateway_md5_pass_lanes_total",
                "Uploads hashed in those passes (divided by the passes: uploads per pass).",
                snapshot.md5_pass_lanes,
            ),
        ] {
            header(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name{labels} value` lines of a rendered document, as (series, value).
    fn samples(document: &str) -> Vec<(String, String)> {
        document
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("sample has a value");
                (series.to_owned(), value.to_owned())
            })
            .collect()
    }

    fn value(document: &str, series: &str) -> String {
        samples(document)
            .into_iter()
            .find(|(name, _)| name == series)
            .unwrap_or_else(|| panic!("{series} missing from:\n{document}"))
            .1
    }

    #[test]
    fn buckets_and_status_classes() {
        assert_eq!(latency_bucket_index(0), 0);
        assert_eq!(latency_bucket_index(1_000), 0);
        assert_eq!(latency_bucket_index(1_001), 1);
        assert_eq!(latency_bucket_index(30_000_000), 13);
        assert_eq!(latency_bucket_index(30_000_001), 14);
        assert_eq!(status_class_index(200), 0);
        assert_eq!(status_class_index(206), 0);
        assert_eq!(status_class_index(304), 1);
        assert_eq!(status_class_index(404), 2);
        assert_eq!(status_class_index(499), 2);
        assert_eq!(status_class_index(503), 3);
    }

    #[test]
    fn executors_are_merged_on_scrape() {
        let registry = MetricsRegistry::default();
        let first = registry.register_executor();
        let second = registry.register_executor();
        let get = 6; // GetObject
        assert_eq!(OPERATION_NAMES[get], "GetObject");
        for (executor, status, latency_micros) in [
            (&first, 200, 500),
            (&first, 206, 3_000),
            (&second, 404, 40_000_000),
        ] {
            executor.request_started();
            executor.record_request(get, status, latency_micros, 10, 100);
        }
        second.request_started();
        first.shard_write_failed();
        second.shard_read_failed(ShardReadError::Corrupt);
        second.degraded_stripe_read();
        let document = registry.render();
        let requests = |class: &str| {
            value(
                &document,
                &format!(
                    "cairn_gateway_requests_total{{operation=\"GetObject\",status_class=\"{class}\"}}"
                ),
            )
        };
        assert_eq!(requests("2xx"), "2");
        assert_eq!(requests("4xx"), "1");
        assert_eq!(requests("5xx"), "0");
        let bucket = |le: &str| {
            value(
                &document,
                &format!(
                    "cairn_gateway_request_duration_seconds_bucket{{operation=\"GetObject\",le=\"{le}\"}}"
                ),
            )
        };
        assert_eq!(bucket("0.001"), "1");
        assert_eq!(bucket("0.0025"), "1");
        assert_eq!(bucket("0.005"), "2");
        assert_eq!(bucket("30"), "2");
        assert_eq!(bucket("+Inf"), "3");
        assert_eq!(
            value(
                &document,
                "cairn_gateway_request_duration_seconds_count{operation=\"GetObject\"}"
            ),
            "3"
        );
        assert_eq!(
            value(
                &document,
                "cairn_gateway_request_duration_seconds_sum{operation=\"GetObject\"}"
            ),
            "40.003500"
        );
        assert_eq!(
            value(
                &document,
                "cairn_gateway_request_body_bytes_total{operation=\"GetObject\"}"
            ),
            "30"
        );
        assert_eq!(
            value(
                &document,
                "cairn_gateway_response_body_bytes_total{operation=\"GetObject\"}"
            ),
            "300"
        );
        assert_eq!(value(&document, "cairn_gateway_requests_in_flight"), "1");
        assert_eq!(
            value(&document, "cairn_gateway_shard_write_errors_total"),
            "1"
        );
        assert_eq!(
            value(
                &document,
                "cairn_gateway_shard_read_errors_total{reason=\"corrupt\"}"
            ),
            "1"
        );
        assert_eq!(
            value(&document, "cairn_gateway_degraded_stripe_reads_total"),
            "1"
        );
        assert_eq!(
            value(
                &document,
                "cairn_gateway_requests_total{operation=\"Unrouted\",status_class=\"4xx\"}"
            ),
            "0"
        );
    }

    /// The exposition format's rules that a scraper enforces: every sample belongs to a family
    /// announced by one `# TYPE` line before it, histogram buckets are cumulative and end with
    /// `+Inf` equal to `_count`, values parse as numbers, label values are quoted.
    #[test]
    fn rendered_document_follows_the_text_format() {
        let registry = MetricsRegistry::default();
        let executor = registry.register_executor();
        for latency_micros in [10, 20_000, 2_000_000] {
            executor.request_started();
            executor.record_request(5, 200, latency_micros, 1, 2);
        }
        let document = registry.render();
        assert!(document.ends_with('\n'));
        let mut families: Vec<(String, String)> = Vec::new();
        for line in document.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                assert!(
                    families.iter().all(|(known, _)| known != name),
                    "family {name} announced twice"
                );
                families.push((name.to_owned(), kind.to_owned()));
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("bad value: {line}"));
            let name = series.split('{').next().unwrap();
            let (family, kind) = families.last().expect("a sample before any # TYPE");
            let belongs = match kind.as_str() {
                "histogram" => [
                    format!("{family}_bucket"),
                    format!("{family}_sum"),
                    format!("{family}_count"),
                ]
                .contains(&name.to_owned()),
                _ => name == family,
            };
            assert!(belongs, "{line} outside its family {family}");
            if let Some(labels) = series.strip_prefix(name)
                && !labels.is_empty()
            {
                let inner = labels.strip_prefix('{').unwrap().strip_suffix('}').unwrap();
                for pair in inner.split(',') {
                    let (_, quoted) = pair.split_once('=').unwrap();
                    assert!(quoted.starts_with('"') && quoted.ends_with('"'), "{line}");
                }
            }
        }
        let mut previous = 0u64;
        for (series, value) in samples(&document) {
            if series.starts_with(
                "cairn_gateway_request_duration_seconds_bucket{operation=\"PutObject\"",
            ) {
                let count: u64 = value.parse().unwrap();
                assert!(count >= previous, "buckets are cumulative");
                previous = count;
            }
        }
        assert_eq!(previous, 3);
        assert_eq!(
            value(
                &document,
                "cairn_gateway_request_duration_seconds_count{operation=\"PutObject\"}"
            ),
            "3"
        );
    }
}
