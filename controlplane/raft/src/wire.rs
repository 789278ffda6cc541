//! Raft RPC framing: a flatbuffers [`Envelope`] per frame, length-prefixed on a TCP stream.
//!
//! # Model
//!
//! A frame is a 4-byte little-endian body length followed by one flatbuffers `Envelope`
//! (`schema/raft.fbs`, format version [`WIRE_FORMAT_VERSION`]). A connection carries one request
//! at a time in each direction: the caller writes a request and reads exactly one response with
//! the same `request_id`; concurrency comes from more connections, not from multiplexing. Every
//! envelope names its group, so one listener serves every group of a process.
//!
//! The payload is opaque to the envelope: openraft's RPC types as postcard, the meta-state
//! `Command`/`Output` in their own versioned record encoding (see the schema's comment).
//!
//! # Invariants
//!
//! - A frame longer than [`MAX_FRAME_BYTES`] is refused on both ends before any allocation of
//!   that size, so a corrupt length cannot exhaust memory.
//! - An envelope whose `format_version` is not [`WIRE_FORMAT_VERSION`] is refused.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::generated::cairn::raft as fb;
use crate::types::GroupId;

/// Version of the envelope layout and of the payload conventions in the schema comment.
pub const WIRE_FORMAT_VERSION: u8 = 1;

/// Largest frame accepted. Snapshot chunks (openraft's `snapshot_max_chunk_size`, 3 MiB by
/// default) and append batches must fit well inside it.
pub const MAX_FRAME_BYTES: usize = 64 << 20;

/// What an envelope asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    AppendEntries,
    Vote,
    InstallSnapshot,
    ClientWrite,
    ClientRead,
    /// Several commands for one group in one request, each its own log entry.
    ClientWriteBatch,
}

/// How a request ended (always `Ok` on requests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    ForwardToLeader,
    UnknownGroup,
    BadRequest,
    Unavailable,
    ApiError,
}

/// Errors decoding a frame.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("frame of {length_bytes} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    FrameTooLarge { length_bytes: usize },
    #[error("invalid envelope: {0}")]
    Invalid(String),
    #[error("unsupported envelope format version {0}")]
    UnsupportedVersion(u8),
    #[error("unknown {what} {value}")]
    UnknownEnum { what: &'static str, value: u8 },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// One message, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub request_id: u64,
    pub group_id: GroupId,
    pub kind: MessageKind,
    pub status: Status,
    pub payload: Vec<u8>,
    /// With `ForwardToLeader`: the leader's node id, 0 when unknown.
    pub leader_id: u64,
    /// With `ForwardToLeader`: the leader's RPC address, empty when unknown.
    pub leader_address: String,
    pub error_message: String,
}

impl MessageKind {
    fn to_flatbuffers(self) -> fb::MessageKind {
        match self {
            MessageKind::AppendEntries => fb::MessageKind::AppendEntries,
            MessageKind::Vote => fb::MessageKind::Vote,
            MessageKind::InstallSnapshot => fb::MessageKind::InstallSnapshot,
            MessageKind::ClientWrite => fb::MessageKind::ClientWrite,
            MessageKind::ClientRead => fb::MessageKind::ClientRead,
            MessageKind::ClientWriteBatch => fb::MessageKind::ClientWriteBatch,
        }
    }

    fn from_flatbuffers(kind: fb::MessageKind) -> Result<Self, WireError> {
        Ok(match kind {
            fb::MessageKind::AppendEntries => MessageKind::AppendEntries,
            fb::MessageKind::Vote => MessageKind::Vote,
            fb::MessageKind::InstallSnapshot => MessageKind::InstallSnapshot,
            fb::MessageKind::ClientWrite => MessageKind::ClientWrite,
            fb::MessageKind::ClientRead => MessageKind::ClientRead,
            fb::MessageKind::ClientWriteBatch => MessageKind::ClientWriteBatch,
            other => {
                return Err(WireError::UnknownEnum {
                    what: "message kind",
                    value: other.0,
                });
            }
        })
    }
}

