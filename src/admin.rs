//! Admin HTTP listeners of the tokio-based roles. [`serve`] answers `GET` for a set of pages
//! (hyper HTTP/1.1 on the caller's tokio runtime; unknown paths 404, other methods 405; nothing
//! here can change state). `cairn meta` (`--admin-listen`) serves `/metrics` in the Prometheus
//! text format and `/status` as JSON, both built from [`cairn_raft::MetaNode::status`] at request
//! time: operators and tests see which replica leads which group, how far each replica has
//! applied, and its snapshots. `cairn worker` serves its janitor's counters on `/metrics`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use cairn_raft::{GroupStatus, MetaNode};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

/// Binds `address` (so a taken port fails the start-up, not later) and returns the serving task.
pub async fn start(
    address: SocketAddr,
    node: Arc<MetaNode>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let pages = Arc::new(move |path: &str| match path {
        "/metrics" => Some((
            PROMETHEUS_TEXT,
            render_metrics(node.node_id(), &node.status()),
        )),
        "/status" => Some((
            "application/json",
            render_status(node.node_id(), &node.status()),
        )),
        _ => None,
    });
    serve(address, pages).await
}

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What an admin listener serves: path → (content type, body), `None` for 404.
pub type Pages = Arc<dyn Fn(&str) -> Option<(&'static str, String)> + Send + Sync>;

/// Serves `pages` on `address` for `GET`; binds before returning.
pub async fn serve(
    address: SocketAddr,
    pages: Pages,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(address).await?;
    tracing::info!(%address, "admin listener");
    Ok(tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let pages = pages.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let pages = pages.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&pages, &request)) }
                });
                if let Err(error) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%error, "admin connection");
                }
            });
        }
    }))
}

fn answer<B>(pages: &Pages, request: &Request<B>) -> Response<Full<Bytes>> {
    let page = pages(request.uri().path());
    let (status, content_type, body) = match (request.method(), page) {
        (&Method::GET, Some((content_type, body))) => (StatusCode::OK, content_type, body),
        (_, Some(_)) => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".to_owned(),
        ),
        (_, None) => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// Gauges per group, labelled `group="bucket-service"` / `group="partition-N"`.
pub fn render_metrics(node_id: u64, groups: &[GroupStatus]) -> String {
    type Field = fn(&GroupStatus) -> u64;
    let gauges: [(&str, &str, Field); 10] = [
        (
            "cairn_meta_group_is_leader",
            "1 when this replica leads the group.",
            |status| u64::from(status.is_leader),
        ),
        (
            "cairn_meta_group_leader_id",
            "The group's leader as this replica sees it (0: none known).",
            |status| status.leader.unwrap_or(0),
        ),
        ("cairn_meta_group_term", "Current Raft term.", |status| {
            status.term
        }),
        (
            "cairn_meta_group_last_log_index",
            "Last log index in this replica's log.",
            |status| status.last_log_index,
        ),
        (
            "cairn_meta_group_last_applied_index",
            "Last log index applied to this replica's state machine.",
            |status| status.last_applied_index,
        ),
        (
            "cairn_meta_group_snapshot_index",
            "Last log index covered by this replica's snapshot.",
            |status| status.snapshot_index,
        ),
        (
            "cairn_meta_group_checkpoint_records_written",
            "Records the replica's latest state-machine checkpoint wrote to LMDB.",
            |status| status.checkpoint_records_written,
        ),
        (
            "cairn_meta_group_checkpoint_locked_microseconds",
            "How long the latest checkpoint held the state lock (applies waited).",
            |status| status.checkpoint_locked_micros,
        ),
        (
            "cairn_meta_group_checkpoint_microseconds",
            "How long the latest checkpoint took until durable.",
            |status| status.checkpoint_micros,
        ),
        (
            "cairn_meta_group_voters",
            "Voters in the group's membership.",
            |status| status.voters.len() as u64,
        ),
    ];
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# HELP cairn_meta_node_id This replica's id.\n# TYPE cairn_meta_node_id gauge\ncairn_meta_node_id {node_id}"
    );
    let counters: [(&str, &str, Field); 2] = [
        (
            "cairn_meta_group_read_index_reads_total",
            "Reads that asked this replica for a read index since it started (followers forward them).",
            |status| status.read_index.reads,
        ),
        (
            "cairn_meta_group_read_index_checks_total",
            "Read-index checks (leadership rounds with the quorum) that those reads shared.",
            |status| status.read_index.checks,
        ),
    ];
    let series = gauges
        .iter()
        .map(|&(name, help, field)| (name, help, "gauge", field))
        .chain(
            counters
                .iter()
                .map(|&(name, help, field)| (name, help, "counter", field)),
        );
    for (name, help, kind, field) in series {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for status in groups {
            let _ = writeln!(
                text,
                "{name}{{group=\"{}\"}} {}",
                status.group,
                field(status)
            );
        }
    }
    text
}

