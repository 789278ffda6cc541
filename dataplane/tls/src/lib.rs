//! Internal mutual TLS: the cluster CA, each process's identity, and the rustls configurations
//! every internal listener and dialer uses (storage RPC, Raft and metadata RPC, edge → gateway).
//!
//! # Model
//!
//! `cairn ca init` makes a cluster CA (ECDSA P-256, `ca.pem` + `ca-key.pem` mode 0600, an empty
//! CRL `crl.pem`); `cairn ca issue` signs one leaf certificate per process for one [`Role`];
//! `cairn ca revoke` adds serial numbers to the CA's CRL (a real X.509 CRL signed by the CA key,
//! so a node needs nothing but the CA certificate to trust it). An identity directory written by
//! `issue` holds `ca.pem`, `cert.pem`, `key.pem` (0600) and a copy of `crl.pem`.
//!
//! A leaf carries its role as a DNS subject-alternative name, `<role>.role.cairn` (see
//! [`Role::dns_name`]), next to any addresses given at issue time. That is how both sides of a
//! connection check what the other is:
//! - a client dials with the server name of the role it expects (`storage.role.cairn` for a
//!   storage node), so a certificate of another role, or of another CA, fails the handshake;
//! - a server accepts a client certificate only when it chains to the cluster CA, is not on the
//!   CRL and names one of the roles that server admits (a storage node admits gateway, worker,
//!   meta and storage identities; never an edge).
//!
//! # Invariants
//!
//! - Every internal server demands a client certificate: there is no anonymous mode in these
//!   configurations. Plaintext exists only where a caller builds no TLS at all, which the roles'
//!   command lines allow only behind an explicit, logged `--insecure-plaintext-internal`.
//! - Revocation is checked on every handshake against the CRL file as it is on disk: the file's
//!   modification time is looked at, at most every [`CRL_RECHECK`], and a changed file is loaded
//!   again (a file that no longer parses keeps the last good list and is logged). Session
//!   resumption is off on the servers, so each connection is a full handshake whose client
//!   certificate is checked against the current CRL. Connections that were open before a
//!   revocation are cut too: each internal server runs [`PeerCheck::still_trusted`] before
//!   every request and closes the connection of a peer that is no longer trusted.
//! - TLS 1.3 only, ring provider.
//!
//! # Plaintext after authentication, on loopback only
//!
//! A storage node, a metadata replica and a gateway's edge listener may carry a connection in
//! plaintext once its handshake has authenticated both ends, when both ends of the connection are loopback
//! addresses (`cairn dev`, a gateway on the same host as its nodes, an edge on the gateway's
//! host). Loopback traffic never leaves the host's network namespace, and
//! reading it or injecting into an established loopback TCP connection takes `CAP_NET_RAW` or
//! `CAP_NET_ADMIN` (root), which can read the identities' keys anyway; so encryption there
//! protects against nothing that the authentication does not, while it costs about a third of
//! the node's large-object throughput (every byte of every piece is sealed and copied once more).
//! The same trade as Ceph msgr2's `crc` mode, limited to loopback. The mechanism:
//! - every internal client offers the ALPN protocol [`LOOPBACK_PLAINTEXT_ALPN`] on a connection
//!   that is loopback at both ends as it sees them ([`client_config_for`]), and on no other;
//!   no internal server configures ALPN except a listener built with
//!   [`ServerTls::with_loopback_plaintext`], which selects it only for a connection whose local
//!   and peer addresses are both loopback ([`ServerTls::config_for`]);
//! - after a handshake that selected it, the server sends [`LOOPBACK_PLAINTEXT_ACK`] inside TLS
//!   and then speaks plaintext on the bare socket; the client reads the acknowledgement inside
//!   TLS, checks that its own connection is loopback on both ends and that TLS holds nothing
//!   more ([`check_loopback_switch`]), and does the same. Nothing else is in flight at the switch
//!   (the client sends nothing between its Finished and the acknowledgement; the server sends
//!   no session tickets), so no byte is read by one layer and expected by the other;
//! - a client whose server selected the protocol on a connection that is not loopback refuses
//!   the connection; the per-request revocation check ([`PeerCheck`]) continues unchanged.
//!
//! `--encrypt-loopback` keeps them encrypted. Raft and metadata RPC switch too (since session
//! 18): their messages are small, but a small-object request makes two or three of them, and
//! their TLS measured at about 4 % of small-object PUT throughput. A metadata replica switches
//! on its own protocol, [`META_LOOPBACK_PLAINTEXT_ALPN`] ([`ServerTls::with_meta_loopback_plaintext`]):
//! clients from before then offered [`LOOPBACK_PLAINTEXT_ALPN`] to replicas too but ignored the
//! answer, so a replica that switched on it would have broken them.

