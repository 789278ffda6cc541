//! Dialling an internal server over tokio-rustls (Raft and metadata RPC, the edge's gateway
//! connections): mutual TLS, and the switch to plaintext on a loopback connection whose server
//! selects it (see the crate's header), with the client's checks. The monoio counterpart is
//! [`crate::monoio_dial`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_rustls::client::TlsStream;

use crate::{
    LOOPBACK_PLAINTEXT_ACK, Role, check_loopback_switch, client_config_for,
    selects_loopback_plaintext,
};

/// A connection to an internal server after the handshake.
pub enum Dialled<S> {
    /// Switched to plaintext after an authenticated loopback handshake.
    Plain(S),
    Tls(Box<TlsStream<S>>),
}

/// Runs the mutual-TLS handshake on `stream` (a TCP connection from `local` to `peer`, or a
/// wrapper of one) with `config`, expecting a server of `role`, and follows the server's switch
/// to plaintext when it selects one on a loopback connection.
pub async fn handshake<S>(
    stream: S,
    local: SocketAddr,
    peer: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    role: Role,
) -> io::Result<Dialled<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stream = tokio_rustls::TlsConnector::from(client_config_for(config, local, peer))
        .connect(role.server_name(), stream)
        .await?;
    if !selects_loopback_plaintext(stream.get_ref().1.alpn_protocol()) {
        return Ok(Dialled::Tls(Box::new(stream)));
    }
    let mut ack = [0u8; LOOPBACK_PLAINTEXT_ACK.len()];
    stream.read_exact(&mut ack).await?;
    let (stream, mut session) = stream.into_inner();
    check_loopback_switch(&ack, local, peer, &mut session)?;
    Ok(Dialled::Plain(stream))
}