impl Status {
    fn to_flatbuffers(self) -> fb::Status {
        match self {
            Status::Ok => fb::Status::Ok,
            Status::ForwardToLeader => fb::Status::ForwardToLeader,
            Status::UnknownGroup => fb::Status::UnknownGroup,
            Status::BadRequest => fb::Status::BadRequest,
            Status::Unavailable => fb::Status::Unavailable,
            Status::ApiError => fb::Status::ApiError,
        }
    }

    fn from_flatbuffers(status: fb::Status) -> Result<Self, WireError> {
        Ok(match status {
            fb::Status::Ok => Status::Ok,
            fb::Status::ForwardToLeader => Status::ForwardToLeader,
            fb::Status::UnknownGroup => Status::UnknownGroup,
            fb::Status::BadRequest => Status::BadRequest,
            fb::Status::Unavailable => Status::Unavailable,
            fb::Status::ApiError => Status::ApiError,
            other => {
                return Err(WireError::UnknownEnum {
                    what: "status",
                    value: other.0,
                });
            }
        })
    }
}

impl Envelope {
    /// A request envelope (status `Ok`, no leader hint).
    pub fn request(group_id: GroupId, kind: MessageKind, payload: Vec<u8>) -> Envelope {
        Envelope {
            request_id: 0,
            group_id,
            kind,
            status: Status::Ok,
            payload,
            leader_id: 0,
            leader_address: String::new(),
            error_message: String::new(),
        }
    }

    /// A response to `request` with `status` and `payload`.
    pub fn response_to(request: &Envelope, status: Status, payload: Vec<u8>) -> Envelope {
        Envelope {
            request_id: request.request_id,
            group_id: request.group_id,
            kind: request.kind,
            status,
            payload,
            leader_id: 0,
            leader_address: String::new(),
            error_message: String::new(),
        }
    }

    /// The flatbuffers body (without the length prefix).
    pub fn encode(&self) -> Vec<u8> {
        let mut builder = flatbuffers::FlatBufferBuilder::with_capacity(self.payload.len() + 128);
        let payload = builder.create_vector(&self.payload);
        let leader_address = builder.create_string(&self.leader_address);
        let error_message = builder.create_string(&self.error_message);
        let root = fb::Envelope::create(
            &mut builder,
            &fb::EnvelopeArgs {
                format_version: WIRE_FORMAT_VERSION,
                request_id: self.request_id,
                group_id: self.group_id.0,
                kind: self.kind.to_flatbuffers(),
                status: self.status.to_flatbuffers(),
                payload: Some(payload),
                leader_id: self.leader_id,
                leader_address: Some(leader_address),
                error_message: Some(error_message),
            },
        );
        builder.finish(root, None);
        builder.finished_data().to_vec()
    }

    /// Decodes a flatbuffers body (without the length prefix).
    pub fn decode(body: &[u8]) -> Result<Envelope, WireError> {
        let envelope =
            fb::root_as_envelope(body).map_err(|error| WireError::Invalid(error.to_string()))?;
        if envelope.format_version() != WIRE_FORMAT_VERSION {
            return Err(WireError::UnsupportedVersion(envelope.format_version()));
        }
        Ok(Envelope {
            request_id: envelope.request_id(),
            group_id: GroupId(envelope.group_id()),
            kind: MessageKind::from_flatbuffers(envelope.kind())?,
            status: Status::from_flatbuffers(envelope.status())?,
            payload: envelope
                .payload()
                .map(|payload| payload.bytes().to_vec())
                .unwrap_or_default(),
            leader_id: envelope.leader_id(),
            leader_address: envelope.leader_address().unwrap_or_default().to_owned(),
            error_message: envelope.error_message().unwrap_or_default().to_owned(),
        })
    }
}

