//! The cluster CA on disk: `cairn ca init`, `cairn ca issue`, `cairn ca revoke`.
//!
//! A CA directory holds `ca.pem`, `ca-key.pem` (0600; whoever has it can mint identities),
//! `crl.pem` (the CRL, re-signed on every revocation), `issued.tsv` (serial, name, role, expiry of
//! every certificate issued: what `revoke --name` looks up) and `revoked.tsv` (serial, unix time).

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;
use time::OffsetDateTime;

use crate::{CA_CERT_FILE, CERT_FILE, CRL_FILE, KEY_FILE, Role};

pub const CA_KEY_FILE: &str = "ca-key.pem";
const ISSUED_FILE: &str = "issued.tsv";
const REVOKED_FILE: &str = "revoked.tsv";

/// How long a CA certificate is valid.
const CA_VALIDITY_DAYS: i64 = 3650;
/// How far ahead a CRL says the next one is due (not enforced by Cairn's verifiers).
const CRL_VALIDITY_DAYS: i64 = 365;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{0}")]
    Invalid(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_owned(),
        source,
    }
}

fn create_dir(dir: &Path) -> Result<(), CaError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error(dir))
}

/// Writes `contents` to `path` through a temporary file and a rename, so a reader (a node
/// re-reading its CRL) never sees half a file. Private files get mode 0600 from the start.
fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), CaError> {
    let temporary = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    options.mode(if private { 0o600 } else { 0o644 });
    let mut file = options.open(&temporary).map_err(io_error(&temporary))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(&temporary))?;
    std::fs::rename(&temporary, path).map_err(io_error(path))
}

fn read_file(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(io_error(path))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A random positive 16-byte serial number.
fn random_serial() -> Vec<u8> {
    let mut serial = vec![0u8; 16];
    rand::thread_rng().fill_bytes(&mut serial);
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    serial
}

fn ca_params() -> Result<rcgen::CertificateParams, CaError> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Cairn cluster CA");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Cairn");
    // Leaves only: no intermediate CA can be made under this one.
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(CA_VALIDITY_DAYS);
    params.serial_number = Some(rcgen::SerialNumber::from(random_serial()));
    Ok(params)
}

/// Creates a CA in `dir` (refuses to overwrite an existing CA key) with an empty CRL. Returns
/// the CA certificate's path.
pub fn init_ca(dir: &Path) -> Result<PathBuf, CaError> {
    let key_path = dir.join(CA_KEY_FILE);
    if key_path.exists() {
        return Err(CaError::Invalid(format!(
            "{} already exists: refusing to replace a CA (every identity it issued would stop working)",
            key_path.display()
        )));
    }
    create_dir(dir)?;
    let key = rcgen::KeyPair::generate()?;
    let certificate = ca_params()?.self_signed(&key)?;
    write_file(&key_path, &key.serialize_pem(), true)?;
    let cert_path = dir.join(CA_CERT_FILE);
    write_file(&cert_path, &certificate.pem(), false)?;
    write_file(&dir.join(ISSUED_FILE), "", false)?;
    write_file(&dir.join(REVOKED_FILE), "", false)?;
    write_crl(dir, &[])?;
    Ok(cert_path)
}

fn load_issuer(dir: &Path) -> Result<rcgen::Issuer<'static, rcgen::KeyPair>, CaError> {
    let key = rcgen::KeyPair::from_pem(&read_file(&dir.join(CA_KEY_FILE))?)?;
    Ok(rcgen::Issuer::from_ca_cert_pem(
        &read_file(&dir.join(CA_CERT_FILE))?,
        key,
    )?)
}

/// What `cairn ca issue` makes.
#[derive(Clone, Debug)]
pub struct IssueRequest {
    /// The process's name (certificate common name; what `revoke --name` matches).
    pub name: String,
    pub role: Role,
    /// Addresses and DNS names the certificate also covers (the role name is always in it).
    pub ip_addresses: Vec<IpAddr>,
    pub dns_names: Vec<String>,
    pub validity_days: u32,
}

impl IssueRequest {
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        IssueRequest {
            name: name.into(),
            role,
            ip_addresses: Vec::new(),
            dns_names: Vec::new(),
            validity_days: 825,
        }
    }
}

