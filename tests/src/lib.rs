//! Helpers shared by the black-box tests in `tests/tests/`: they start real `cairn` processes on
//! 127.0.0.1, capture their logs, and reap every process they spawn (a [`CairnProcess`] kills its
//! child when dropped, so a failing test leaves nothing running).

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound and released), for a process the test starts next.
pub fn free_port() -> u16 {
    consecutive_free_ports(1)
}

/// A TCP port forwarder listening on `listen` (port 0: any) that relays each connection to
/// `target`, as a userland proxy would; returns its address. Its threads end with the test.
pub fn forward(listen: SocketAddr, target: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind(listen).unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for inbound in listener.incoming() {
            let Ok(inbound) = inbound else { return };
            let Ok(outbound) = TcpStream::connect(target) else {
                continue;
            };
            let pipe = |mut from: TcpStream, mut to: TcpStream| {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            };
            pipe(inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
            pipe(outbound, inbound);
        }
    });
    address
}

/// This host's address on its default route, if it has one (none on a machine with loopback
/// only).
pub fn non_loopback_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // A UDP connect picks a route and a source address and sends nothing.
    socket.connect("203.0.113.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

pub fn free_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// What openraft logs at ERROR while a peer replica is down or cut off (vote and replication
/// RPCs failing), and when several replicas of a new cluster initialize a group at once (all
/// but one are refused, as designed). A test that kills or isolates replicas expects these and
/// nothing else.
pub const RAFT_PEER_UNREACHABLE: &[&str] = &[
    "error=Unreachable node",
    "err=Unreachable node",
    "err=timeout after",
    "error=timeout after",
    "error=NetworkError",
    "err=NetworkError",
    "Can not initialize",
];

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
        Self::start_with_stderr(binary, args, log_dir, name, env, None)
    }

    /// Like [`CairnProcess::start_with_env`], with stderr (where the logs go) sent to
    /// `stderr_path` instead of the log file when given (`/dev/full` simulates a full disk).
    pub fn start_with_stderr(
        binary: &Path,
        args: &[String],
        log_dir: &Path,
        name: &str,
        env: &[(&str, &str)],
        stderr_path: Option<&Path>,
    ) -> CairnProcess {
        std::fs::create_dir_all(log_dir).expect("log dir");
        let log_path = log_dir.join(format!("{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open log file");
        let stderr = match stderr_path {
            Some(path) => std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .expect("open stderr target"),
            None => log.try_clone().expect("clone log handle"),
        };
        let child = Command::new(binary)
            .args(args)
            .env(
                "CAIRN_LOG",
                std::env::var("CAIRN_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
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

    /// ERROR lines in the log, except those containing one of `expected` (e.g.
    /// [`RAFT_PEER_UNREACHABLE`] in a test that kills or cuts off replicas).
    pub fn error_lines_except(&self, expected: &[&str]) -> Vec<String> {
        self.error_lines()
            .into_iter()
            .filter(|line| !expected.iter().any(|pattern| line.contains(pattern)))
            .collect()
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

/// A free port `p` such that `p..p + count` are all free (for `cairn dev --storage-base-port`).
///
/// The ports are chosen below the kernel's ephemeral range (`ip_local_port_range`, 32768–60999
/// here): a port the kernel hands out itself can be taken by any outgoing connection, of this
/// test or a parallel one, before the started process binds it. Each block is reserved from a
/// process-wide counter, so parallel tests in one binary never get overlapping blocks; each test
/// binary starts its walk at its own offset (from its pid).
pub fn consecutive_free_ports(count: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    let count = u32::from(count.max(1));
    loop {
        let start = NEXT.fetch_add(count, Ordering::Relaxed) % SPAN;
        if start + count > SPAN {
            continue;
        }
        let port = (FIRST + start) as u16;
        if (0..count as u16).all(|offset| port_is_free(port + offset)) {
            return port;
        }
    }
}

/// Whether 127.0.0.1:`port` can be bound by a listener that does not set `SO_REUSEADDR` (as
/// glommio's does not): such a bind also fails while connections of an earlier listener on the
/// port linger in TIME_WAIT, which `std`'s `TcpListener` (it sets `SO_REUSEADDR`) would not see.
fn port_is_free(port: u16) -> bool {
    // SAFETY: a socket this function owns and closes; `address` outlives the bind call.
    unsafe {
        let socket = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if socket < 0 {
            return false;
        }
        let address = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let bound = libc::bind(
            socket,
            (&raw const address).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) == 0;
        libc::close(socket);
        bound
    }
}

/// `cairn dev` arguments with every port free (S3, admin, metadata, six storage nodes) and the
/// data in `dir/cluster`, plus `extra_args`; returns them with the S3, admin and metadata
/// addresses.
pub fn dev_command_line(
    dir: &Path,
    extra_args: &[&str],
) -> (Vec<String>, SocketAddr, SocketAddr, SocketAddr) {
    let endpoint = free_address();
    let admin = free_address();
    let meta = free_address();
    let mut args: Vec<String> = vec![
        "dev".into(),
        "--data".into(),
        dir.join("cluster").display().to_string(),
        "--listen".into(),
        endpoint.to_string(),
        "--meta-port".into(),
        meta.port().to_string(),
        "--storage-base-port".into(),
        consecutive_free_ports(6).to_string(),
        "--admin-listen".into(),
        admin.to_string(),
    ];
    args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
    (args, endpoint, admin, meta)
}

/// A running `cairn dev` on free ports with its data under a directory the caller owns, and the
/// root keys it printed.
pub struct CairnDev {
    pub process: CairnProcess,
    pub endpoint: SocketAddr,
    /// The admin listener (`GET /metrics`).
    pub admin: SocketAddr,
    /// The metadata replica's listener.
    pub meta: SocketAddr,
    /// The command line it was started with (reused by [`CairnDev::restarted`]).
    pub args: Vec<String>,
    pub access_key: String,
    pub secret_key: String,
}

impl CairnDev {
    /// Starts `cairn dev` on free ports with data in `dir/cluster` and its log in `dir/dev.log`;
    /// returns once the S3 endpoint accepts connections and the keys are printed.
    pub fn start(binary: &Path, dir: &Path) -> CairnDev {
        Self::start_with(binary, dir, &[])
    }

    /// Like [`CairnDev::start`] with extra flags (e.g. janitor or healer timing).
    pub fn start_with(binary: &Path, dir: &Path, extra_args: &[&str]) -> CairnDev {
        let (args, endpoint, admin, meta) = dev_command_line(dir, extra_args);
        Self::launch(binary, dir, args, endpoint, admin, meta)
    }

    /// Like [`CairnDev::start_with`] with extra environment variables (e.g. `CAIRN_LOG`).
    pub fn start_with_env(
        binary: &Path,
        dir: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> CairnDev {
        let (args, endpoint, admin, meta) = dev_command_line(dir, extra_args);
        let mut process = CairnProcess::start_with_env(binary, &args, dir, "dev", env);
        wait_for_listener(endpoint, &mut process, Duration::from_secs(60));
        Self::with_printed_keys(process, args, endpoint, admin, meta)
    }

    /// Kills this `cairn dev` with SIGKILL (if it still runs), waits for its ports to close and
    /// starts it again with the same arguments: same ports, same data.
    pub fn restarted(mut self, binary: &Path, dir: &Path) -> CairnDev {
        self.process.kill_9();
        wait_until_port_closed(self.endpoint, Duration::from_secs(20));
        wait_until_port_closed(self.meta, Duration::from_secs(20));
        Self::launch(
            binary,
            dir,
            self.args.clone(),
            self.endpoint,
            self.admin,
            self.meta,
        )
    }

    /// The first storage node's port (the six nodes use it and the five after it).
    pub fn storage_base_port(&self) -> u16 {
        let position = self
            .args
            .iter()
            .position(|arg| arg == "--storage-base-port")
            .expect("set by start_with");
        self.args[position + 1].parse().expect("a port")
    }

    /// Starts `cairn dev` with a command line from [`dev_command_line`] (its addresses given
    /// back), log in `dir/dev.log`.
    pub fn launch(
        binary: &Path,
        dir: &Path,
        args: Vec<String>,
        endpoint: SocketAddr,
        admin: SocketAddr,
        meta: SocketAddr,
    ) -> CairnDev {
        let mut process = CairnProcess::start(binary, &args, dir, "dev");
        wait_for_listener(endpoint, &mut process, Duration::from_secs(60));
        Self::with_printed_keys(process, args, endpoint, admin, meta)
    }

    /// Waits for the root keys `cairn dev` prints.
    fn with_printed_keys(
        process: CairnProcess,
        args: Vec<String>,
        endpoint: SocketAddr,
        admin: SocketAddr,
        meta: SocketAddr,
    ) -> CairnDev {
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
            if let (Some(access_key), Some(secret_key)) =
                (value("access key:"), value("secret key:"))
            {
                return CairnDev {
                    process,
                    endpoint,
                    admin,
                    meta,
                    args,
                    access_key,
                    secret_key,
                };
            }
            assert!(Instant::now() < deadline, "no credentials printed:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.endpoint)
    }

    /// One sample of the gateway's `/metrics` (`series` with its labels exactly as rendered, e.g.
    /// `cairn_gateway_requests_total{operation="PutObject",status_class="2xx"}`), once no request
    /// is in flight (a response's record trails the client's read by a moment).
    pub fn metric(&self, series: &str) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = http_get(self.admin, "/metrics");
            assert_eq!(status, 200, "scrape failed");
            let text = String::from_utf8(body).expect("metrics are UTF-8");
            let sample = |wanted: &str| -> Option<f64> {
                text.lines().find_map(|line| {
                    let (name, value) = line.rsplit_once(' ')?;
                    (name == wanted).then(|| value.parse().ok())?
                })
            };
            let in_flight = sample("cairn_gateway_requests_in_flight").expect("in-flight gauge");
            if in_flight == 0.0 || Instant::now() > deadline {
                return sample(series).unwrap_or_else(|| panic!("{series} missing:\n{text}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fails the test on ERROR lines in the log.
    pub fn assert_no_errors_logged(&self) {
        let errors = self.process.error_lines();
        assert!(
            errors.is_empty(),
            "unexpected ERROR lines:\n{}",
            errors.join("\n")
        );
    }
}

/// A plain HTTP/1.1 GET (no client library in between): status and body. The response must carry
/// `Content-Length` (the gateway's and admin listener's do).
pub fn http_get(address: SocketAddr, path_and_query: &str) -> (u16, Vec<u8>) {
    http_request(address, "GET", path_and_query)
}

/// A plain HTTP/1.1 request with an empty body (`method` GET, POST, …): status and body. The
/// response must carry `Content-Length`.
pub fn http_request(address: SocketAddr, method: &str, path_and_query: &str) -> (u16, Vec<u8>) {
    use std::io::Write;
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path_and_query} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("content-length");
    let body = response[split + 4..].to_vec();
    assert_eq!(body.len(), length, "short body");
    (status, body)
}

/// A TCP proxy on 127.0.0.1 for one directed link (one replica dialing another), with a switch
/// that cuts the link: [`FaultProxy::cut`] closes every connection through it and closes each
/// new one as soon as it is accepted, until [`FaultProxy::heal`]. Threads, no runtime: one
/// accepting, two per connection copying bytes. Dropping the proxy stops and joins them all.
pub struct FaultProxy {
    address: SocketAddr,
    shared: std::sync::Arc<ProxyShared>,
    accept_thread: Option<std::thread::JoinHandle<()>>,
}

struct ProxyShared {
    target: SocketAddr,
    cut: std::sync::atomic::AtomicBool,
    stopping: std::sync::atomic::AtomicBool,
    /// One handle on each end of every connection, to close them from outside the pumps.
    sockets: std::sync::Mutex<Vec<TcpStream>>,
    pumps: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl ProxyShared {
    fn close_all(&self) {
        let mut sockets = self
            .sockets
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        for socket in sockets.drain(..) {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl FaultProxy {
    /// Listens on a free port and forwards every connection to `target`.
    pub fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");
        let shared = std::sync::Arc::new(ProxyShared {
            target,
            cut: std::sync::atomic::AtomicBool::new(false),
            stopping: std::sync::atomic::AtomicBool::new(false),
            sockets: std::sync::Mutex::new(Vec::new()),
            pumps: std::sync::Mutex::new(Vec::new()),
        });
        let accept_shared = std::sync::Arc::clone(&shared);
        let accept_thread = std::thread::Builder::new()
            .name(format!("proxy-{}", address.port()))
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("spawn proxy thread");
        FaultProxy {
            address,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// Where to dial instead of the target.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Cuts the link: closes every open connection and every new one.
    pub fn cut(&self) {
        self.shared
            .cut
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.shared.close_all();
    }

    /// Restores the link for new connections.
    pub fn heal(&self) {
        self.shared
            .cut
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.shared.close_all();
        // Wake the blocking accept so the thread sees `stopping`.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_millis(500));
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
        self.shared.close_all();
        let pumps: Vec<_> = self
            .shared
            .pumps
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .drain(..)
            .collect();
        for pump in pumps {
            let _ = pump.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: std::sync::Arc<ProxyShared>) {
    use std::sync::atomic::Ordering;
    for incoming in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(inbound) = incoming else { continue };
        if shared.cut.load(Ordering::SeqCst) {
            // Refused: closed at once, as a dead link looks to the dialer.
            let _ = inbound.shutdown(std::net::Shutdown::Both);
            continue;
        }
        let Ok(outbound) = TcpStream::connect_timeout(&shared.target, Duration::from_secs(1))
        else {
            continue;
        };
        let _ = inbound.set_nodelay(true);
        let _ = outbound.set_nodelay(true);
        let handles = (
            inbound.try_clone(),
            outbound.try_clone(),
            inbound.try_clone(),
            outbound.try_clone(),
        );
        let (Ok(inbound_reader), Ok(outbound_reader), Ok(inbound_handle), Ok(outbound_handle)) =
            handles
        else {
            continue;
        };
        {
            let mut sockets = shared
                .sockets
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            // A cut that raced with this accept must not miss the new connection.
            if shared.cut.load(Ordering::SeqCst) || shared.stopping.load(Ordering::SeqCst) {
                let _ = inbound.shutdown(std::net::Shutdown::Both);
                let _ = outbound.shutdown(std::net::Shutdown::Both);
                continue;
            }
            sockets.push(inbound_handle);
            sockets.push(outbound_handle);
        }
        let forward = std::thread::spawn(move || pump(inbound_reader, outbound));
        let backward = std::thread::spawn(move || pump(outbound_reader, inbound));
        let mut pumps = shared
            .pumps
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        pumps.retain(|pump| !pump.is_finished());
        pumps.push(forward);
        pumps.push(backward);
    }
}

/// Copies `from` → `to` until either side fails or ends, then closes both directions of both.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// Runs `tests/python/<script>` with `args`; fails the test with its output unless it succeeds.
pub fn run_python_script<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(script: &str, args: &[S]) {
    if let Err(failure) = try_python_script(script, args) {
        panic!("{failure}");
    }
}

/// Runs `tests/python/<script>` with `args`; its output when it fails.
pub fn try_python_script<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
    script: &str,
    args: &[S],
) -> Result<(), String> {
    try_python_script_with_env(script, args, &[])
}

/// Like [`try_python_script`] with extra environment variables (e.g. `AWS_CA_BUNDLE`).
pub fn try_python_script_with_env<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
    script: &str,
    args: &[S],
    env: &[(String, String)],
) -> Result<(), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let output = Command::new("python3")
        .arg(&path)
        .args(args)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .output()
        .expect("run python3 (pip install -r .ci/requirements.txt)");
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{script} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

impl CairnDev {
    /// Runs `cairn admin ARGS` (the `binary`) against this dev, signed with
    /// `access_key`/`secret_key`; returns (success, stdout, stderr).
    pub fn admin(
        &self,
        binary: &Path,
        access_key: &str,
        secret_key: &str,
        args: &[&str],
    ) -> (bool, String, String) {
        let output = Command::new(binary)
            .arg("admin")
            .args(["--endpoint", &self.url()])
            .args(args)
            .env("CAIRN_ROOT_ACCESS_KEY", access_key)
            .env("CAIRN_ROOT_SECRET_KEY", secret_key)
            .output()
            .expect("run cairn admin");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Creates a key for `user` with `cairn admin create-key` and the root keys; returns
    /// (access key id, secret).
    pub fn create_user(&self, binary: &Path, user: &str) -> (String, String) {
        let (ok, stdout, stderr) = self.admin(
            binary,
            &self.access_key,
            &self.secret_key,
            &["create-key", "--user", user],
        );
        assert!(ok, "create-key failed: {stderr}");
        let answer: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON answer");
        assert_eq!(answer["user"], user);
        (
            answer["access_key_id"].as_str().unwrap().to_owned(),
            answer["secret_access_key"].as_str().unwrap().to_owned(),
        )
    }

    /// Runs a boto3 script of `tests/python/` with this dev's endpoint and root keys as its
    /// arguments (the convention of the `s3_*.py` scripts).
    /// A failure shows the script's output and this dev's WARN and ERROR lines.
    pub fn run_boto3_script(&self, script: &str) {
        let args = [self.url(), self.access_key.clone(), self.secret_key.clone()];
        if let Err(failure) = try_python_script(script, &args) {
            let log = self.process.log();
            let warnings: Vec<&str> = log
                .lines()
                .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
                .collect();
            panic!(
                "{failure}\ncairn dev WARN/ERROR lines:\n{}",
                warnings.join("\n")
            );
        }
    }
}

/// Runs `cairn ARGS` to completion and panics with its output if it fails.
pub fn run_cairn(binary: &Path, args: &[&str]) -> String {
    let output = Command::new(binary)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("spawn {}: {error}", binary.display()));
    assert!(
        output.status.success(),
        "cairn {} failed: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A cluster CA and identities made with the real `cairn ca` commands, for tests that start
/// roles by hand (internal traffic is mutual TLS).
pub struct TestPki {
    binary: PathBuf,
    ca: PathBuf,
    /// Identity NAME is `root/NAME`.
    pub root: PathBuf,
}

impl TestPki {
    /// `cairn ca init --out root/ca`.
    pub fn create(binary: &Path, root: &Path) -> TestPki {
        let ca = root.join("ca");
        run_cairn(binary, &["ca", "init", "--out", &ca.display().to_string()]);
        TestPki::for_ca(binary, &ca, root)
    }

    /// An existing CA (`ca`), issuing identities into `root`.
    pub fn for_ca(binary: &Path, ca: &Path, root: &Path) -> TestPki {
        std::fs::create_dir_all(root).expect("identities dir");
        TestPki {
            binary: binary.to_owned(),
            ca: ca.to_owned(),
            root: root.to_owned(),
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.ca.clone()
    }

    /// The CA's CRL, which `cairn ca revoke` rewrites.
    pub fn crl(&self) -> PathBuf {
        self.ca().join("crl.pem")
    }

    /// `cairn ca issue` of identity `name` with `role` (covering 127.0.0.1); issued once, also
    /// when tests of one binary share a `TestPki` and ask for the same identity concurrently.
    pub fn issue(&self, name: &str, role: &str) -> PathBuf {
        static ISSUING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = ISSUING.lock().unwrap_or_else(|poison| poison.into_inner());
        let dir = self.root.join(name);
        if !dir.join("key.pem").exists() {
            run_cairn(
                &self.binary,
                &[
                    "ca",
                    "issue",
                    "--ca",
                    &self.ca().display().to_string(),
                    "--name",
                    name,
                    "--role",
                    role,
                    "--ip",
                    "127.0.0.1",
                    "--out",
                    &dir.display().to_string(),
                ],
            );
        }
        dir
    }

    /// `cairn ca revoke --name NAME`.
    pub fn revoke(&self, name: &str) {
        run_cairn(
            &self.binary,
            &[
                "ca",
                "revoke",
                "--ca",
                &self.ca().display().to_string(),
                "--name",
                name,
            ],
        );
    }

    /// `--tls-dir <identity> --tls-crl <CA's crl.pem>` for a role's command line.
    pub fn role_args(&self, name: &str, role: &str) -> Vec<String> {
        vec![
            "--tls-dir".into(),
            self.issue(name, role).display().to_string(),
            "--tls-crl".into(),
            self.crl().display().to_string(),
        ]
    }
}

impl CairnDev {
    /// The data directory (`--data`).
    pub fn data_dir(&self) -> PathBuf {
        let position = self
            .args
            .iter()
            .position(|arg| arg == "--data")
            .expect("set by start_with");
        PathBuf::from(&self.args[position + 1])
    }

    /// The CA `cairn dev` generated on first start, as a [`TestPki`] (identities issued through
    /// it land in `<data>/tls/test-identities/NAME`).
    pub fn pki(&self, binary: &Path) -> TestPki {
        dev_pki(binary, &self.data_dir())
    }

    /// A worker identity of this `cairn dev`'s CA (for tests that talk to its storage nodes
    /// directly): the directory to load with `cairn_tls::Identity::load`.
    pub fn worker_identity(&self, binary: &Path) -> PathBuf {
        self.pki(binary).issue("test-worker", "worker")
    }
}

/// The CA of the `cairn dev` whose `--data` is `data` (identities issued into
/// `<data>/tls/test-identities`).
pub fn dev_pki(binary: &Path, data: &Path) -> TestPki {
    let tls = data.join("tls");
    TestPki::for_ca(binary, &tls.join("ca"), &tls.join("test-identities"))
}

/// Two regions on one machine, each a `cairn dev` of its own: us-east-1 (`dir/east`) holds the
/// global bucket service; us-west-2 (`dir/west`) sends bucket and access-key operations there
/// (`--global-meta`), shares its root keys and master key (which seals the access-key secrets the
/// global bucket service keeps) and its cluster CA (`--dev-ca`, so each side accepts the other's
/// internal certificates).
pub struct DevRegions {
    pub east: CairnDev,
    pub west: CairnDev,
    pub east_dir: PathBuf,
    pub west_dir: PathBuf,
}

impl DevRegions {
    /// Starts both regions with extra flags each; in them, `{east}` and `{west}` stand for the
    /// other process's S3 URL (`http://HOST:PORT`), known before either starts, and
    /// `{east_https}` and `{west_https}` for the same with `https://` (a region started with
    /// `--tls-cert`).
    pub fn start(
        binary: &Path,
        dir: &Path,
        east_extra: &[&str],
        west_extra: &[&str],
    ) -> DevRegions {
        let east_dir = dir.join("east");
        let west_dir = dir.join("west");
        std::fs::create_dir_all(&east_dir).unwrap();
        std::fs::create_dir_all(west_dir.join("cluster")).unwrap();
        let (mut east_args, east_endpoint, east_admin, east_meta) =
            dev_command_line(&east_dir, &[]);
        let global_meta = format!("1={east_meta}");
        let east_ca = east_dir.join("cluster").join("tls/ca");
        let (mut west_args, west_endpoint, west_admin, west_meta) = dev_command_line(
            &west_dir,
            &[
                "--region",
                "us-west-2",
                "--global-meta",
                &global_meta,
                "--dev-ca",
                east_ca.to_str().unwrap(),
            ],
        );
        let substitute = |arg: &&str| {
            arg.replace("{east}", &format!("http://{east_endpoint}"))
                .replace("{west}", &format!("http://{west_endpoint}"))
                .replace("{east_https}", &format!("https://{east_endpoint}"))
                .replace("{west_https}", &format!("https://{west_endpoint}"))
        };
        east_args.extend(east_extra.iter().map(substitute));
        west_args.extend(west_extra.iter().map(substitute));
        let east = CairnDev::launch(
            binary,
            &east_dir,
            east_args,
            east_endpoint,
            east_admin,
            east_meta,
        );
        for file in ["root-credentials", "master-key"] {
            std::fs::copy(
                east_dir.join("cluster").join(file),
                west_dir.join("cluster").join(file),
            )
            .unwrap();
        }
        let west = CairnDev::launch(
            binary,
            &west_dir,
            west_args,
            west_endpoint,
            west_admin,
            west_meta,
        );
        assert_eq!(west.access_key, east.access_key);
        DevRegions {
            east,
            west,
            east_dir,
            west_dir,
        }
    }
}
