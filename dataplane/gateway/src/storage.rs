//! Per-executor connections to storage nodes: a small pool of `AsyncStorageClient`s per node
//! (each carries one request at a time), every call under a deadline.
//!
//! Invariants: a connection that failed is dropped, never returned to the pool; a call made on
//! a pooled connection that turns out dead (the node closed it while idle) is retried once on a
//! fresh one, which is safe because shard puts and gets are idempotent.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Duration;

use cairn_common::ShardId;
use cairn_ec::PooledBuf;
use cairn_storage_client::ClientError;
use cairn_storage_client::monoio_client::AsyncStorageClient;
use monoio::buf::IoBuf;

/// Idle connections kept per node and executor.
const IDLE_CONNECTIONS_PER_NODE: usize = 16;

/// An erasure-coded piece handed to io_uring as a put body, without its trailing zero bytes.
///
/// The last stripe of an object is zero-padded to a whole stripe, so a small object's pieces are
/// mostly zeros (a 4 KiB object in 256 KiB pieces would take 1.5 MiB with 4+2). The node stores
/// the piece up to its last non-zero byte and [`StoragePool::get`] zero-extends it back to the
/// piece size: the result is byte-identical to the encoded piece, whatever the codec, and the
/// shard map's CRC32C (of the whole piece) still checks it end to end.
pub struct PieceBuf {
    piece: PooledBuf,
    stored_len_bytes: usize,
    /// CRC32C of the whole piece, as the encoder computed it.
    piece_crc32c: u32,
}

impl PieceBuf {
    /// `piece_crc32c` must be the CRC32C of all of `piece` (the encoder's).
    pub fn new(piece: PooledBuf, piece_crc32c: u32) -> Self {
        let stored_len_bytes = len_without_trailing_zeros(&piece);
        PieceBuf {
            piece,
            stored_len_bytes,
            piece_crc32c,
        }
    }

    /// CRC32C of the bytes the node stores (it verifies the body against it): the encoder's
    /// when nothing was trimmed (a full piece is not hashed a second time), else computed over
    /// the stored bytes.
    fn stored_crc32c(&self) -> u32 {
        if self.stored_len_bytes == self.piece.len() {
            self.piece_crc32c
        } else {
            crc32c::crc32c(&self.piece[..self.stored_len_bytes])
        }
    }
}

/// `bytes.len()` minus its trailing zero bytes. Every PUT scans each of its k+m pieces from the
/// end, and for a small object nearly all of each piece is zero padding, so the scan compares
/// 64-byte blocks (wide vector compares) and looks at single bytes only in the last non-zero
/// block: a byte-at-a-time scan of 6 × 256 KiB cost about a third of the gateway's CPU per 4 KiB
/// PUT (perf, `cairn-bench s3 put --size 4KiB --concurrency 32`).
fn len_without_trailing_zeros(bytes: &[u8]) -> usize {
    const BLOCK: usize = 64;
    let mut end = bytes.len();
    while end >= BLOCK {
        let block: &[u8; BLOCK] = bytes[end - BLOCK..end].try_into().expect("a whole block");
        if *block != [0u8; BLOCK] {
            break;
        }
        end -= BLOCK;
    }
    bytes[..end]
        .iter()
        .rposition(|byte| *byte != 0)
        .map_or(0, |last| last + 1)
}

// SAFETY: the bytes live in the pooled buffer's heap allocation, which does not move when the
// `PieceBuf` moves, and stay initialised and unaliased for as long as the `PieceBuf` exists.
unsafe impl IoBuf for PieceBuf {
    fn read_ptr(&self) -> *const u8 {
        self.piece.as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.stored_len_bytes
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageCallError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("storage node {0} did not answer in time")]
    Timeout(SocketAddr),
}

pub struct StoragePool {
    addresses: Vec<SocketAddr>,
    idle: RefCell<Vec<Vec<AsyncStorageClient>>>,
    timeout: Duration,
    read_timeout: Duration,
    /// Mutual TLS to the nodes (the gateway's identity); `None`: plaintext.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl StoragePool {
    /// Dials the nodes with mutual TLS (`cairn_tls::Identity::client_config`); plaintext when
    /// `None`.
    pub fn with_tls(mut self, tls: Option<std::sync::Arc<rustls::ClientConfig>>) -> Self {
        self.tls = tls;
        self
    }

    pub fn new(addresses: Vec<SocketAddr>, timeout: Duration, read_timeout: Duration) -> Self {
        let idle = RefCell::new(addresses.iter().map(|_| Vec::new()).collect());
        StoragePool {
            addresses,
            idle,
            timeout,
            read_timeout,
            tls: None,
        }
    }

    async fn checkout(&self, node: usize) -> Result<(AsyncStorageClient, bool), StorageCallError> {
        if let Some(client) = self.idle.borrow_mut()[node].pop() {
            return Ok((client, true));
        }
        let address = self.addresses[node];
        match monoio::time::timeout(
            self.timeout,
            AsyncStorageClient::connect_with_tls(address, self.tls.clone()),
        )
        .await
        {
            Ok(connected) => Ok((connected?, false)),
            Err(_) => Err(StorageCallError::Timeout(address)),
        }
    }

    fn checkin(&self, node: usize, client: AsyncStorageClient) {
        let mut idle = self.idle.borrow_mut();
        if idle[node].len() < IDLE_CONNECTIONS_PER_NODE {
            idle[node].push(client);
        }
    }

