//! Cross-region replication between two regions, each a `cairn dev` process (us-east-1 holds the
//! global bucket service), driven by boto3 (tests/python/replication_check.py): a source bucket in
//! us-east-1 with a rule to a bucket in us-west-2. PUT, multipart, CopyObject and delete markers
//! converge with equal bytes and ETags under the source's version ids (REPLICA on the
//! destination, COMPLETED on the source);
//! with the destination region stopped, new writes stay PENDING and the lag shows in the
//! replicator's metrics; the source region restarts while entries are pending; the destination
//! comes back and everything converges, with one destination version per source version.
//! Later metadata changes (tags, ACL, retention, legal hold) of replicated versions reach their
//! replicas, each found by its source version id among versions with equal bytes.
//! With both regions serving S3 over TLS only, the replicator speaks HTTPS to both; trusting
//! the wrong CA it completes nothing (entries stay queued and PENDING), and with the right CA
//! (the dev CA, its default) the same entries converge.

#[path = "sdk_client.rs"]
mod sdk_client;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination, ReplicationConfiguration,
    ReplicationRule, ReplicationRuleFilter, ReplicationRuleStatus, ReplicationStatus,
};
use cairn_tests::{
    CairnDev, DevRegions, TestPki, free_address, http_get, run_cairn, try_python_script_with_env,
};

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");

/// A sample of the replicator's metrics on the workers' admin listener.
fn worker_metric(admin: SocketAddr, series: &str) -> f64 {
    let (status, body) = http_get(admin, "/metrics");
    assert_eq!(status, 200, "worker metrics scrape failed");
    let text = String::from_utf8(body).expect("metrics are UTF-8");
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
        .unwrap_or_else(|| panic!("{series} missing:\n{text}"))
}

