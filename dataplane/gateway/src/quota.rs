//! Per-bucket quotas (bytes and objects): the limits, their admission control, the admin API.
//!
//! # Model
//!
//! A quota is the bucket attribute [`QUOTA_ATTRIBUTE`] (JSON `{"max_bytes":N,"max_objects":N}`,
//! either limit optional) on the bucket record, set and cleared by root through the admin API
//! (`/_cairn/admin/v1/bucket-quota/BUCKET`, client `cairn admin bucket-quota`). Every request
//! reads the bucket record anyway, so a changed quota applies to the next request.
//!
//! Usage is exact where it is kept: each object partition maintains, in its state machine, what
//! it stores of each bucket ([`cairn_meta_state::usage`]: committed versions current and
//! noncurrent, PREPARING writes, stored parts of uploads in progress). A bucket's keys spread over
//! every partition, so its usage is the sum of P answers (`BucketStats`), and no single Raft
//! group could check a limit atomically without a cross-partition round trip on every PUT. The
//! gateway therefore admits writes against a *view* of the usage, kept per bucket in
//! [`QuotaTracker`] (one per gateway process, shared by its executors):
//!
//! - the view is the last summed `BucketStats` (refreshed in the background once it is
//!   [`REFRESH_AFTER`] old, and read afresh before use once it is [`MAX_VIEW_AGE`] old), plus
//!   every write this gateway admitted that the summed read may not include: a write counts
//!   locally from its admission until a read that *started* after its metadata record was
//!   applied (its PrepareWrite, UploadPart or CompleteMultipartUpload answered) is installed;
//! - a write of `bytes` (and one object, for PUT, copy and completion) is admitted when
//!   `view + write` is within both limits; a completion adds one object and no bytes (its parts
//!   are already counted), so it is refused only by the object limit or a bucket already over
//!   its byte limit;
//! - a write the view would refuse is checked again against usage read after the write arrived
//!   (so a delete that freed space is always seen), and refused with `403 QuotaExceeded` only
//!   then — before any shard is written or any metadata changed, so a refusal loses nothing.
//!
//! # Guarantee
//!
//! Within one gateway process the admission is exact: its view never misses a write it admitted,
//! so it never admits a write that takes the bucket past a limit (it may refuse conservatively
//! while its own concurrent writes are in flight near the limit). Across G gateways, each one's
//! view misses what the others admitted after its summed read started (or had admitted just
//! before, whose records were not applied yet); the bucket can overshoot a limit by at most the
//! bytes and objects the other gateways admitted within one view age (normally
//! [`REFRESH_AFTER`] plus one metadata read, at most [`MAX_VIEW_AGE`]) plus their parts still
//! being uploaded (a part's record is written only when its data is durable). An overwrite
//! counts its full size (both versions exist until the commit replaces the old one), so a full
//! bucket refuses overwrites too. Deletes, aborts and delete markers are never limited.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_meta_state::{BucketRecord, BucketStats, Command, Query, Response};
use cairn_s3_proto::{RequestHead, S3Error};

use crate::errors::client_error_to_s3;
use crate::server::{Executor, HttpResponse, Shared, full_body};

/// The bucket attribute holding the quota.
pub const QUOTA_ATTRIBUTE: &str = "quota";
/// A view older than this is refreshed in the background (the write is still admitted on it).
pub const REFRESH_AFTER: Duration = Duration::from_millis(500);
/// A view older than this is read afresh before it is used.
pub const MAX_VIEW_AGE: Duration = Duration::from_secs(2);

/// A bucket's limits; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    pub max_bytes: Option<u64>,
    pub max_objects: Option<u64>,
}

impl QuotaLimits {
    /// The bucket's quota, `None` when it has none. A value this module did not write is
    /// refused loudly rather than ignored (ignoring it would silently lift the limit).
    pub fn of_bucket(record: &BucketRecord) -> Result<Option<QuotaLimits>, S3Error> {
        let Some(bytes) = record.attributes.get(QUOTA_ATTRIBUTE) else {
            return Ok(None);
        };
        QuotaLimits::decode(bytes).map(Some).ok_or_else(|| {
            tracing::error!(bucket = %record.name, "unreadable quota attribute");
            S3Error::InternalError
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<QuotaLimits> {
        let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let object = value.as_object()?;
        let field = |name: &str| match object.get(name) {
            None | Some(serde_json::Value::Null) => Some(None),
            Some(value) => value.as_u64().map(Some),
        };
        Some(QuotaLimits {
            max_bytes: field("max_bytes")?,
            max_objects: field("max_objects")?,
        })
    }

    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({ "max_bytes": self.max_bytes, "max_objects": self.max_objects })
    }

    fn is_unlimited(&self) -> bool {
        self.max_bytes.is_none() && self.max_objects.is_none()
    }
}

/// What a write adds to a bucket's usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Demand {
    pub bytes: u64,
    pub objects: u64,
}

impl Demand {
    /// A new object of `bytes` (PUT, POST, CopyObject).
    pub fn object(bytes: u64) -> Demand {
        Demand { bytes, objects: 1 }
    }

