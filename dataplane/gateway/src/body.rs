//! Request bodies, decoded while they stream: plain bodies pass through frame by frame;
//! aws-chunked bodies (signed chunks, or unsigned chunks with trailing checksums) go through
//! `AwsChunkedDecoder`, which checks every chunk signature and the trailer as bytes arrive.
//!
//! Invariant: callers see only payload bytes, and must call [`RequestBody::finish`] after the
//! last chunk and before committing anything: framing, chunk signatures and trailing checksums
//! are only known good then.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cairn_s3_proto::S3Error;
use cairn_s3_proto::chunked::{AwsChunkedDecoder, ChunkedConfig, ChunkedSummary};
use cairn_s3_proto::headers::header;
use cairn_s3_proto::sigv4::VerifiedRequest;
use http_body_util::BodyExt;
use hyper::body::Incoming;

pub struct RequestBody {
    incoming: Incoming,
    /// Wire bytes received so far (after HTTP framing, before aws-chunked decoding), shared with
    /// the request's metrics record.
    received_bytes: Arc<AtomicU64>,
    decoder: Option<AwsChunkedDecoder>,
    decoded: Vec<u8>,
    ended: bool,
}

impl RequestBody {
    pub fn new(
        incoming: Incoming,
        verified: &VerifiedRequest,
        headers: &[(&str, &str)],
        received_bytes: Arc<AtomicU64>,
    ) -> Result<Self, S3Error> {
        let config = ChunkedConfig::from_request(
            verified,
            header(headers, "x-amz-trailer"),
            header(headers, "x-amz-decoded-content-length"),
        )?;
        Ok(RequestBody {
            incoming,
            received_bytes,
            decoder: config.map(AwsChunkedDecoder::new),
            decoded: Vec::new(),
            ended: false,
        })
    }

    /// The next piece of payload, or `None` at the end of the body.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, S3Error> {
        loop {
            if self.ended {
                return Ok(None);
            }
            let frame = match self.incoming.frame().await {
                None => {
                    self.ended = true;
                    return Ok(None);
                }
                // The client went away or broke HTTP framing mid-body.
                Some(Err(_)) => return Err(S3Error::IncompleteBody),
                Some(Ok(frame)) => frame,
            };
            let Ok(data) = frame.into_data() else {
                // HTTP trailers of a plain chunked body carry nothing S3 reads here.
                continue;
            };
            self.received_bytes
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            match &mut self.decoder {
                None => {
                    if !data.is_empty() {
                        return Ok(Some(data));
                    }
                }
                Some(decoder) => {
                    decoder.push(&data, &mut self.decoded)?;
                    if !self.decoded.is_empty() {
                        return Ok(Some(Bytes::from(std::mem::take(&mut self.decoded))));
                    }
                }
            }
        }
    }

    /// Reads the whole (small) body, refusing more than `limit_bytes`.
    pub async fn read_to_end(&mut self, limit_bytes: usize) -> Result<Vec<u8>, S3Error> {
        let mut whole = Vec::new();
        while let Some(chunk) = self.next_chunk().await? {
            if whole.len() + chunk.len() > limit_bytes {
                return Err(S3Error::MaxMessageLengthExceeded);
            }
            whole.extend_from_slice(&chunk);
        }
        Ok(whole)
    }

    /// Ends the body: for aws-chunked, the framing is complete and the trailer verified.
    pub fn finish(self) -> Result<Option<ChunkedSummary>, S3Error> {
        if !self.ended {
            return Err(S3Error::IncompleteBody);
        }
        self.decoder.map(AwsChunkedDecoder::finish).transpose()
    }
}

/// Bytes decoded from stored shards (a copy source), in the frame form GET responses use.
pub type CopyFrames =
    futures::channel::mpsc::Receiver<Result<http_body::Frame<Bytes>, std::io::Error>>;

/// Where an object's bytes come from while they are encoded: the request, or a copy source.
// One value per request, created once and never copied around: boxing the request body would
// cost an allocation per PUT to save stack space nobody is short of.
#[allow(clippy::large_enum_variant)]
pub enum PayloadSource {
    Request(RequestBody),
    Copy(CopyFrames),
    /// The file of a browser-based upload (POST object).
    Form(Box<crate::post_object::FormFile>),
}

impl PayloadSource {
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, S3Error> {
        use futures::StreamExt;
        match self {
            PayloadSource::Request(body) => body.next_chunk().await,
            PayloadSource::Form(file) => file.next_chunk().await,
            PayloadSource::Copy(frames) => loop {
                match frames.next().await {
                    None => return Ok(None),
                    // The source could not be read back (too many shards lost): nothing of the
                    // copy commits.
                    Some(Err(_)) => return Err(S3Error::ServiceUnavailable),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                }
            },
        }
    }

    pub fn finish(self) -> Result<Option<ChunkedSummary>, S3Error> {
        match self {
            PayloadSource::Request(body) => body.finish(),
            PayloadSource::Copy(_) => Ok(None),
            PayloadSource::Form(file) => file.finish().map(|()| None),
        }
    }
}
