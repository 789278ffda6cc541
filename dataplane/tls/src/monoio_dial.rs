//! Dialling an internal server from a monoio executor (the gateway's storage and metadata
//! clients): mutual TLS, and the switch to plaintext on a loopback connection whose server
//! selects it (see the crate's header), with the client's checks.

use std::io;
use std::sync::Arc;

use monoio::io::AsyncReadRentExt;
use monoio::net::TcpStream;

use crate::{
    LOOPBACK_PLAINTEXT_ACK, Role, check_loopback_switch, client_config_for,
    selects_loopback_plaintext,
};

/// A connection to an internal server after the handshake.
pub enum Dialled {
    /// Switched to plaintext after an authenticated loopback handshake.
    Plain(TcpStream),
    Tls(Box<monoio_rustls::ClientTlsStream<TcpStream>>),
}

/// Runs the mutual-TLS handshake on `stream` with `config`, expecting a server of `role`, and
/// follows the server's switch to plaintext when it selects one on a loopback connection.
pub async fn handshake(
    stream: TcpStream,
    config: &Arc<rustls::ClientConfig>,
    role: Role,
) -> io::Result<Dialled> {
    let (local, peer) = (stream.local_addr()?, stream.peer_addr()?);
    let mut stream = monoio_rustls::TlsConnector::from(client_config_for(config, local, peer))
        .connect(role.server_name(), stream)
        .await
        .map_err(io::Error::from)?;
    if !selects_loopback_plaintext(stream.alpn_protocol().as_deref()) {
        return Ok(Dialled::Tls(Box::new(stream)));
    }
    let ack = vec![0u8; LOOPBACK_PLAINTEXT_ACK.len()];
    let (result, ack) = stream.read_exact(ack).await;
    result?;
    let (stream, mut session) = stream.into_parts();
    check_loopback_switch(&ack, local, peer, &mut session)?;
    Ok(Dialled::Plain(stream))
}