/// One frame: the envelope's length as a little-endian u32, then the envelope.
pub fn encode_frame(envelope: &Envelope) -> Result<Vec<u8>, WireError> {
    let body = envelope.encode();
    if body.len() > MAX_FRAME_BYTES {
        return Err(WireError::FrameTooLarge {
            length_bytes: body.len(),
        });
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// The envelope length a frame's 4-byte prefix announces, refused past [`MAX_FRAME_BYTES`].
pub fn frame_length(prefix: [u8; 4]) -> Result<usize, WireError> {
    let length_bytes = u32::from_le_bytes(prefix) as usize;
    if length_bytes > MAX_FRAME_BYTES {
        return Err(WireError::FrameTooLarge { length_bytes });
    }
    Ok(length_bytes)
}

/// Writes one frame (length prefix + envelope) and flushes.
pub async fn write_envelope<W>(writer: &mut W, envelope: &Envelope) -> Result<(), WireError>
where
    W: AsyncWriteExt + Unpin,
{
    let frame = encode_frame(envelope)?;
    writer.write_all(&frame).await?;
    writer.flush().await?;
    Ok(())
}

/// Reads one frame. `Ok(None)` on a clean end of stream before the frame began.
pub async fn read_envelope<R>(reader: &mut R) -> Result<Option<Envelope>, WireError>
where
    R: AsyncReadExt + Unpin,
{
    let mut length_prefix = [0u8; 4];
    match reader.read_exact(&mut length_prefix).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error.into()),
    }
    let length_bytes = frame_length(length_prefix)?;
    let mut body = vec![0u8; length_bytes];
    reader.read_exact(&mut body).await?;
    Envelope::decode(&body).map(Some)
}

/// The payload of a ClientWriteBatch request: a u32 count, then each item as a u32 length and
/// its bytes (the command's record encoding). See the schema comment.
pub fn encode_batch<'a>(items: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for item in items {
        payload.extend_from_slice(&(item.len() as u32).to_le_bytes());
        payload.extend_from_slice(item);
    }
    payload
}

/// Reads a little-endian u32 at `*offset` and advances it.
fn read_u32(payload: &[u8], offset: &mut usize) -> Result<u32, WireError> {
    let bytes = payload
        .get(*offset..*offset + 4)
        .ok_or_else(|| WireError::Invalid("batch ends inside a length".to_owned()))?;
    *offset += 4;
    Ok(u32::from_le_bytes(bytes.try_into().expect("four bytes")))
}

/// Reads `length` bytes at `*offset` and advances it.
fn read_bytes<'a>(
    payload: &'a [u8],
    offset: &mut usize,
    length: usize,
) -> Result<&'a [u8], WireError> {
    let bytes = payload
        .get(*offset..*offset + length)
        .ok_or_else(|| WireError::Invalid("batch item longer than the payload".to_owned()))?;
    *offset += length;
    Ok(bytes)
}

/// Splits a ClientWriteBatch request payload into its items.
pub fn decode_batch(payload: &[u8]) -> Result<Vec<&[u8]>, WireError> {
    let mut offset = 0;
    let count = read_u32(payload, &mut offset)? as usize;
    // Every item takes at least its 4-byte length: a larger count is garbage, refused before
    // allocating for it.
    if count > payload.len() / 4 {
        return Err(WireError::Invalid(format!(
            "batch of {count} items in {} bytes",
            payload.len()
        )));
    }
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let length = read_u32(payload, &mut offset)? as usize;
        items.push(read_bytes(payload, &mut offset, length)?);
    }
    if offset != payload.len() {
        return Err(WireError::Invalid(
            "bytes after the last batch item".to_owned(),
        ));
    }
    Ok(items)
}

/// The payload of a ClientWriteBatch response: per command its encoded `Output`, or why it was
/// not applied.
pub fn encode_batch_answers(answers: &[Result<Vec<u8>, String>]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&(answers.len() as u32).to_le_bytes());
    for answer in answers {
        let (tag, bytes) = match answer {
            Ok(output) => (0u8, output.as_slice()),
            Err(message) => (1u8, message.as_bytes()),
        };
        payload.push(tag);
        payload.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        payload.extend_from_slice(bytes);
    }
    payload
}

/// Reads a ClientWriteBatch response payload.
pub fn decode_batch_answers(payload: &[u8]) -> Result<Vec<Result<Vec<u8>, String>>, WireError> {
    let mut offset = 0;
    let count = read_u32(payload, &mut offset)? as usize;
    if count > payload.len() / 5 {
        return Err(WireError::Invalid(format!(
            "{count} answers in {} bytes",
            payload.len()
        )));
    }
    let mut answers = Vec::with_capacity(count);
    for _ in 0..count {
        let tag = read_bytes(payload, &mut offset, 1)?[0];
        let length = read_u32(payload, &mut offset)? as usize;
        let bytes = read_bytes(payload, &mut offset, length)?;
        answers.push(match tag {
            0 => Ok(bytes.to_vec()),
            1 => Err(String::from_utf8_lossy(bytes).into_owned()),
            other => {
                return Err(WireError::UnknownEnum {
                    what: "batch answer",
                    value: other,
                });
            }
        });
    }
    if offset != payload.len() {
        return Err(WireError::Invalid(
            "bytes after the last batch answer".to_owned(),
        ));
    }
    Ok(answers)
}