#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    /// Hex serial number (what the CRL lists once revoked).
    pub serial: String,
    /// The identity directory (`ca.pem`, `cert.pem`, `key.pem`, `crl.pem`).
    pub dir: PathBuf,
}

/// Issues a leaf certificate for `request` signed by the CA in `ca_dir` and writes an identity
/// directory to `out` (refusing to overwrite an existing key there).
pub fn issue(
    ca_dir: &Path,
    request: &IssueRequest,
    out: &Path,
) -> Result<IssuedCertificate, CaError> {
    if request.name.is_empty()
        || request
            .name
            .chars()
            .any(|character| character.is_control() || character == '\t')
    {
        return Err(CaError::Invalid(
            "the name must be non-empty, without tabs or control characters".into(),
        ));
    }
    if request.validity_days == 0 {
        return Err(CaError::Invalid("validity must be at least one day".into()));
    }
    let key_path = out.join(KEY_FILE);
    if key_path.exists() {
        return Err(CaError::Invalid(format!(
            "{} already exists: refusing to replace an identity",
            key_path.display()
        )));
    }
    let issuer = load_issuer(ca_dir)?;
    let mut names = vec![request.role.dns_name()];
    names.extend(request.dns_names.iter().cloned());
    names.extend(request.ip_addresses.iter().map(IpAddr::to_string));
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, request.name.as_str());
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationalUnitName, request.role.as_str());
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    // Every process is a server to some peers and a client of others.
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let serial = random_serial();
    params.serial_number = Some(rcgen::SerialNumber::from(serial.clone()));
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(request.validity_days));
    let key = rcgen::KeyPair::generate()?;
    let certificate = params.signed_by(&key, &issuer)?;

    create_dir(out)?;
    write_file(&key_path, &key.serialize_pem(), true)?;
    write_file(&out.join(CERT_FILE), &certificate.pem(), false)?;
    write_file(
        &out.join(CA_CERT_FILE),
        &read_file(&ca_dir.join(CA_CERT_FILE))?,
        false,
    )?;
    write_file(
        &out.join(CRL_FILE),
        &read_file(&ca_dir.join(CRL_FILE))?,
        false,
    )?;
    let serial = hex(&serial);
    let issued = ca_dir.join(ISSUED_FILE);
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&issued)
        .map_err(io_error(&issued))?;
    writeln!(
        log,
        "{serial}\t{}\t{}\t{}",
        request.name,
        request.role,
        params.not_after.unix_timestamp()
    )
    .map_err(io_error(&issued))?;
    Ok(IssuedCertificate {
        serial,
        dir: out.to_owned(),
    })
}

fn read_revoked(ca_dir: &Path) -> Result<Vec<(Vec<u8>, i64)>, CaError> {
    let path = ca_dir.join(REVOKED_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(io_error(&path)(error)),
    };
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (serial, when) = line.split_once('\t').unwrap_or((line, "0"));
            let serial = cairn_common::decode_hex(serial.trim()).ok_or_else(|| {
                CaError::Invalid(format!("{}: bad serial {serial:?}", path.display()))
            })?;
            Ok((serial, when.trim().parse().unwrap_or(0)))
        })
        .collect()
}

