//! Black-box test of `cairn dev` through a real S3 client: boto3 (tests/python/s3_smoke.py) runs
//! bucket and object operations against the embedded setup (gateway, metadata replica, six
//! storage nodes, EC 4+2), then the process is killed with SIGKILL, restarted on the same data, and
//! an object written before the kill reads back byte-exact with the same generated credentials.

use cairn_tests::{
    CairnProcess, free_address, free_port, wait_for_listener, wait_until_port_closed,
};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");

fn consecutive_free_ports(count: u16) -> u16 {
    loop {
        let port = free_port();
        if port < 65_000
            && (1..count)
                .all(|offset| std::net::TcpListener::bind(("127.0.0.1", port + offset)).is_ok())
        {
            return port;
        }
    }
}

fn start(args: &[String], log_dir: &Path, endpoint: SocketAddr) -> (CairnProcess, String, String) {
    let mut process = CairnProcess::start(Path::new(BINARY), args, log_dir, "dev");
    wait_for_listener(endpoint, &mut process, Duration::from_secs(60));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log = process.log();
        let value = |label: &str| {
            log.lines().rev().find_map(|line| {
                line.trim()
                    .strip_prefix(label)
                    .map(|rest| rest.trim().to_owned())
            })
        };
        if let (Some(access), Some(secret)) = (value("access key:"), value("secret key:")) {
            return (process, access, secret);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no credentials printed:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn boto3(endpoint: SocketAddr, access: &str, secret: &str, mode: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/s3_smoke.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .args([
            format!("http://{endpoint}"),
            access.to_owned(),
            secret.to_owned(),
            mode.to_owned(),
        ])
        .output()
        .expect("run python3 (pip install boto3)");
    assert!(
        output.status.success(),
        "boto3 {mode} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn boto3_against_cairn_dev_and_data_survives_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let endpoint = free_address();
    let meta = free_address();
    let storage_base_port = consecutive_free_ports(6);
    let args: Vec<String> = vec![
        "dev".into(),
        "--data".into(),
        data.path().join("cluster").display().to_string(),
        "--listen".into(),
        endpoint.to_string(),
        "--meta-port".into(),
        meta.port().to_string(),
        "--storage-base-port".into(),
        storage_base_port.to_string(),
    ];
    let (mut dev, access, secret) = start(&args, data.path(), endpoint);
    boto3(endpoint, &access, &secret, "full");
    dev.kill_9();
    wait_until_port_closed(endpoint, Duration::from_secs(20));
    wait_until_port_closed(meta, Duration::from_secs(20));

    let (dev, access_again, secret_again) = start(&args, data.path(), endpoint);
    assert_eq!(
        (access_again.as_str(), secret_again.as_str()),
        (access.as_str(), secret.as_str()),
        "credentials are kept"
    );
    boto3(endpoint, &access, &secret, "verify");
    let errors = dev.error_lines();
    assert!(
        errors.is_empty(),
        "unexpected ERROR lines:\n{}",
        errors.join("\n")
    );
}