mod ca;
#[cfg(feature = "monoio")]
pub mod monoio_dial;
#[cfg(feature = "tokio")]
pub mod tokio_dial;
mod verify;

pub use ca::{
    CA_KEY_FILE as CA_KEY_FILE_NAME, CaError, IssueRequest, IssuedCertificate, init_ca, issue,
    revoke,
};
pub use rustls;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The ALPN protocol that switches an authenticated loopback connection to plaintext (see the
/// module header).
pub const LOOPBACK_PLAINTEXT_ALPN: &[u8] = b"cairn-loopback-plaintext/1";

/// The ALPN protocol a metadata replica selects for the same switch. Clients that follow the
/// switch on metadata connections offer it beside [`LOOPBACK_PLAINTEXT_ALPN`]; a replica lists
/// it first and switches only when it was selected, so a client from before metadata
/// connections switched (it offers only [`LOOPBACK_PLAINTEXT_ALPN`] and ignores the answer)
/// stays in TLS instead of reading plaintext it does not expect.
pub const META_LOOPBACK_PLAINTEXT_ALPN: &[u8] = b"cairn-loopback-plaintext-meta/1";

/// What a server sends inside TLS, once, before it switches a connection to plaintext.
pub const LOOPBACK_PLAINTEXT_ACK: &[u8; 16] = b"cairn:plaintext\n";

/// Whether a connection from `local` to `peer` runs over loopback at both ends.
pub fn is_loopback_connection(local: std::net::SocketAddr, peer: std::net::SocketAddr) -> bool {
    local.ip().is_loopback() && peer.ip().is_loopback()
}

/// The configuration a client dials a connection from `local` to `peer` with: `config` as it
/// is (offering [`LOOPBACK_PLAINTEXT_ALPN`]) when both ends are loopback, else a copy that
/// offers nothing. A connection that only looks loopback to the server (a port forwarded by a
/// proxy on the server's host) is then never offered the switch; the client would refuse it.
pub fn client_config_for(
    config: &Arc<rustls::ClientConfig>,
    local: std::net::SocketAddr,
    peer: std::net::SocketAddr,
) -> Arc<rustls::ClientConfig> {
    if is_loopback_connection(local, peer) || config.alpn_protocols.is_empty() {
        return Arc::clone(config);
    }
    let mut config = (**config).clone();
    config.alpn_protocols.retain(|protocol| {
        protocol != LOOPBACK_PLAINTEXT_ALPN && protocol != META_LOOPBACK_PLAINTEXT_ALPN
    });
    Arc::new(config)
}

/// Whether a finished handshake selected a switch to plaintext (a client's view: either
/// protocol; a server asks its [`ServerTls::switches`]).
pub fn selects_loopback_plaintext(alpn: Option<&[u8]>) -> bool {
    alpn == Some(LOOPBACK_PLAINTEXT_ALPN) || alpn == Some(META_LOOPBACK_PLAINTEXT_ALPN)
}

/// A client's checks before it drops TLS on a connection whose server selected
/// [`LOOPBACK_PLAINTEXT_ALPN`]: `ack` is what it read inside TLS (must be
/// [`LOOPBACK_PLAINTEXT_ACK`]), `local` and `peer` the socket's addresses (both loopback), and
/// `connection` must hold no more plaintext and nothing left to send.
pub fn check_loopback_switch<Data>(
    ack: &[u8],
    local: std::net::SocketAddr,
    peer: std::net::SocketAddr,
    connection: &mut rustls::ConnectionCommon<Data>,
) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind, Read};
    let refuse = |why: &str| Err(Error::new(ErrorKind::InvalidData, why.to_owned()));
    if !is_loopback_connection(local, peer) {
        return refuse("the server switched a connection that is not loopback to plaintext");
    }
    if ack != LOOPBACK_PLAINTEXT_ACK {
        return refuse("the server's switch to plaintext was not acknowledged as expected");
    }
    let mut probe = [0u8; 1];
    match connection.reader().read(&mut probe) {
        Err(error) if error.kind() == ErrorKind::WouldBlock => {}
        _ => return refuse("the server sent more than its acknowledgement before plaintext"),
    }
    if connection.wants_write() {
        return refuse("TLS had data left to send at the switch to plaintext");
    }
    Ok(())
}

