//! Helpers shared by the black-box tests in `tests/tests/`: they start real `cairn` processes on
//! 127.0.0.1, capture their logs, and reap every process they spawn (a [`CairnProcess`] kills its
//! child when dropped, so a failing test leaves nothing running).

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests run by one user).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A running `cairn` process whose stderr goes to a log file.
pub struct CairnProcess {
    child: Option<Child>,
    pub log_path: PathBuf,
    pub description: String,
}

impl CairnProcess {
    /// Starts `binary` with `args`, logging to `log_dir/<name>.log` (appended across restarts).
    pub fn start(binary: &Path, args: &[String], log_dir: &Path, name: &str) -> CairnProcess {
        Self::start_with_env(binary, args, log_dir, name, &[])
    }

    /// Like [`CairnProcess::start`] with extra environment variables.
    pub fn start_with_env(
        binary: &Path,
        args: &[String],
        log_dir: &Path,
        name: &str,
        env: &[(&str, &str)],
    ) -> CairnProcess {
        std::fs::create_dir_all(log_dir).expect("log dir");
        let log_path = log_dir.join(format!("{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open log file");
        let child = Command::new(binary)
            .args(args)
            .env(
                "CAIRN_LOG",
                std::env::var("CAIRN_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("spawn {}: {error}", binary.display()));
        CairnProcess {
            child: Some(child),
            log_path,
            description: format!("{name}: {} {}", binary.display(), args.join(" ")),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process has exited, with its exit code.
    pub fn try_exit_code(&mut self) -> Option<Option<i32>> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.code()),
            _ => None,
        }
    }

    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log_path) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// ERROR lines in the log, which a test fails on unless it expected them.
    pub fn error_lines(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| line.contains(" ERROR "))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for CairnProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Waits until something accepts TCP connections on `address`, or panics with the process log.
pub fn wait_for_listener(address: SocketAddr, process: &mut CairnProcess, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Some(code) = process.try_exit_code() {
            panic!(
                "{} exited with {code:?} before listening; log:\n{}",
                process.description,
                process.log()
            );
        }
        if Instant::now() > deadline {
            panic!(
                "{} did not listen on {address} within {timeout:?}; log:\n{}",
                process.description,
                process.log()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until nothing accepts connections on `address` any more.
///
/// A killed process that used io_uring can keep its listening socket alive for a moment after it
/// was reaped (the kernel tears the ring down asynchronously), and with SO_REUSEPORT a restarted
/// process shares the port with that ghost; connections routed to it are reset. Restart only once
/// the port is free.
pub fn wait_until_port_closed(address: SocketAddr, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "{address} still accepts connections after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A small file system mounted for a test (tmpfs, root only), unmounted when dropped.
pub struct SmallFileSystem {
    pub dir: tempfile::TempDir,
}

impl SmallFileSystem {
    pub fn mount(size_mib: u64) -> SmallFileSystem {
        let dir = tempfile::tempdir().expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        SmallFileSystem { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFileSystem {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Deterministic pseudo-random content for a test object or shard number `seed`.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// A port P on 127.0.0.1 such that P..P+count are all free (for `cairn dev`'s storage nodes).
pub fn consecutive_free_ports(count: u16) -> u16 {
    loop {
        let port = free_port();
        if port < 65_000
            && (1..count).all(|offset| TcpListener::bind(("127.0.0.1", port + offset)).is_ok())
        {
            return port;
        }
    }
}

/// A `cairn dev` started by a test, with the root keys it printed.
pub struct DevProcess {
    pub process: CairnProcess,
    pub endpoint: SocketAddr,
    pub access_key: String,
    pub secret_key: String,
}

/// Starts `cairn dev` with `args` (which must include `--listen endpoint`), waits for the S3
/// listener and the printed credentials.
pub fn start_dev(
    binary: &Path,
    args: &[String],
    log_dir: &Path,
    endpoint: SocketAddr,
) -> DevProcess {
    let mut process = CairnProcess::start(binary, args, log_dir, "dev");
    wait_for_listener(endpoint, &mut process, Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = process.log();
        let value = |label: &str| {
            log.lines().rev().find_map(|line| {
                line.trim()
                    .strip_prefix(label)
                    .map(|rest| rest.trim().to_owned())
            })
        };
        if let (Some(access_key), Some(secret_key)) = (value("access key:"), value("secret key:")) {
            return DevProcess {
                process,
                endpoint,
                access_key,
                secret_key,
            };
        }
        assert!(Instant::now() < deadline, "no credentials printed:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
