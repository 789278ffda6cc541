//! Hand-made TLS clients for the black-box tests that probe listeners directly: a rustls
//! configuration that trusts one CA and presents a chosen certificate (or none), and one HTTP/1.1
//! request over it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A client that trusts the CA in `trusted_ca/ca.pem` and presents the certificate and key in
/// `presented` (`cert.pem`, `key.pem`: an identity directory, of any CA), or none.
pub fn hand_made_config(trusted_ca: &Path, presented: Option<&Path>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(trusted_ca.join("ca.pem")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match presented {
        Some(dir) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(dir.join("cert.pem"))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// `GET path` (with `headers`) over TLS with `config` to `address` (certificate checked for
/// `server_name`); the response's status code, or `None` when the connection failed or ended
/// without an HTTP response (a refused handshake, a refused client certificate, a cut).
#[allow(dead_code)]
pub fn https_status(
    address: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<u16> {
    // A configuration that offers no ALPN is never switched: this is plain HTTPS.
    https_status_switching(address, config, server_name, path, headers)
        .and_then(|(_, status)| status)
}

/// [`https_status`] with a client that may be switched to plaintext after the handshake (a
/// configuration offering `cairn_tls::LOOPBACK_PLAINTEXT_ALPN`): whether the server selected the
/// switch (then the acknowledgement is read inside TLS and the request goes in plaintext), and
/// the status code. `None` when the handshake or the switch failed.
#[allow(dead_code)]
pub fn https_status_switching(
    address: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<(bool, Option<u16>)> {
    let name = ServerName::try_from(server_name.to_owned()).ok()?;
    let connection = rustls::ClientConnection::new(config, name).ok()?;
    let socket = connect(address)?;
    let mut stream = rustls::StreamOwned::new(connection, socket);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).ok()?;
    }
    let request = get_request(server_name, path, headers);
    let mut response = Vec::new();
    if !cairn_tls::selects_loopback_plaintext(stream.conn.alpn_protocol()) {
        stream.write_all(request.as_bytes()).ok()?;
        // A server that closes without close_notify (or cuts the connection) still leaves
        // what it sent in `response`.
        let _ = stream.read_to_end(&mut response);
        return Some((false, status_of(&response)));
    }
    let mut ack = [0u8; cairn_tls::LOOPBACK_PLAINTEXT_ACK.len()];
    stream.read_exact(&mut ack).ok()?;
    let rustls::StreamOwned { mut conn, mut sock } = stream;
    let (local, peer) = (sock.local_addr().ok()?, sock.peer_addr().ok()?);
    cairn_tls::check_loopback_switch(&ack, local, peer, &mut conn).ok()?;
    sock.write_all(request.as_bytes()).ok()?;
    let _ = sock.read_to_end(&mut response);
    Some((true, status_of(&response)))
}

/// `GET path` (with `headers`) over plain HTTP; the status code, or `None` without an HTTP
/// response.
#[allow(dead_code)]
pub fn http_status(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Option<u16> {
    let mut socket = connect(address)?;
    socket
        .write_all(get_request("localhost", path, headers).as_bytes())
        .ok()?;
    let mut response = Vec::new();
    let _ = socket.read_to_end(&mut response);
    status_of(&response)
}

fn connect(address: SocketAddr) -> Option<TcpStream> {
    let socket = TcpStream::connect_timeout(&address, Duration::from_secs(5)).ok()?;
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .ok()?;
    Some(socket)
}

fn get_request(host: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// The status code of an HTTP/1.1 response's first line.
pub fn status_of(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}
