//! Black-box test of the janitor inside `cairn dev` (short timeouts): nothing leaks. A PUT left
//! PREPARING by a `kill -9` of the whole process mid-body, a PUT whose client disconnects
//! half-way, overwritten and deleted objects, an aborted multipart upload and a part uploaded
//! twice all leave shards behind; the janitor must remove every one of them while every live
//! object stays byte-exact, and once the bucket is emptied the six storage nodes hold no shard
//! at all.

use cairn_storage_client::StorageClient;
use cairn_tests::CairnDev;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");

/// A storage-client configuration with a worker identity of `dev`'s CA (internal traffic is
/// mutual TLS).
fn storage_config(dev: &CairnDev) -> cairn_storage_client::ClientConfig {
    let identity = cairn_tls::Identity::load(&cairn_tls::TlsFiles::new(
        dev.worker_identity(Path::new(BINARY)),
    ))
    .unwrap();
    cairn_storage_client::ClientConfig::with_identity(Some(&identity))
}

fn script(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

fn python(dev: &CairnDev, script_name: &str, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg(script(script_name))
        .arg(format!("http://{}", dev.endpoint))
        .args([&dev.access_key, &dev.secret_key])
        .args(args)
        .output()
        .expect("run python3 (pip install boto3)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script_name} {args:?} failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        dev.process.log()
    );
    stdout
}

/// Every shard on the six storage nodes.
fn shard_count(first_port: u16, config: &cairn_storage_client::ClientConfig) -> usize {
    (0..6)
        .map(|node| {
            let address = SocketAddr::from(([127, 0, 0, 1], first_port + node));
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut client = loop {
                match StorageClient::connect_with_config(address, config.clone()) {
                    Ok(client) => break client,
                    Err(error) => {
                        assert!(Instant::now() < deadline, "storage node {address}: {error}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            };
            let mut count = 0;
            let mut after = None;
            loop {
                let page = client.scan(after, 1024).expect("scan");
                count += page.entries.len();
                match page.next_after {
                    Some(next) => after = Some(next),
                    None => return count,
                }
            }
        })
        .sum()
}

#[test]
fn the_janitor_leaves_no_shard_behind() {
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let janitor_flags = [
        "--janitor-prepare-timeout-secs",
        "4",
        "--janitor-garbage-grace-secs",
        "1",
        "--janitor-interval-secs",
        "1",
    ];

    // A PUT hangs half-way through its body when the whole process is killed: its record stays
    // PREPARING and its shards stay on the nodes.
    let dev = CairnDev::start_with(Path::new(BINARY), data.path(), &janitor_flags);
    let endpoint = dev.endpoint;
    let storage_base_port = dev.storage_base_port();
    let mut hang = Command::new("python3")
        .arg(script("garbage_load.py"))
        .arg(format!("http://{endpoint}"))
        .args([
            &dev.access_key,
            &dev.secret_key,
            "hang",
            "hung-bucket",
            "big",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(hang.stdout.take().unwrap()),
        &mut first_line,
    )
    .unwrap();
    assert_eq!(first_line.trim(), "sent");
    // Let the gateway write the stripes it has.
    let started = Instant::now();
    loop {
        let count = shard_count(storage_base_port, &storage_config(&dev));
        if count >= 6 * 8 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the hung PUT stored {count} shards"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The storage nodes die with the process (they are threads of `cairn dev`).
    let dev = dev.restarted(Path::new(BINARY), data.path());
    let _ = hang.kill();
    let _ = hang.wait();
    let manifest = data.path().join("live.manifest");
    let manifest_path = manifest.display().to_string();
    python(
        &dev,
        "garbage_load.py",
        &["populate", "garbage-bucket", &manifest_path],
    );

    // The janitor rolls the hung write back after its timeout and collects every garbage entry;
    // live objects are untouched.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut previous = usize::MAX;
    loop {
        let count = shard_count(storage_base_port, &storage_config(&dev));
        // Settled: the same count across two polls, after the hung write's timeout.
        if count == previous && started.elapsed() > Duration::from_secs(8) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "shard count never settled: {count}"
        );
        previous = count;
        std::thread::sleep(Duration::from_secs(3));
    }
    python(
        &dev,
        "cluster_load.py",
        &["verify", "garbage-bucket", &manifest_path],
    );

    // Emptied, the store holds nothing at all.
    python(&dev, "garbage_load.py", &["delete-all", "garbage-bucket"]);
    python(&dev, "garbage_load.py", &["delete-all", "hung-bucket"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let count = shard_count(storage_base_port, &storage_config(&dev));
        if count == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{count} shards leaked:\n{}",
            dev.process.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        dev.process
            .log()
            .contains("rolled back a stale PREPARING write"),
        "{}",
        dev.process.log()
    );
    let errors = dev.process.error_lines();
    assert!(
        errors.is_empty(),
        "unexpected ERROR lines:\n{}",
        errors.join("\n")
    );
}