/// How often, at most, a handshake looks at the CRL file's modification time.
pub const CRL_RECHECK: Duration = Duration::from_millis(500);

/// Names of the files in an identity directory (and, for `ca.pem` and `crl.pem`, the CA's).
pub const CA_CERT_FILE: &str = "ca.pem";
pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";
pub const CRL_FILE: &str = "crl.pem";

/// What a process is in the cluster; carried in its certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Storage,
    Meta,
    Gateway,
    Worker,
    Edge,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Storage,
        Role::Meta,
        Role::Gateway,
        Role::Worker,
        Role::Edge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Storage => "storage",
            Role::Meta => "meta",
            Role::Gateway => "gateway",
            Role::Worker => "worker",
            Role::Edge => "edge",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// The subject-alternative name that marks a certificate as this role's.
    pub fn dns_name(self) -> String {
        format!("{}.role.cairn", self.as_str())
    }

    /// The name a client dials a server of this role by.
    pub fn server_name(self) -> ServerName<'static> {
        ServerName::try_from(self.dns_name()).expect("role names are valid DNS names")
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Clients a storage node serves: whoever reads and writes pieces (gateways, workers, the
/// workers embedded in meta) and a node's own heartbeat, which asks the node for its health.
pub const STORAGE_CLIENTS: &[Role] = &[Role::Gateway, Role::Worker, Role::Meta, Role::Storage];
/// Clients a metadata replica serves: its peers and every role that reads or writes metadata
/// (the edge reads the bucket service and access keys).
pub const META_CLIENTS: &[Role] = &[
    Role::Meta,
    Role::Gateway,
    Role::Worker,
    Role::Storage,
    Role::Edge,
];
/// Clients of a gateway's internal (edge-facing) listener.
pub const GATEWAY_INTERNAL_CLIENTS: &[Role] = &[Role::Edge];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn file_error(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// Where a process finds its identity: `dir` written by `cairn ca issue`, and the CRL to check
/// peers against (default `dir/crl.pem`; point it at the CA's `crl.pem` to see revocations as
/// soon as `cairn ca revoke` writes them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub dir: PathBuf,
    pub crl: Option<PathBuf>,
}

impl TlsFiles {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TlsFiles {
            dir: dir.into(),
            crl: None,
        }
    }

    pub fn crl_path(&self) -> PathBuf {
        self.crl.clone().unwrap_or_else(|| self.dir.join(CRL_FILE))
    }
}