fn write_crl(ca_dir: &Path, revoked: &[(Vec<u8>, i64)]) -> Result<(), CaError> {
    let issuer = load_issuer(ca_dir)?;
    let now = OffsetDateTime::now_utc();
    let params = rcgen::CertificateRevocationListParams {
        this_update: now,
        next_update: now + time::Duration::days(CRL_VALIDITY_DAYS),
        // Later CRLs carry larger numbers: the time in nanoseconds serves.
        crl_number: rcgen::SerialNumber::from(
            (now.unix_timestamp_nanos() as u64).to_be_bytes().to_vec(),
        ),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|(serial, when)| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from(serial.clone()),
                revocation_time: OffsetDateTime::from_unix_timestamp(*when).unwrap_or(now),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(&issuer)?;
    write_file(&ca_dir.join(CRL_FILE), &crl.pem()?, false)
}

/// Revokes every certificate issued under `name` (or the one with serial `serial`, hex) and
/// re-signs `ca_dir/crl.pem`. Returns the serials newly revoked; an unknown name or serial is an
/// error. Servers that read this CRL file (or a copy of it) refuse those certificates from their
/// next handshake on.
pub fn revoke(
    ca_dir: &Path,
    name: Option<&str>,
    serial: Option<&str>,
) -> Result<Vec<String>, CaError> {
    let issued_path = ca_dir.join(ISSUED_FILE);
    let issued = read_file(&issued_path)?;
    let wanted: Vec<String> = issued
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let line_serial = fields.next()?;
            let line_name = fields.next()?;
            let matches = name.is_some_and(|name| name == line_name)
                || serial.is_some_and(|serial| serial.eq_ignore_ascii_case(line_serial));
            matches.then(|| line_serial.to_owned())
        })
        .collect();
    if wanted.is_empty() {
        return Err(CaError::Invalid(format!(
            "no certificate issued by {} matches {}",
            ca_dir.display(),
            name.map(|name| format!("name {name:?}"))
                .or(serial.map(|serial| format!("serial {serial}")))
                .unwrap_or_else(|| "nothing (give --name or --serial)".into())
        )));
    }
    let mut revoked = read_revoked(ca_dir)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut newly = Vec::new();
    for serial in wanted {
        let bytes = cairn_common::decode_hex(&serial).ok_or_else(|| {
            CaError::Invalid(format!("{}: bad serial {serial:?}", issued_path.display()))
        })?;
        if revoked.iter().all(|(known, _)| *known != bytes) {
            revoked.push((bytes, now));
            newly.push(serial);
        }
    }
    let text: String = revoked
        .iter()
        .map(|(serial, when)| format!("{}\t{when}\n", hex(serial)))
        .collect();
    write_file(&ca_dir.join(REVOKED_FILE), &text, false)?;
    write_crl(ca_dir, &revoked)?;
    Ok(newly)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Identity, TlsFiles};
    use std::sync::Arc;

    #[test]
    fn issued_identities_load_and_revocation_is_seen() {
        let root = tempfile::tempdir().unwrap();
        let ca = root.path().join("ca");
        init_ca(&ca).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ca.join(CA_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(init_ca(&ca).is_err(), "an existing CA is never replaced");

        let node = root.path().join("storage-1");
        let issued = issue(&ca, &IssueRequest::new("storage-1", Role::Storage), &node).unwrap();
        let mode = std::fs::metadata(node.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let identity = Identity::load(&TlsFiles::new(&node)).unwrap();
        assert_eq!(identity.role(), Role::Storage);

        assert_eq!(
            revoke(&ca, Some("storage-1"), None).unwrap(),
            vec![issued.serial.clone()]
        );
        assert!(revoke(&ca, Some("nobody"), None).is_err());
        // The node's own copy of the CRL predates the revocation; the CA's does not.
        let files = TlsFiles {
            dir: node.clone(),
            crl: Some(ca.join(CRL_FILE)),
        };
        let error = Identity::load(&files).unwrap_err().to_string();
        assert!(error.contains("evoked"), "{error}");
    }

    /// A fresh CA with a gateway and a storage identity (the directory lives as long as the
    /// returned guard).
    fn gateway_and_storage() -> (tempfile::TempDir, Arc<Identity>, Arc<Identity>) {
        let root = tempfile::tempdir().unwrap();
        let ca = root.path().join("ca");
        init_ca(&ca).unwrap();
        let load = |name: &str, role: Role| {
            let dir = root.path().join(name);
            issue(&ca, &IssueRequest::new(name, role), &dir).unwrap();
            Identity::load(&TlsFiles::new(&dir)).unwrap()
        };
        let gateway = load("gateway-1", Role::Gateway);
        let storage = load("storage-1", Role::Storage);
        (root, gateway, storage)
    }

    #[test]
    fn internal_connections_use_tls13_aes_128_gcm() {
        let (_root, gateway, storage) = gateway_and_storage();
        let mut client =
            rustls::ClientConnection::new(gateway.client_config(), Role::Storage.server_name())
                .unwrap();
        let mut server =
            rustls::ServerConnection::new(storage.server_config(&[Role::Gateway]).unwrap())
                .unwrap();
        handshake(&mut client, &mut server);
        for suite in [
            client.negotiated_cipher_suite(),
            server.negotiated_cipher_suite(),
        ] {
            assert_eq!(
                suite.map(|suite| suite.suite()),
                Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
            );
        }
    }

    /// An in-memory handshake between `client` and `server` (an empty read would be taken for
    /// the peer's EOF, so only bytes are delivered).
    fn handshake(client: &mut rustls::ClientConnection, server: &mut rustls::ServerConnection) {
        for _ in 0..10 {
            let mut wire = Vec::new();
            client.write_tls(&mut wire).unwrap();
            if !wire.is_empty() {
                server.read_tls(&mut wire.as_slice()).unwrap();
                server.process_new_packets().unwrap();
            }
            let mut wire = Vec::new();
            server.write_tls(&mut wire).unwrap();
            if !wire.is_empty() {
                client.read_tls(&mut wire.as_slice()).unwrap();
                client.process_new_packets().unwrap();
            }
        }
        assert!(!client.is_handshaking() && !server.is_handshaking());
    }

    /// A metadata replica switches on its own protocol only: a current client (offering both)
    /// gets it; an older client (offering only the storage protocol, which it ignores) gets
    /// that one and no switch; a storage node still switches current clients on its protocol.
    #[test]
    fn a_meta_listener_switches_only_clients_that_offer_its_protocol() {
        use crate::{LOOPBACK_PLAINTEXT_ALPN, META_LOOPBACK_PLAINTEXT_ALPN};
        let (_root, gateway, storage) = gateway_and_storage();
        let loopback: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
        // The storage identity stands in for a replica's: the listener's roles do not matter here.
        let meta = storage
            .server_tls(&[Role::Gateway])
            .unwrap()
            .with_meta_loopback_plaintext();
        let node = storage
            .server_tls(&[Role::Gateway])
            .unwrap()
            .with_loopback_plaintext();
        let selected = |server_tls: &crate::ServerTls, client_config: Arc<rustls::ClientConfig>| {
            let mut client =
                rustls::ClientConnection::new(client_config, Role::Storage.server_name()).unwrap();
            let mut server =
                rustls::ServerConnection::new(server_tls.config_for(loopback, loopback)).unwrap();
            handshake(&mut client, &mut server);
            let alpn = server.alpn_protocol().map(<[u8]>::to_vec);
            (alpn.clone(), server_tls.switches(alpn.as_deref()))
        };
        let current = gateway.client_config();
        let mut older = (*current).clone();
        older.alpn_protocols = vec![LOOPBACK_PLAINTEXT_ALPN.to_vec()];
        let older = Arc::new(older);
        assert_eq!(
            selected(&meta, Arc::clone(&current)),
            (Some(META_LOOPBACK_PLAINTEXT_ALPN.to_vec()), true)
        );
        assert_eq!(
            selected(&meta, Arc::clone(&older)),
            (Some(LOOPBACK_PLAINTEXT_ALPN.to_vec()), false)
        );
        assert_eq!(
            selected(&node, current),
            (Some(LOOPBACK_PLAINTEXT_ALPN.to_vec()), true)
        );
        assert_eq!(
            selected(&node, older),
            (Some(LOOPBACK_PLAINTEXT_ALPN.to_vec()), true)
        );
        // Not loopback: nothing selected, nothing switched.
        let remote: std::net::SocketAddr = "192.0.2.7:4002".parse().unwrap();
        assert!(!meta.switches(None));
        assert!(std::ptr::eq(
            Arc::as_ptr(&meta.config_for(remote, loopback)),
            Arc::as_ptr(&meta.config)
        ));
    }

    #[test]
    fn only_a_switching_listener_on_loopback_selects_plaintext_and_clients_check_the_switch() {
        use crate::{
            LOOPBACK_PLAINTEXT_ACK, LOOPBACK_PLAINTEXT_ALPN, check_loopback_switch,
            selects_loopback_plaintext,
        };
        use std::io::Write;
        use std::net::SocketAddr;
        let (_root, gateway, storage) = gateway_and_storage();
        let loopback: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let loopback_v6: SocketAddr = "[::1]:4001".parse().unwrap();
        let remote: SocketAddr = "192.0.2.7:4002".parse().unwrap();
        let plain = storage.server_tls(&[Role::Gateway]).unwrap();
        let switching = plain.clone().with_loopback_plaintext();
        let selected = |config: std::sync::Arc<rustls::ServerConfig>| {
            let mut client =
                rustls::ClientConnection::new(gateway.client_config(), Role::Storage.server_name())
                    .unwrap();
            let mut server = rustls::ServerConnection::new(config).unwrap();
            handshake(&mut client, &mut server);
            assert_eq!(client.alpn_protocol(), server.alpn_protocol());
            (
                selects_loopback_plaintext(server.alpn_protocol()),
                client,
                server,
            )
        };
        // Selected only by a switching listener, and only for a connection loopback at both ends.
        assert!(selected(switching.config_for(loopback, loopback)).0);
        assert!(selected(switching.config_for(loopback_v6, loopback_v6)).0);
        assert!(!selected(switching.config_for(remote, loopback)).0);
        assert!(!selected(switching.config_for(loopback, remote)).0);
        assert!(!selected(plain.config_for(loopback, loopback)).0);
        // A client that offers nothing (any other TLS client) is never switched.
        let mut quiet = (*gateway.client_config()).clone();
        quiet.alpn_protocols.clear();
        let mut client =
            rustls::ClientConnection::new(std::sync::Arc::new(quiet), Role::Storage.server_name())
                .unwrap();
        let mut server =
            rustls::ServerConnection::new(switching.config_for(loopback, loopback)).unwrap();
        handshake(&mut client, &mut server);
        assert_eq!(server.alpn_protocol(), None);

        // A client whose own connection is not loopback does not offer the switch, even when
        // the server sees loopback (a port forwarded by a proxy on the server's host).
        let offered = gateway.client_config();
        assert!(std::sync::Arc::ptr_eq(
            &crate::client_config_for(&offered, loopback, loopback),
            &offered
        ));
        let forwarded = crate::client_config_for(&offered, remote, loopback);
        assert!(forwarded.alpn_protocols.is_empty());
        let mut client =
            rustls::ClientConnection::new(forwarded, Role::Storage.server_name()).unwrap();
        let mut server =
            rustls::ServerConnection::new(switching.config_for(loopback, loopback)).unwrap();
        handshake(&mut client, &mut server);
        assert_eq!(server.alpn_protocol(), None);

        // The client's checks at the switch.
        let (_, mut client, mut server) = selected(switching.config_for(loopback, loopback));
        assert_eq!(client.alpn_protocol(), Some(LOOPBACK_PLAINTEXT_ALPN));
        check_loopback_switch(LOOPBACK_PLAINTEXT_ACK, loopback, loopback, &mut client).unwrap();
        let refused = |result: std::io::Result<()>| result.unwrap_err().to_string();
        assert!(
            refused(check_loopback_switch(
                LOOPBACK_PLAINTEXT_ACK,
                remote,
                loopback,
                &mut client
            ))
            .contains("not loopback")
        );
        assert!(
            refused(check_loopback_switch(
                LOOPBACK_PLAINTEXT_ACK,
                loopback,
                remote,
                &mut client
            ))
            .contains("not loopback")
        );
        assert!(
            refused(check_loopback_switch(
                b"cairn:encrypted\n",
                loopback,
                loopback,
                &mut client
            ))
            .contains("acknowledged")
        );
        let refused_on_loopback = |client: &mut rustls::ClientConnection| {
            refused(check_loopback_switch(
                LOOPBACK_PLAINTEXT_ACK,
                loopback,
                loopback,
                client,
            ))
        };
        // Plaintext left inside TLS past the acknowledgement would be lost at the switch.
        server.writer().write_all(b"more").unwrap();
        let mut wire = Vec::new();
        server.write_tls(&mut wire).unwrap();
        client.read_tls(&mut wire.as_slice()).unwrap();
        client.process_new_packets().unwrap();
        assert!(refused_on_loopback(&mut client).contains("more than"));
        // So would a record the client still has to send.
        let (_, mut client, _) = selected(switching.config_for(loopback, loopback));
        client.writer().write_all(b"request").unwrap();
        assert!(refused_on_loopback(&mut client).contains("left to send"));
    }
}