/// Serialises an openraft value for a payload.
pub fn to_payload<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // openraft's RPC types are plain serde structs and enums; postcard cannot fail on them.
    postcard::to_stdvec(value).expect("openraft RPC types serialise with postcard")
}

/// Deserialises an openraft value from a payload.
pub fn from_payload<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, WireError> {
    postcard::from_bytes(payload).map_err(|error| WireError::Invalid(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips() {
        let envelope = Envelope {
            request_id: 7,
            group_id: GroupId(3),
            kind: MessageKind::ClientWrite,
            status: Status::ForwardToLeader,
            payload: vec![1, 2, 3],
            leader_id: 2,
            leader_address: "127.0.0.1:9000".to_owned(),
            error_message: "not leader".to_owned(),
        };
        assert_eq!(Envelope::decode(&envelope.encode()).unwrap(), envelope);
    }

    /// Golden bytes of one request envelope. A failure means the wire layout changed: bump
    /// WIRE_FORMAT_VERSION and keep decoding the old one instead of updating the string.
    #[test]
    fn envelope_matches_golden_bytes() {
        let mut envelope = Envelope::request(GroupId(2), MessageKind::Vote, vec![0xab, 0xcd]);
        envelope.request_id = 9;
        let hex: String = envelope
            .encode()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(
            hex,
            "1c000000000016002400060014001c0007000000080000000c00100016000000000001012c000000\
             2000000014000000090000000000000002000000000000000000000000000000000000000000000002\
             000000abcd0000"
        );
    }

    #[test]
    fn garbage_and_wrong_version_are_refused() {
        assert!(Envelope::decode(&[0xff; 3]).is_err());
        let mut builder = flatbuffers::FlatBufferBuilder::new();
        let root = fb::Envelope::create(
            &mut builder,
            &fb::EnvelopeArgs {
                format_version: WIRE_FORMAT_VERSION + 1,
                ..Default::default()
            },
        );
        builder.finish(root, None);
        assert!(matches!(
            Envelope::decode(builder.finished_data()),
            Err(WireError::UnsupportedVersion(_))
        ));
    }

    #[test]
    fn batches_round_trip_and_garbage_is_refused() {
        let items: Vec<Vec<u8>> = vec![vec![1, 2, 3], Vec::new(), vec![9; 300]];
        let payload = encode_batch(items.iter().map(Vec::as_slice));
        let decoded = decode_batch(&payload).unwrap();
        assert_eq!(decoded, items.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let answers = vec![
            Ok(vec![7, 7]),
            Err("not applied".to_owned()),
            Ok(Vec::new()),
        ];
        assert_eq!(
            decode_batch_answers(&encode_batch_answers(&answers)).unwrap(),
            answers
        );
        for garbage in [
            &[][..],
            &[1, 0, 0][..],
            &[0xff, 0xff, 0xff, 0xff][..],
            &[1, 0, 0, 0, 9, 0, 0, 0, 1][..],
            &[0, 0, 0, 0, 1][..],
        ] {
            assert!(decode_batch(garbage).is_err(), "{garbage:?}");
            assert!(decode_batch_answers(garbage).is_err(), "{garbage:?}");
        }
        assert!(decode_batch_answers(&[1, 0, 0, 0, 2, 0, 0, 0, 0]).is_err());
    }

    #[tokio::test]
    async fn oversized_length_prefix_is_refused_before_allocation() {
        let mut frame: &[u8] = &((MAX_FRAME_BYTES as u32) + 1).to_le_bytes();
        assert!(matches!(
            read_envelope(&mut frame).await,
            Err(WireError::FrameTooLarge { .. })
        ));
    }
}