/// A process's cluster identity: the CA it trusts, its certificate and key, the CRL it checks.
/// Cheap to share (`Arc`); the configurations it builds re-read the CRL as it changes.
pub struct Identity {
    role: Role,
    name: String,
    roots: Arc<rustls::RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    revocation: Arc<verify::Revocation>,
    client_config: Arc<rustls::ClientConfig>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Identity")
            .field("role", &self.role)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The crypto provider of every TLS configuration here: ring, with TLS 1.3's AES-128-GCM first.
/// On internal connections both ends are Cairn's, so the client offers it first and it is used:
/// it is TLS 1.3's mandatory suite, offers 128-bit security and runs 10 AES rounds per block
/// against AES-256's 14, and every byte of every piece crosses an internal hop. A public
/// listener ([`public_server_config`]) still follows the client's order.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    Arc::new(provider)
}

impl Identity {
    /// Loads an identity directory. Fails when a file is missing or does not parse, when the
    /// certificate does not chain to `ca.pem`, or when it names no role.
    pub fn load(files: &TlsFiles) -> Result<Arc<Identity>, TlsError> {
        let ca_path = files.dir.join(CA_CERT_FILE);
        let cert_path = files.dir.join(CERT_FILE);
        let key_path = files.dir.join(KEY_FILE);
        let read_certs = |path: &Path| -> Result<Vec<CertificateDer<'static>>, TlsError> {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|error| file_error(path, error))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| file_error(path, error))?;
            if certs.is_empty() {
                return Err(file_error(path, "no certificate in the file"));
            }
            Ok(certs)
        };
        let mut roots = rustls::RootCertStore::empty();
        for ca in read_certs(&ca_path)? {
            roots.add(ca).map_err(|error| file_error(&ca_path, error))?;
        }
        let roots = Arc::new(roots);
        let chain = read_certs(&cert_path)?;
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .map_err(|error| file_error(&key_path, error))?;
        let crl_path = files.crl_path();
        let crl = if files.crl.is_some() || crl_path.exists() {
            Some(crl_path)
        } else {
            tracing::warn!(
                dir = %files.dir.display(),
                "no crl.pem beside the identity: revoked certificates are not detected"
            );
            None
        };
        let revocation = Arc::new(verify::Revocation::load(crl)?);
        let role = verify::role_of(&chain[0]).ok_or_else(|| {
            file_error(
                &cert_path,
                "the certificate names no Cairn role (<role>.role.cairn); issue it with `cairn ca issue`",
            )
        })?;
        let name = files
            .dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The certificate must be one this CA signed and not revoked: a node refuses to start
        // with an identity its peers would refuse anyway, with a clearer message here.
        verify::check_own_certificate(&roots, &revocation, &chain).map_err(|error| {
            file_error(
                &cert_path,
                format!("not usable with {}: {error}", ca_path.display()),
            )
        })?;
        let server_verifier = Arc::new(verify::ServerVerifier::new(
            Arc::clone(&roots),
            Arc::clone(&revocation),
            provider(),
        ));
        let mut client_config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|error| TlsError::Config(error.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(server_verifier)
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(|error| TlsError::Config(error.to_string()))?;
        // Offered to every internal server; only the loopback connections of a switching
        // listener (storage node, metadata replica, edge listener) select it (see the module
        // header).
        client_config.alpn_protocols = vec![
            LOOPBACK_PLAINTEXT_ALPN.to_vec(),
            META_LOOPBACK_PLAINTEXT_ALPN.to_vec(),
        ];
        Ok(Arc::new(Identity {
            role,
            name,
            roots,
            chain,
            key,
            revocation,
            client_config: Arc::new(client_config),
        }))
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The identity directory's name (for logs).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration for dialling internal servers with this identity. Dial with
    /// [`Role::server_name`] of the role you expect to reach.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.client_config)
    }