fn render_status(node_id: u64, groups: &[GroupStatus]) -> String {
    let groups: Vec<serde_json::Value> = groups
        .iter()
        .map(|status| {
            serde_json::json!({
                "group": status.group.to_string(),
                "leader": status.leader,
                "is_leader": status.is_leader,
                "term": status.term,
                "last_log_index": status.last_log_index,
                "last_applied_index": status.last_applied_index,
                "snapshot_index": status.snapshot_index,
                "checkpoint": {
                    "records_written": status.checkpoint_records_written,
                    "locked_micros": status.checkpoint_locked_micros,
                    "micros": status.checkpoint_micros,
                },
                "read_index": {
                    "reads": status.read_index.reads,
                    "checks": status.read_index.checks,
                },
                "voters": status.voters,
                "learners": status.learners,
            })
        })
        .collect();
    serde_json::json!({ "node_id": node_id, "groups": groups }).to_string() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_raft::GroupId;
    use cairn_raft::read_index::ReadIndexStats;
    use std::collections::BTreeSet;

    fn status(group: GroupId, leader: Option<u64>, me: u64) -> GroupStatus {
        GroupStatus {
            group,
            leader,
            term: 7,
            is_leader: leader == Some(me),
            last_log_index: 42,
            last_applied_index: 41,
            snapshot_index: 0,
            checkpoint_records_written: 0,
            checkpoint_locked_micros: 0,
            checkpoint_micros: 0,
            read_index: Default::default(),
            voters: BTreeSet::from([1, 2, 3]),
            learners: BTreeSet::new(),
        }
    }

    #[test]
    fn metrics_are_prometheus_text_with_one_sample_per_group() {
        let mut groups = [
            status(GroupId::BUCKET_SERVICE, Some(2), 2),
            status(GroupId::partition(0), Some(3), 2),
            status(GroupId::partition(1), None, 2),
        ];
        groups[1].checkpoint_locked_micros = 8_123;
        groups[0].read_index = ReadIndexStats {
            reads: 900,
            checks: 120,
        };
        let text = render_metrics(2, &groups);
        let samples: Vec<&str> = text.lines().filter(|line| !line.starts_with('#')).collect();
        assert_eq!(samples.len(), 1 + 12 * 3, "{text}");
        assert!(
            samples
                .contains(&"cairn_meta_group_read_index_reads_total{group=\"bucket-service\"} 900")
        );
        assert!(text.contains("# TYPE cairn_meta_group_read_index_checks_total counter\n"));
        assert!(samples.contains(
            &"cairn_meta_group_checkpoint_locked_microseconds{group=\"partition-0\"} 8123"
        ));
        assert!(samples.contains(&"cairn_meta_group_is_leader{group=\"bucket-service\"} 1"));
        assert!(samples.contains(&"cairn_meta_group_is_leader{group=\"partition-0\"} 0"));
        assert!(samples.contains(&"cairn_meta_group_leader_id{group=\"partition-1\"} 0"));
        assert!(samples.contains(&"cairn_meta_group_last_applied_index{group=\"partition-0\"} 41"));
        // Every sample line is `name{labels} integer` and every family has HELP and TYPE.
        for line in &samples {
            let (_, value) = line.rsplit_once(' ').unwrap();
            value.parse::<u64>().unwrap();
        }
        assert_eq!(text.matches("# TYPE ").count(), 13);
        let json: serde_json::Value = serde_json::from_str(&render_status(2, &groups)).unwrap();
        assert_eq!(json["groups"][1]["leader"], 3);
        assert_eq!(json["groups"][2]["leader"], serde_json::Value::Null);
        assert_eq!(json["groups"][1]["checkpoint"]["locked_micros"], 8_123);
        assert_eq!(json["groups"][0]["read_index"]["checks"], 120);
    }
}