    /// Bytes that add no object (an upload's part; counted from the part's record on).
    pub fn bytes(bytes: u64) -> Demand {
        Demand { bytes, objects: 0 }
    }

    fn plus(self, other: Demand) -> Demand {
        Demand {
            bytes: self.bytes.saturating_add(other.bytes),
            objects: self.objects.saturating_add(other.objects),
        }
    }

    fn minus(self, other: Demand) -> Demand {
        Demand {
            bytes: self.bytes.saturating_sub(other.bytes),
            objects: self.objects.saturating_sub(other.objects),
        }
    }
}

/// One bucket's view (see the module header).
#[derive(Debug, Default)]
struct BucketView {
    /// The installed summed read: its usage, when it started, its generation.
    read: Option<(Demand, Instant, u64)>,
    /// Generation the next read to start gets; a read's generation orders it against writes.
    next_generation: u64,
    /// A background read is running.
    refreshing: bool,
    /// Admitted writes whose metadata record has not been applied yet.
    unsettled: Demand,
    /// Admitted writes whose record was applied while `next_generation` was the key: a read of
    /// generation `g` includes exactly those with key `<= g`.
    settled: BTreeMap<u64, Demand>,
    /// Last limits seen (for the metrics).
    limits: QuotaLimits,
    /// Writes refused (for the metrics).
    refused_total: u64,
}

impl BucketView {
    /// The usage the view accounts for: the read plus local writes it may miss.
    fn usage(&self) -> Option<Demand> {
        let (read, _, _) = self.read?;
        Some(
            self.settled
                .values()
                .fold(read.plus(self.unsettled), |sum, demand| sum.plus(*demand)),
        )
    }

    fn install(&mut self, stats: &BucketStats, started: Instant, generation: u64) {
        if self
            .read
            .is_some_and(|(_, _, installed)| installed >= generation)
        {
            return;
        }
        let usage = Demand {
            bytes: stats.quota_bytes(),
            objects: stats.quota_objects(),
        };
        self.read = Some((usage, started, generation));
        // Writes settled before this read started are in it.
        self.settled = self.settled.split_off(&(generation + 1));
    }

    fn start_read(&mut self) -> u64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        generation
    }
}

/// Whether `demand` fits `limits` on top of `usage`: the usage after the write must stay within
/// every limit. (A completion adds no bytes, so it is refused for bytes only when the bucket is
/// already over its byte limit, e.g. after the limit was lowered.)
fn fits(limits: &QuotaLimits, usage: Demand, demand: Demand) -> Result<(), String> {
    let after = usage.plus(demand);
    if let Some(max) = limits.max_bytes
        && after.bytes > max
    {
        return Err(format!(
            "The bucket's quota of {max} bytes would be exceeded: it uses {} bytes and this write adds {}.",
            usage.bytes, demand.bytes
        ));
    }
    if let Some(max) = limits.max_objects
        && after.objects > max
    {
        return Err(format!(
            "The bucket's quota of {max} objects would be exceeded: it holds {} and this write adds {}.",
            usage.objects, demand.objects
        ));
    }
    Ok(())
}

/// Admission state of every bucket with a quota this gateway has written to.
#[derive(Debug, Default)]
pub struct QuotaTracker {
    buckets: Mutex<BTreeMap<String, BucketView>>,
    /// How many views hold limits, readable without the lock: a write to a bucket without a
    /// quota takes the lock (to retire a view left from a quota since cleared) only when some
    /// view holds limits.
    limited_views: std::sync::atomic::AtomicUsize,
}