/// Waits (generous deadline: the machine is loaded) until `series` satisfies `wanted`.
fn wait_for_metric(admin: SocketAddr, series: &str, wanted: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let value = worker_metric(admin, series);
        if wanted(value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{series} stayed at {value}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs one mode of the boto3 script against both regions; a failure shows both regions' WARN
/// and ERROR lines.
struct Check {
    east_url: String,
    west_url: String,
    logs: [std::path::PathBuf; 2],
    access_key: String,
    secret_key: String,
    /// Keys of a user who owns neither bucket.
    other_keys: (String, String),
    state: std::path::PathBuf,
    /// Extra environment of the script (the CA bundle of TLS endpoints).
    env: Vec<(String, String)>,
}

impl Check {
    fn run(&self, mode: &str) {
        let args = [
            mode.to_owned(),
            self.east_url.clone(),
            self.west_url.clone(),
            self.access_key.clone(),
            self.secret_key.clone(),
            self.state.display().to_string(),
            self.other_keys.0.clone(),
            self.other_keys.1.clone(),
        ];
        if let Err(failure) = try_python_script_with_env("replication_check.py", &args, &self.env) {
            let warnings = |path: &Path| {
                std::fs::read_to_string(path)
                    .unwrap_or_default()
                    .lines()
                    .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            panic!(
                "{failure}\neast WARN/ERROR:\n{}\nwest WARN/ERROR:\n{}",
                warnings(&self.logs[0]),
                warnings(&self.logs[1])
            );
        }
    }
}

#[test]
fn replication_converges_across_region_restarts_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let east_workers = free_address();
    let west_workers = free_address();
    let east_workers_flag = east_workers.to_string();
    let west_workers_flag = west_workers.to_string();
    let mut regions = DevRegions::start(
        Path::new(BINARY),
        dir.path(),
        &[
            "--replication-endpoint",
            "us-west-2={west}",
            "--replication-max-backoff-ms",
            "2000",
            "--worker-admin-listen",
            &east_workers_flag,
        ],
        &[
            "--replication-endpoint",
            "us-east-1={east}",
            "--worker-admin-listen",
            &west_workers_flag,
        ],
    );
    // The buckets belong to a user: the replicator signs as the source bucket's owner.
    let (access_key, secret_key) = regions.east.create_user(Path::new(BINARY), "alice");
    let other_keys = regions.east.create_user(Path::new(BINARY), "other");
    let check = Check {
        east_url: regions.east.url(),
        west_url: regions.west.url(),
        logs: [
            regions.east_dir.join("dev.log"),
            regions.west_dir.join("dev.log"),
        ],
        access_key,
        secret_key,
        other_keys,
        state: dir.path().join("state.json"),
        env: Vec::new(),
    };

    check.run("setup");
    check.run("write:first");
    check.run("converge");
    check.run("replica_writes");
    check.run("lock");
    check.run("metadata");
    let replicated = worker_metric(east_workers, "cairn_replication_objects_replicated_total");
    assert!(replicated >= 4.0, "{replicated} objects replicated");
    assert!(
        worker_metric(
            east_workers,
            "cairn_replication_delete_markers_replicated_total"
        ) >= 1.0
    );
    assert!(worker_metric(east_workers, "cairn_replication_bytes_replicated_total") > 5e6);
    assert!(
        worker_metric(
            east_workers,
            "cairn_replication_metadata_changes_replicated_total"
        ) >= 2.0
    );

    // The destination region goes away: new writes wait, PENDING, and the lag shows.
    regions.west.process.kill_9();
    check.run("write:second");
    check.run("pending");
    wait_for_metric(east_workers, "cairn_replication_pending_entries", |value| {
        value >= 4.0
    });
    wait_for_metric(east_workers, "cairn_replication_lag_seconds", |value| {
        value >= 1.0
    });
    assert!(worker_metric(east_workers, "cairn_replication_attempt_failures_total") >= 1.0);

    // The source region restarts with the entries pending (the queue is its checkpoint): they
    // are still PENDING and queued afterwards.
    regions.east = regions.east.restarted(Path::new(BINARY), &regions.east_dir);
    check.run("pending");
    wait_for_metric(east_workers, "cairn_replication_pending_entries", |value| {
        value >= 4.0
    });
    // The destination comes back; writes made meanwhile and after converge.
    regions.west = regions.west.restarted(Path::new(BINARY), &regions.west_dir);
    check.run("write:third");
    check.run("converge");
    wait_for_metric(east_workers, "cairn_replication_pending_entries", |value| {
        value == 0.0
    });
    assert_eq!(
        worker_metric(east_workers, "cairn_replication_failed_total"),
        0.0
    );
    regions.east.assert_no_errors_logged();
    regions.west.assert_no_errors_logged();
}

/// Both regions serve S3 over TLS only (certificates of the CA both share as their dev CA), so
/// the replicator reads and writes over HTTPS. Trusting another CA (`--replication-ca-bundle`),
/// it completes nothing: attempts fail with a certificate error, entries stay queued and the
/// versions PENDING. Restarted with its default trust (the dev CA), the same entries converge.
#[test]
fn replication_over_tls_only_needs_the_right_ca() {
    let dir = tempfile::tempdir().unwrap();
    let binary = Path::new(BINARY);
    // East's dev CA, made before the first start (cairn dev keeps a CA it finds in
    // <data>/tls/ca; west gets it with --dev-ca), issues both S3 certificates.
    let pki = TestPki::create(binary, &dir.path().join("east/cluster/tls"));
    let ca_pem = pki.ca().join("ca.pem");
    let s3_cert = |name: &str| {
        let identity = pki.issue(name, "gateway");
        (
            identity.join("cert.pem").display().to_string(),
            identity.join("key.pem").display().to_string(),
        )
    };
    let (east_cert, east_key) = s3_cert("s3-east");
    let (west_cert, west_key) = s3_cert("s3-west");
    let wrong_ca = dir.path().join("wrong-ca");
    run_cairn(binary, &["ca", "init", "--out", wrong_ca.to_str().unwrap()]);
    let wrong_bundle = wrong_ca.join("ca.pem").display().to_string();
    let east_workers = free_address();
    let east_workers_flag = east_workers.to_string();
    let mut regions = DevRegions::start(
        binary,
        dir.path(),
        &[
            "--tls-cert",
            &east_cert,
            "--tls-key",
            &east_key,
            "--replication-endpoint",
            "us-west-2={west_https}",
            "--replication-max-backoff-ms",
            "1000",
            "--worker-admin-listen",
            &east_workers_flag,
            "--replication-ca-bundle",
            &wrong_bundle,
        ],
        &["--tls-cert", &west_cert, "--tls-key", &west_key],
    );
    // `cairn admin` speaks plain HTTP only: the root keys own the buckets.
    let root_keys = (
        regions.east.access_key.clone(),
        regions.east.secret_key.clone(),
    );
    let check = Check {
        east_url: format!("https://{}", regions.east.endpoint),
        west_url: format!("https://{}", regions.west.endpoint),
        logs: [
            regions.east_dir.join("dev.log"),
            regions.west_dir.join("dev.log"),
        ],
        access_key: root_keys.0.clone(),
        secret_key: root_keys.1.clone(),
        other_keys: root_keys,
        state: dir.path().join("state.json"),
        // boto3 and urllib trust the dev CA.
        env: ["AWS_CA_BUNDLE", "SSL_CERT_FILE"]
            .into_iter()
            .map(|name| (name.to_owned(), ca_pem.display().to_string()))
            .collect(),
    };
    check.run("setup");
    check.run("write:first");

    // The wrong CA: every attempt fails on the certificate, nothing completes or fails for good.
    wait_for_metric(
        east_workers,
        "cairn_replication_attempt_failures_total",
        |value| value >= 8.0,
    );
    check.run("pending");
    assert!(worker_metric(east_workers, "cairn_replication_pending_entries") >= 4.0);
    assert_eq!(
        worker_metric(east_workers, "cairn_replication_objects_replicated_total"),
        0.0
    );
    assert_eq!(
        worker_metric(east_workers, "cairn_replication_failed_total"),
        0.0
    );
    let log = regions.east.process.log();
    assert!(
        log.contains("the endpoint's TLS certificate is not trusted: --replication-ca-bundle"),
        "{log}"
    );

    // Restarted trusting its dev CA (the default with --tls-cert), the queued entries converge.
    let position = regions
        .east
        .args
        .iter()
        .position(|arg| arg == "--replication-ca-bundle")
        .unwrap();
    regions.east.args.drain(position..position + 2);
    regions.east = regions.east.restarted(binary, &regions.east_dir);
    check.run("converge");
    wait_for_metric(east_workers, "cairn_replication_pending_entries", |value| {
        value == 0.0
    });
    assert!(worker_metric(east_workers, "cairn_replication_objects_replicated_total") >= 4.0);
    assert_eq!(
        worker_metric(east_workers, "cairn_replication_failed_total"),
        0.0
    );
    regions.east.assert_no_errors_logged();
    regions.west.assert_no_errors_logged();
}

fn rule(id: &str, priority: i32, prefix: &str, destination: &str) -> ReplicationRule {
    ReplicationRule::builder()
        .id(id)
        .priority(priority)
        .status(ReplicationRuleStatus::Enabled)
        .filter(ReplicationRuleFilter::builder().prefix(prefix).build())
        .destination(
            Destination::builder()
                .bucket(format!("arn:aws:s3:::{destination}"))
                .build()
                .unwrap(),
        )
        .delete_marker_replication(
            DeleteMarkerReplication::builder()
                .status(DeleteMarkerReplicationStatus::Disabled)
                .build(),
        )
        .build()
        .unwrap()
}

/// aws-sdk-s3 against one region: the configuration round trips, AWS's validation errors, and
/// a destination in the same region is written through the local gateway (delete markers not
/// replicated when the rule says Disabled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_region_replication_with_aws_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let dev = CairnDev::start(Path::new(BINARY), dir.path());
    let s3 = sdk_client::client(&dev);
    s3.create_bucket().bucket("sdk-plain").send().await.unwrap();
    sdk_client::create_versioned_bucket(&s3, "sdk-src").await;
    sdk_client::create_versioned_bucket(&s3, "sdk-dst").await;
    let configuration = |rules: Vec<ReplicationRule>| {
        let mut builder = ReplicationConfiguration::builder().role("arn:aws:iam::1:role/r");
        for rule in rules {
            builder = builder.rules(rule);
        }
        builder.build().unwrap()
    };
    let put = |bucket: &'static str, rules: Vec<ReplicationRule>| {
        s3.put_bucket_replication()
            .bucket(bucket)
            .replication_configuration(configuration(rules))
            .send()
    };
    let get_replication = || s3.get_bucket_replication().bucket("sdk-src").send();
    // AWS's refusals: an unversioned source, a missing or unversioned destination, two rules
    // of one priority.
    for (source, rules) in [
        ("sdk-plain", vec![rule("a", 1, "", "sdk-dst")]),
        ("sdk-src", vec![rule("a", 1, "", "sdk-missing")]),
        ("sdk-src", vec![rule("a", 1, "", "sdk-plain")]),
        (
            "sdk-src",
            vec![rule("a", 1, "x/", "sdk-dst"), rule("b", 1, "y/", "sdk-dst")],
        ),
    ] {
        let error = put(source, rules).await.unwrap_err();
        assert_eq!(
            sdk_client::code_and_status(&error),
            ("InvalidRequest".into(), 400)
        );
    }
    let error = get_replication().await.unwrap_err();
    assert_eq!(
        sdk_client::code_and_status(&error),
        ("ReplicationConfigurationNotFoundError".into(), 404)
    );

    put("sdk-src", vec![rule("logs", 1, "logs/", "sdk-dst")])
        .await
        .unwrap();
    let stored = get_replication()
        .await
        .unwrap()
        .replication_configuration
        .unwrap();
    assert_eq!(stored.rules.len(), 1);
    assert_eq!(stored.rules[0].id.as_deref(), Some("logs"));
    assert_eq!(
        stored.rules[0].destination.as_ref().unwrap().bucket,
        "arn:aws:s3:::sdk-dst"
    );

    let written = s3
        .put_object()
        .bucket("sdk-src")
        .key("logs/one")
        .body(ByteStream::from_static(b"same region"))
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("sdk-src")
        .key("other/one")
        .body(ByteStream::from_static(b"not selected"))
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let head = s3
            .head_object()
            .bucket("sdk-src")
            .key("logs/one")
            .send()
            .await
            .unwrap();
        if head.replication_status == Some(ReplicationStatus::Completed) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {:?}",
            head.replication_status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let replica = s3
        .get_object()
        .bucket("sdk-dst")
        .key("logs/one")
        .send()
        .await
        .unwrap();
    assert_eq!(replica.e_tag, written.e_tag);
    assert_eq!(replica.replication_status, Some(ReplicationStatus::Replica));
    assert_eq!(
        replica.body.collect().await.unwrap().into_bytes().as_ref(),
        b"same region"
    );
    // The rule does not replicate delete markers; the other key is outside its prefix.
    s3.delete_object()
        .bucket("sdk-src")
        .key("logs/one")
        .send()
        .await
        .unwrap();
    let other = s3
        .head_object()
        .bucket("sdk-src")
        .key("other/one")
        .send()
        .await
        .unwrap();
    assert_eq!(other.replication_status, None);
    let destination = s3
        .list_object_versions()
        .bucket("sdk-dst")
        .send()
        .await
        .unwrap();
    assert_eq!(destination.versions().len(), 1);
    assert!(destination.delete_markers().is_empty());

    s3.delete_bucket_replication()
        .bucket("sdk-src")
        .send()
        .await
        .unwrap();
    let error = get_replication().await.unwrap_err();
    assert_eq!(sdk_client::code_and_status(&error).1, 404);
    dev.assert_no_errors_logged();
}