    /// Stores one piece (trimmed, see [`PieceBuf`]); gives the buffer back unless the call timed
    /// out (the cancelled operation owned it then).
    pub async fn put(
        &self,
        node: usize,
        shard_id: ShardId,
        mut piece: PieceBuf,
    ) -> (Result<(), StorageCallError>, Option<PieceBuf>) {
        let address = self.addresses[node];
        let crc32c = piece.stored_crc32c();
        for attempt in 0..2 {
            let (mut client, pooled) = match self.checkout(node).await {
                Ok(checked_out) => checked_out,
                Err(error) => return (Err(error), Some(piece)),
            };
            let Ok((result, returned)) =
                monoio::time::timeout(self.timeout, client.put(shard_id, piece, crc32c)).await
            else {
                return (Err(StorageCallError::Timeout(address)), None);
            };
            piece = returned;
            match result {
                Ok(()) => {
                    self.checkin(node, client);
                    return (Ok(()), Some(piece));
                }
                Err(ClientError::Io(_)) if pooled && attempt == 0 => continue,
                Err(error) => return (Err(error.into()), Some(piece)),
            }
        }
        unreachable!("the second attempt always returns")
    }

    /// Deletes one piece (idempotent on the node: deleting what is not there succeeds).
    pub async fn delete(&self, node: usize, shard_id: ShardId) -> Result<(), StorageCallError> {
        let address = self.addresses[node];
        for attempt in 0..2 {
            let (mut client, pooled) = self.checkout(node).await?;
            let Ok(result) = monoio::time::timeout(self.timeout, client.delete(shard_id)).await
            else {
                return Err(StorageCallError::Timeout(address));
            };
            match result {
                Ok(_existed) => {
                    self.checkin(node, client);
                    return Ok(());
                }
                Err(ClientError::Io(_)) if pooled && attempt == 0 => continue,
                Err(error) => return Err(error.into()),
            }
        }
        unreachable!("the second attempt always returns")
    }

    /// Reads one whole piece (the node checks its stored CRC32C before answering) and zero-extends
    /// it to `piece_size_bytes` (see [`PieceBuf`]). Returns the piece with the CRC32C of all its
    /// `piece_size_bytes`: the storage client's CRC of the stored bytes (it matched the node's),
    /// extended over the zeros, so the decoder need not hash the piece again.
    pub async fn get(
        &self,
        node: usize,
        shard_id: ShardId,
        piece_size_bytes: usize,
    ) -> Result<(Vec<u8>, u32), StorageCallError> {
        let address = self.addresses[node];
        for attempt in 0..2 {
            let (mut client, pooled) = self.checkout(node).await?;
            // A late piece is decoded around rather than waited for (the connection is dropped
            // with the cancelled call, so no stale answer can be read later).
            let Ok(result) =
                monoio::time::timeout(self.read_timeout, client.get_whole(shard_id)).await
            else {
                return Err(StorageCallError::Timeout(address));
            };
            match result {
                Ok((mut bytes, crc32c)) => {
                    self.checkin(node, client);
                    if bytes.len() > piece_size_bytes {
                        return Err(StorageCallError::Client(ClientError::Protocol(
                            cairn_storage_client::ProtocolError::BodyLengthMismatch {
                                expected_bytes: piece_size_bytes as u64,
                                received_bytes: bytes.len() as u64,
                            },
                        )));
                    }
                    let stored = bytes.len();
                    bytes.resize(piece_size_bytes, 0);
                    let crc32c = crc32c::crc32c_append(crc32c, &bytes[stored..]);
                    return Ok((bytes, crc32c));
                }
                Err(ClientError::Io(_)) if pooled && attempt == 0 => continue,
                Err(error) => return Err(error.into()),
            }
        }
        unreachable!("the second attempt always returns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_zeros_are_found_at_every_offset() {
        for length in [0usize, 1, 63, 64, 65, 127, 128, 129, 1000, 4096] {
            let zeros = vec![0u8; length];
            assert_eq!(len_without_trailing_zeros(&zeros), 0);
            for last in (0..length).step_by(7).chain(length.checked_sub(1)) {
                let mut bytes = vec![0u8; length];
                bytes[last] = 0x80;
                if last > 3 {
                    bytes[last - 3] = 1;
                }
                assert_eq!(
                    len_without_trailing_zeros(&bytes),
                    last + 1,
                    "length {length}, last non-zero byte at {last}"
                );
            }
        }
    }

    #[test]
    fn pieces_are_stored_without_trailing_zeros() {
        let pool = cairn_ec::BufferPool::new(4096, 4);
        let mut piece = pool.take();
        piece.fill(0);
        piece[0] = 7;
        piece[99] = 1;
        let piece_crc32c = crc32c::crc32c(&piece);
        let trimmed = PieceBuf::new(piece, piece_crc32c);
        assert_eq!(trimmed.bytes_init(), 100);
        assert_eq!(
            trimmed.stored_crc32c(),
            crc32c::crc32c(&trimmed.piece[..100])
        );

        let mut zeros = pool.take();
        zeros.fill(0);
        let zeros_crc32c = crc32c::crc32c(&zeros);
        let zeros = PieceBuf::new(zeros, zeros_crc32c);
        assert_eq!(zeros.bytes_init(), 0);
        assert_eq!(zeros.stored_crc32c(), crc32c::crc32c(&[]));

        let mut full = pool.take();
        full.fill(0);
        full[4095] = 1;
        let full_crc32c = crc32c::crc32c(&full);
        let full = PieceBuf::new(full, full_crc32c);
        assert_eq!(full.bytes_init(), 4096);
        assert_eq!(full.stored_crc32c(), full_crc32c);
    }
}