/// An admitted write. Dropping it records that the write's metadata record has been applied, or
/// that the write ended; either way it keeps counting locally until a read started after that is
/// installed.
#[must_use]
pub struct QuotaTicket {
    tracker: Arc<QuotaTracker>,
    bucket: String,
    demand: Demand,
}

impl Drop for QuotaTicket {
    fn drop(&mut self) {
        let mut buckets = self.tracker.lock();
        if let Some(view) = buckets.get_mut(&self.bucket) {
            view.unsettled = view.unsettled.minus(self.demand);
            let key = view.next_generation;
            let entry = view.settled.entry(key).or_default();
            *entry = entry.plus(self.demand);
        }
    }
}

enum Decision {
    Admit { refresh: Option<u64> },
    ReadFirst,
    Refuse(String),
}

impl QuotaTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BucketView>> {
        self.buckets
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Records the limits `bucket` is admitted under (for the metrics) and returns its view,
    /// created when absent.
    fn limited_view<'a>(
        &self,
        buckets: &'a mut BTreeMap<String, BucketView>,
        bucket: &str,
        limits: QuotaLimits,
    ) -> &'a mut BucketView {
        let view = buckets.entry(bucket.to_owned()).or_default();
        if view.limits.is_unlimited() {
            self.limited_views.fetch_add(1, Ordering::Relaxed);
        }
        view.limits = limits;
        view
    }

    /// Retires the view of a bucket whose quota is gone (cleared, or made unlimited): its limits
    /// and usage leave the metrics, its refusal count stays (a counter). Writes still holding
    /// tickets settle into the fresh view harmlessly; a quota set again starts from a new read.
    pub fn forget(&self, bucket: &str) {
        if self.limited_views.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut buckets = self.lock();
        if let Some(view) = buckets.get_mut(bucket)
            && !view.limits.is_unlimited()
        {
            *view = BucketView {
                refused_total: view.refused_total,
                ..BucketView::default()
            };
            self.limited_views.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Decides on the current view; `arrived` is when the request arrived (a refusal needs a read
    /// started after it).
    fn decide(
        view: &mut BucketView,
        limits: &QuotaLimits,
        demand: Demand,
        arrived: Instant,
        now: Instant,
    ) -> Decision {
        let Some(usage) = view.usage() else {
            return Decision::ReadFirst;
        };
        let (_, started, _) = view.read.expect("usage implies a read");
        let age = now.saturating_duration_since(started);
        if age >= MAX_VIEW_AGE {
            return Decision::ReadFirst;
        }
        match fits(limits, usage, demand) {
            Ok(()) => {
                view.unsettled = view.unsettled.plus(demand);
                let refresh = (age >= REFRESH_AFTER && !view.refreshing).then(|| {
                    view.refreshing = true;
                    view.start_read()
                });
                Decision::Admit { refresh }
            }
            Err(_) if started < arrived => Decision::ReadFirst,
            Err(reason) => {
                view.refused_total += 1;
                Decision::Refuse(reason)
            }
        }
    }

    fn ticket(self: &Arc<Self>, bucket: &str, demand: Demand) -> QuotaTicket {
        QuotaTicket {
            tracker: Arc::clone(self),
            bucket: bucket.to_owned(),
            demand,
        }
    }

    /// Prometheus text: per bucket with a quota this gateway has seen, the limits, the usage its
    /// view accounts for and the writes it refused.
    pub fn render(&self) -> String {
        let buckets = self.lock();
        let families: [(&str, &str, &str); 5] = [
            (
                "cairn_gateway_bucket_quota_max_bytes",
                "gauge",
                "Byte limit of the bucket's quota (absent: none).",
            ),
            (
                "cairn_gateway_bucket_quota_max_objects",
                "gauge",
                "Object limit of the bucket's quota (absent: none).",
            ),
            (
                "cairn_gateway_bucket_quota_used_bytes",
                "gauge",
                "Bytes the gateway's quota view counts for the bucket (stored versions, writes in flight, parts).",
            ),
            (
                "cairn_gateway_bucket_quota_used_objects",
                "gauge",
                "Objects the gateway's quota view counts for the bucket (stored versions, writes in flight).",
            ),
            (
                "cairn_gateway_bucket_quota_refusals_total",
                "counter",
                "Writes refused with QuotaExceeded.",
            ),
        ];
        let mut text = String::new();
        for (index, (name, kind, help)) in families.iter().enumerate() {
            text += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
            for (bucket, view) in buckets.iter() {
                let usage = view.usage();
                let value = match index {
                    0 => view.limits.max_bytes,
                    1 => view.limits.max_objects,
                    2 => usage.map(|usage| usage.bytes),
                    3 => usage.map(|usage| usage.objects),
                    _ => Some(view.refused_total),
                };
                if let Some(value) = value {
                    text += &format!("{name}{{bucket=\"{bucket}\"}} {value}\n");
                }
            }
        }
        text
    }
}

/// Admits a write of `demand` to `bucket` under its quota (none: admitted without tracking), or
/// refuses it with `QuotaExceeded`. Call before writing any shard; keep the ticket until the
/// write's metadata record is applied (or the write failed).
pub async fn admit(
    executor: &Executor,
    bucket: &BucketRecord,
    demand: Demand,
) -> Result<Option<QuotaTicket>, S3Error> {
    let tracker = &executor.shared.quotas;
    let limits = match QuotaLimits::of_bucket(bucket)? {
        Some(limits) if !limits.is_unlimited() => limits,
        _ => {
            tracker.forget(&bucket.name);
            return Ok(None);
        }
    };
    let name = bucket.name.as_str();
    let arrived = Instant::now();
    loop {
        let read = {
            let mut buckets = tracker.lock();
            let view = tracker.limited_view(&mut buckets, name, limits);
            match QuotaTracker::decide(view, &limits, demand, arrived, Instant::now()) {
                Decision::Admit { refresh } => {
                    if let Some(generation) = refresh {
                        let shared = Arc::clone(&executor.shared);
                        let bucket = name.to_owned();
                        monoio::spawn(async move {
                            refresh_view(&shared, &bucket, generation).await;
                        });
                    }
                    return Ok(Some(tracker.ticket(name, demand)));
                }
                Decision::Refuse(reason) => return Err(S3Error::QuotaExceeded(reason)),
                Decision::ReadFirst => view.start_read(),
            }
        };
        let started = Instant::now();
        let stats = read_stats(&executor.shared, name).await?;
        let mut buckets = tracker.lock();
        let view = tracker.limited_view(&mut buckets, name, limits);
        view.install(&stats, started, read);
        // Loop: decide again on the new view (its read started after the request arrived, so
        // this time the decision is final unless the view is somehow older than MAX_VIEW_AGE).
        if Instant::now().saturating_duration_since(started) >= MAX_VIEW_AGE {
            // The read itself took longer than a view may live: decide on it anyway rather
            // than read forever.
            return match fits(&limits, view.usage().unwrap_or_default(), demand) {
                Ok(()) => {
                    view.unsettled = view.unsettled.plus(demand);
                    Ok(Some(tracker.ticket(name, demand)))
                }
                Err(reason) => {
                    view.refused_total += 1;
                    Err(S3Error::QuotaExceeded(reason))
                }
            };
        }
    }
}

/// The bucket's usage summed over every partition.
async fn read_stats(shared: &Shared, bucket: &str) -> Result<BucketStats, S3Error> {
    let bucket = bucket.to_owned();
    let answer = shared
        .meta
        .run(move |client| async move { client.bucket_stats(&bucket).await })
        .await
        .and_then(|result| result)
        .map_err(|error| client_error_to_s3(&error))?;
    answer.map_err(|error| crate::errors::meta_error_to_s3(&error))
}

async fn refresh_view(shared: &Arc<Shared>, bucket: &str, generation: u64) {
    let started = Instant::now();
    let answer = read_stats(shared, bucket).await;
    let mut buckets = shared.quotas.lock();
    let Some(view) = buckets.get_mut(bucket) else {
        return;
    };
    view.refreshing = false;
    if view.limits.is_unlimited() {
        // Retired while the read ran (the quota was cleared): nothing to account for.
        return;
    }
    match answer {
        Ok(stats) => view.install(&stats, started, generation),
        // The next write reads again (synchronously once the view is too old).
        Err(error) => tracing::warn!(bucket, code = error.code(), "quota usage read failed"),
    }
}

// ----- admin API -------------------------------------------------------------------------------

fn json_response(status: http::StatusCode, value: &serde_json::Value) -> HttpResponse {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full_body(value.to_string() + "\n"))
        .expect("static headers are valid")
}

fn stats_json(stats: &BucketStats) -> serde_json::Value {
    serde_json::json!({
        "objects": stats.object_count,
        "bytes": stats.object_bytes,
        "delete_markers": stats.delete_marker_count,
        "writes_in_flight": stats.preparing_count,
        "bytes_in_flight": stats.preparing_bytes,
        "uploads": stats.upload_count,
        "parts": stats.part_count,
        "part_bytes": stats.part_bytes,
        "quota_bytes": stats.quota_bytes(),
        "quota_objects": stats.quota_objects(),
    })
}

fn parse_limit(raw_query: &str, name: &str) -> Result<Option<u64>, S3Error> {
    let pairs =
        cairn_s3_proto::encoding::parse_query(raw_query).map_err(|_| S3Error::InvalidUri)?;
    match pairs.into_iter().find(|(candidate, _)| candidate == name) {
        None => Ok(None),
        Some((_, value)) => value.parse::<u64>().map(Some).map_err(|_| {
            S3Error::InvalidArgument(format!("{name} must be a whole number, not {value:?}"))
        }),
    }
}

/// `PUT|GET|DELETE /_cairn/admin/v1/bucket-quota/BUCKET` (root only; the caller checked):
/// - `PUT ?max-bytes=N&max-objects=N` (at least one) sets the quota, replacing the previous one;
/// - `GET` answers the quota and the bucket's exact usage, read from every partition now;
/// - `DELETE` removes the quota.
pub async fn handle_admin(
    executor: &Executor,
    head: &RequestHead<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    if bucket.is_empty() || bucket.contains('/') {
        return Err(S3Error::InvalidUri);
    }
    let Response::Bucket(record) = executor
        .meta_query(Query::GetBucket {
            bucket: bucket.to_owned(),
        })
        .await?
    else {
        return Err(S3Error::InternalError);
    };
    match head.method {
        "PUT" => {
            let limits = QuotaLimits {
                max_bytes: parse_limit(head.raw_query, "max-bytes")?,
                max_objects: parse_limit(head.raw_query, "max-objects")?,
            };
            if limits.is_unlimited() {
                return Err(S3Error::InvalidArgument(
                    "give max-bytes, max-objects or both (DELETE clears the quota)".to_owned(),
                ));
            }
            executor
                .meta_write(Command::PutBucketAttribute {
                    bucket: bucket.to_owned(),
                    name: QUOTA_ATTRIBUTE.to_owned(),
                    value: Some(limits.encode()),
                })
                .await?;
            tracing::info!(bucket, ?limits, "bucket quota set");
            Ok(json_response(
                http::StatusCode::OK,
                &serde_json::json!({ "bucket": bucket, "quota": limits.to_json() }),
            ))
        }
        "DELETE" => {
            executor
                .meta_write(Command::PutBucketAttribute {
                    bucket: bucket.to_owned(),
                    name: QUOTA_ATTRIBUTE.to_owned(),
                    value: None,
                })
                .await?;
            executor.shared.quotas.forget(bucket);
            tracing::info!(bucket, "bucket quota cleared");
            Ok(http::Response::builder()
                .status(http::StatusCode::NO_CONTENT)
                .body(crate::server::empty_body())
                .expect("static headers are valid"))
        }
        "GET" => {
            // Usage lives in the partitions of the bucket's region only.
            let gateway_region = executor.shared.config.region.as_str();
            let region = crate::region::bucket_region(gateway_region, &record);
            if region != gateway_region {
                return Err(S3Error::PermanentRedirect {
                    region: region.to_owned(),
                });
            }
            let limits = QuotaLimits::of_bucket(&record)?;
            let stats = read_stats(&executor.shared, bucket).await?;
            Ok(json_response(
                http::StatusCode::OK,
                &serde_json::json!({
                    "bucket": bucket,
                    "quota": limits.map(QuotaLimits::to_json),
                    "usage": stats_json(&stats),
                }),
            ))
        }
        _ => Err(S3Error::MethodNotAllowed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(bytes: u64, objects: u64) -> Demand {
        Demand { bytes, objects }
    }

    fn limits(max_bytes: Option<u64>, max_objects: Option<u64>) -> QuotaLimits {
        QuotaLimits {
            max_bytes,
            max_objects,
        }
    }

    #[test]
    fn limits_round_trip_and_bad_values_are_refused() {
        for value in [
            limits(Some(10), None),
            limits(None, Some(3)),
            limits(Some(u64::MAX), Some(0)),
        ] {
            assert_eq!(QuotaLimits::decode(&value.encode()), Some(value));
        }
        let bad_values: [&[u8]; 4] = [
            b"{\"max_bytes\":-1}",
            b"[]",
            b"{\"max_objects\":\"3\"}",
            b"x",
        ];
        for bad in bad_values {
            assert_eq!(QuotaLimits::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fits_compares_usage_plus_write_with_each_limit() {
        let quota = limits(Some(100), Some(2));
        assert!(fits(&quota, demand(60, 1), demand(40, 1)).is_ok());
        assert!(fits(&quota, demand(60, 1), demand(41, 1)).is_err());
        assert!(fits(&quota, demand(0, 2), demand(1, 1)).is_err());
        // A part (bytes, no object) fits a full object count, not an exceeded one.
        assert!(fits(&quota, demand(0, 2), demand(1, 0)).is_ok());
        assert!(fits(&quota, demand(0, 3), demand(1, 0)).is_err());
        // A completion (one object, no bytes) fits unless the bucket is already over in bytes.
        assert!(fits(&quota, demand(100, 1), demand(0, 1)).is_ok());
        assert!(fits(&quota, demand(101, 1), demand(0, 1)).is_err());
        // No limits: anything fits.
        assert!(
            fits(
                &limits(None, None),
                demand(u64::MAX, u64::MAX),
                demand(1, 1)
            )
            .is_ok()
        );
    }

    #[test]
    fn a_view_counts_local_writes_until_a_later_read_includes_them() {
        let tracker = Arc::new(QuotaTracker::default());
        let quota = limits(Some(100), None);
        let start = Instant::now();
        let mut buckets = tracker.lock();
        let view = buckets.entry("b".to_owned()).or_default();
        view.limits = quota;
        // No read yet: the first write reads first.
        assert!(matches!(
            QuotaTracker::decide(view, &quota, demand(10, 1), start, start),
            Decision::ReadFirst
        ));
        let first = view.start_read();
        view.install(&BucketStats::default(), start, first);
        assert!(matches!(
            QuotaTracker::decide(view, &quota, demand(60, 1), start, start),
            Decision::Admit { refresh: None }
        ));
        drop(buckets);
        let ticket = tracker.ticket("b", demand(60, 1));
        // Unsettled, the write counts: 60 + 50 does not fit; the refusal needs a read that
        // started after the request arrived, and the installed one did not.
        let later = start + Duration::from_millis(10);
        {
            let mut buckets = tracker.lock();
            let view = buckets.get_mut("b").unwrap();
            assert!(matches!(
                QuotaTracker::decide(view, &quota, demand(50, 1), later, later),
                Decision::ReadFirst
            ));
        }
        // Settled, it still counts until a read started after the settling is installed.
        drop(ticket);
        let mut buckets = tracker.lock();
        let view = buckets.get_mut("b").unwrap();
        assert_eq!(view.usage(), Some(demand(60, 1)));
        // A read that started before the settling (its generation was drawn earlier) does not
        // release the write...
        view.install(&BucketStats::default(), start, first);
        assert_eq!(view.usage(), Some(demand(60, 1)));
        // ...a read started after it does, replacing it by what the partitions report.
        let second = view.start_read();
        let stats = BucketStats {
            preparing_count: 1,
            preparing_bytes: 60,
            ..Default::default()
        };
        view.install(&stats, later, second);
        assert_eq!(view.usage(), Some(demand(60, 1)));
        // Now 50 more is refused for real (the read started after the request arrived).
        assert!(matches!(
            QuotaTracker::decide(view, &quota, demand(50, 1), start, later),
            Decision::Refuse(_)
        ));
        assert_eq!(view.refused_total, 1);
        // An old view is read again before use; a stale one is used and refreshed.
        let old = later + MAX_VIEW_AGE;
        assert!(matches!(
            QuotaTracker::decide(view, &quota, demand(1, 1), old, old),
            Decision::ReadFirst
        ));
        let stale = later + REFRESH_AFTER;
        assert!(matches!(
            QuotaTracker::decide(view, &quota, demand(1, 1), stale, stale),
            Decision::Admit { refresh: Some(_) }
        ));
        drop(buckets);
        let text = tracker.render();
        assert!(text.contains("cairn_gateway_bucket_quota_max_bytes{bucket=\"b\"} 100\n"));
        assert!(text.contains("cairn_gateway_bucket_quota_refusals_total{bucket=\"b\"} 1\n"));
    }
}