    /// The configuration of an internal listener that serves clients of the `accepted` roles:
    /// a client certificate chained to the cluster CA, not revoked, of one of those roles, is
    /// required before anything is read from the connection.
    pub fn server_config(&self, accepted: &[Role]) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let verifier = Arc::new(verify::ClientVerifier::new(
            Arc::clone(&self.roots),
            Arc::clone(&self.revocation),
            accepted.to_vec(),
            provider(),
        ));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|error| TlsError::Config(error.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|error| TlsError::Config(error.to_string()))?;
        // No resumption: every connection presents its certificate again and meets the CRL as
        // it is now.
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(Arc::new(config))
    }

    /// [`Identity::server_config`] and the matching [`Identity::peer_check`]: what an internal
    /// listener needs.
    pub fn server_tls(&self, accepted: &[Role]) -> Result<ServerTls, TlsError> {
        Ok(ServerTls {
            config: self.server_config(accepted)?,
            loopback_plaintext: None,
            switch_protocol: LOOPBACK_PLAINTEXT_ALPN,
            check: self.peer_check(accepted),
        })
    }

    /// The check an internal server runs on an open connection before each request, so a
    /// certificate revoked after its handshake loses the connection too (see [`PeerCheck`]).
    /// `accepted` must be the roles the listener's [`Identity::server_config`] accepts.
    pub fn peer_check(&self, accepted: &[Role]) -> PeerCheck {
        PeerCheck {
            revocation: Arc::clone(&self.revocation),
            verifier: Arc::new(verify::ClientVerifier::new(
                Arc::clone(&self.roots),
                Arc::clone(&self.revocation),
                accepted.to_vec(),
                provider(),
            )),
        }
    }
}

/// An internal listener's TLS: the handshake's configuration and the per-request re-check.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    /// `config` selecting [`LOOPBACK_PLAINTEXT_ALPN`], for loopback connections of a listener
    /// that switches them to plaintext; `None` keeps every connection encrypted.
    pub loopback_plaintext: Option<Arc<rustls::ServerConfig>>,
    /// The protocol whose selection switches a connection of this listener.
    switch_protocol: &'static [u8],
    pub check: PeerCheck,
}

impl ServerTls {
    /// This listener's loopback connections switch to plaintext after their handshake (see the
    /// module header). Only for servers that implement the switch.
    pub fn with_loopback_plaintext(self) -> ServerTls {
        self.switching_on(LOOPBACK_PLAINTEXT_ALPN, &[LOOPBACK_PLAINTEXT_ALPN])
    }

    /// [`ServerTls::with_loopback_plaintext`] for a metadata replica: it switches on
    /// [`META_LOOPBACK_PLAINTEXT_ALPN`] only, and selects [`LOOPBACK_PLAINTEXT_ALPN`] for a
    /// client that offers nothing else (older clients, which stay in TLS), since a listener
    /// with protocols refuses a client that offers none of them.
    pub fn with_meta_loopback_plaintext(self) -> ServerTls {
        self.switching_on(
            META_LOOPBACK_PLAINTEXT_ALPN,
            &[META_LOOPBACK_PLAINTEXT_ALPN, LOOPBACK_PLAINTEXT_ALPN],
        )
    }

    fn switching_on(mut self, protocol: &'static [u8], listed: &[&[u8]]) -> ServerTls {
        let mut config = (*self.config).clone();
        config.alpn_protocols = listed.iter().map(|listed| listed.to_vec()).collect();
        self.loopback_plaintext = Some(Arc::new(config));
        self.switch_protocol = protocol;
        self
    }

    /// Whether a handshake of this listener that selected `alpn` switches to plaintext.
    pub fn switches(&self, alpn: Option<&[u8]>) -> bool {
        self.loopback_plaintext.is_some() && alpn == Some(self.switch_protocol)
    }

    /// The configuration to accept a connection from `peer` on `local` with.
    pub fn config_for(
        &self,
        local: std::net::SocketAddr,
        peer: std::net::SocketAddr,
    ) -> Arc<rustls::ServerConfig> {
        match &self.loopback_plaintext {
            Some(config) if is_loopback_connection(local, peer) => Arc::clone(config),
            _ => Arc::clone(&self.config),
        }
    }
}

/// Re-checks the certificate an accepted connection presented against the CRL as it is now.
///
/// A handshake checks the CRL once; internal connections then live for hours in keep-alive
/// pools. A server takes [`PeerCheck::before_handshake`] before it accepts, turns it into a
/// [`PeerCertificate`] once the handshake is done, and calls [`PeerCheck::still_trusted`]
/// before serving each request. Between looks at the file (every [`CRL_RECHECK`] at most) that
/// is a clock read and two atomic loads, no lock; when the file changed, the peer's chain is
/// verified again, in full, and a revoked peer's connection is closed by the server.
#[derive(Clone)]
pub struct PeerCheck {
    revocation: Arc<verify::Revocation>,
    verifier: Arc<verify::ClientVerifier>,
}

impl fmt::Debug for PeerCheck {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("PeerCheck").finish_non_exhaustive()
    }
}

/// The CRL generation a connection's handshake may have been checked against (taken before
/// the handshake starts, so a CRL that changes during the handshake is checked again).
#[derive(Clone, Copy, Debug)]
pub struct CrlGeneration(u64);

/// An accepted connection's client certificate chain and the CRL generation it was last
/// checked against.
#[derive(Debug)]
pub struct PeerCertificate {
    chain: Vec<CertificateDer<'static>>,
    checked: u64,
}

impl PeerCheck {
    /// Call before accepting the handshake.
    pub fn before_handshake(&self) -> CrlGeneration {
        CrlGeneration(self.revocation.generation())
    }

    /// The peer of a finished handshake (`chain`: the connection's peer certificates). `None`
    /// when it presented none, which a server configured by [`Identity::server_config`] never
    /// accepts.
    pub fn peer(
        &self,
        generation: CrlGeneration,
        chain: Option<&[CertificateDer<'_>]>,
    ) -> Option<PeerCertificate> {
        let chain: Vec<CertificateDer<'static>> = chain?
            .iter()
            .map(|certificate| certificate.clone().into_owned())
            .collect();
        if chain.is_empty() {
            return None;
        }
        Some(PeerCertificate {
            chain,
            checked: generation.0,
        })
    }

    /// Whether the peer's certificate is still trusted under the CRL in force now.
    pub fn still_trusted(&self, peer: &mut PeerCertificate) -> bool {
        use rustls::server::danger::ClientCertVerifier;
        let generation = self.revocation.generation();
        if generation == peer.checked {
            return true;
        }
        let verified = self.verifier.verify_client_cert(
            &peer.chain[0],
            &peer.chain[1..],
            rustls::pki_types::UnixTime::now(),
        );
        match verified {
            Ok(_) => {
                peer.checked = generation;
                true
            }
            Err(_) => false,
        }
    }
}

/// The log line every role prints when told to run its internal traffic in plaintext.
pub fn warn_insecure_plaintext(role: &str) {
    tracing::warn!(
        role,
        "INSECURE: internal traffic of this process is PLAINTEXT and UNAUTHENTICATED \
         (--insecure-plaintext-internal); anyone who can reach its ports can read and write data"
    );
    eprintln!(
        "cairn {role}: WARNING: --insecure-plaintext-internal: internal RPC is plaintext and unauthenticated"
    );
}

/// The configuration of a public TLS listener (the gateway's S3 port): TLS 1.3 and 1.2, ALPN
/// `http/1.1`, no client certificates, the chain in `cert_path` (PEM, leaf first) and the key
/// in `key_path`.
pub fn public_server_config(
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(|error| file_error(cert_path, error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| file_error(cert_path, error))?;
    if chain.is_empty() {
        return Err(file_error(cert_path, "no certificate in the file"));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_path).map_err(|error| file_error(key_path, error))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|error| TlsError::Config(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| TlsError::Config(error.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
