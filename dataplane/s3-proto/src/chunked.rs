//! A push-style decoder for `aws-chunked` request bodies (`Content-Encoding: aws-chunked`), the
//! framing behind the `STREAMING-*` values of `x-amz-content-sha256`:
//!
//! ```text
//! signed:    <hex size>;chunk-signature=<64 hex>\r\n<data>\r\n … 0;chunk-signature=<sig>\r\n
//!            [<trailer>:<value>\r\n … x-amz-trailer-signature:<sig>\r\n] \r\n
//! unsigned:  <hex size>\r\n<data>\r\n … 0\r\n [<trailer>:<value>\r\n …] \r\n
//! ```
//!
//! Model: the caller feeds the raw body in pieces of any size to [`AwsChunkedDecoder::push`] and
//! receives decoded payload bytes as they arrive; [`AwsChunkedDecoder::finish`] at end of body
//! checks that the framing completed and returns the verified trailing checksum.
//!
//! Invariants:
//! - Each chunk signature chains from the previous one (the first from the request's seed
//!   signature) over the SHA-256 of exactly that chunk's data, so chunks cannot be dropped,
//!   reordered or altered; the trailer signature chains from the final (empty) chunk's.
//! - Payload bytes are emitted before their chunk's signature can be checked (the signature
//!   covers the whole chunk, and buffering whole chunks would make memory client-controlled).
//!   The caller therefore must treat the body as untrusted until `finish` returns `Ok`, and must
//!   not commit the object on any error: a PUT aborts, nothing becomes visible.
//! - Header lines are bounded ([`MAX_LINE_BYTES`]); memory use is constant whatever the input.
//! - The declared trailing checksum (`x-amz-trailer`) is computed over the decoded bytes and must
//!   equal the trailer's value (`BadDigest`), and `x-amz-decoded-content-length`, when given, must
//!   equal the decoded length (`IncompleteBody`).

use sha2::{Digest, Sha256};

use crate::S3Error;
use crate::checksum::{ChecksumAlgorithm, Checksummer};
use crate::sigv4::{ChunkSigningContext, EMPTY_SHA256_HEX, hmac_sha256, signatures_equal};

/// Longest accepted chunk-header or trailer line, CRLF excluded.
pub const MAX_LINE_BYTES: usize = 4096;
/// At most this many trailer lines.
const MAX_TRAILER_LINES: usize = 16;

/// What the decoder needs to know about the request.
#[derive(Debug, Clone)]
pub struct ChunkedConfig {
    /// `Some` for `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`.
    pub signing: Option<ChunkSigningContext>,
    /// Whether a trailer section follows the final chunk (the `-TRAILER` modes).
    pub has_trailer: bool,
    /// The algorithm named by `x-amz-trailer`, if any.
    pub trailing_checksum: Option<ChecksumAlgorithm>,
    /// `x-amz-decoded-content-length`.
    pub decoded_length_bytes: Option<u64>,
}

impl ChunkedConfig {
    /// Builds the configuration from a verified request's payload mode and its headers
    /// `x-amz-trailer` and `x-amz-decoded-content-length` (raw values). `None` when the payload
    /// is not aws-chunked.
    pub fn from_request(
        verified: &crate::sigv4::VerifiedRequest,
        x_amz_trailer: Option<&str>,
        x_amz_decoded_content_length: Option<&str>,
    ) -> Result<Option<ChunkedConfig>, S3Error> {
        use crate::sigv4::PayloadMode;
        let (signing, has_trailer) = match verified.payload {
            PayloadMode::StreamingSigned { trailer } => (Some(verified.signing.clone()), trailer),
            PayloadMode::StreamingUnsignedTrailer => (None, true),
            PayloadMode::Unsigned | PayloadMode::Sha256 { .. } => return Ok(None),
        };
        let trailing_checksum = match x_amz_trailer
            .map(str::trim)
            .filter(|value| !value.is_empty())
        {
            None => None,
            Some(name) => Some(ChecksumAlgorithm::from_header_name(name).ok_or_else(|| {
                S3Error::InvalidRequest(format!(
                    "The value specified in the x-amz-trailer header is not supported: {name}"
                ))
            })?),
        };
        if trailing_checksum.is_some() && !has_trailer {
            return Err(S3Error::InvalidRequest(
                "x-amz-trailer requires a -TRAILER payload mode".to_string(),
            ));
        }
        let decoded_length_bytes = match x_amz_decoded_content_length {
            None => None,
            Some(text) => Some(
                text.trim()
                    .parse()
                    .map_err(|_| S3Error::MissingContentLength)?,
            ),
        };
        Ok(Some(ChunkedConfig {
            signing,
            has_trailer,
            trailing_checksum,
            decoded_length_bytes,
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    ChunkHeader,
    ChunkData { remaining_bytes: u64 },
    ChunkDataEnd,
    Trailer,
    FinalLine,
    Done,
}

/// The result of a complete, verified body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedSummary {
    pub decoded_length_bytes: u64,
    /// The verified trailing checksum in wire form, when the request declared one.
    pub trailing_checksum: Option<(ChecksumAlgorithm, String)>,
}

pub struct AwsChunkedDecoder {
    config: ChunkedConfig,
    state: State,
    line: Vec<u8>,
    /// Signature of the previous chunk (seed signature before the first).
    previous_signature_hex: String,
    /// Signature announced in the current chunk's header.
    chunk_signature_hex: String,
    chunk_hasher: Sha256,
    checksummer: Option<Checksummer>,
    decoded_length_bytes: u64,
    trailers: Vec<(String, String)>,
    trailer_signature_hex: Option<String>,
}

impl std::fmt::Debug for AwsChunkedDecoder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AwsChunkedDecoder")
            .field("state", &self.state)
            .field("decoded_length_bytes", &self.decoded_length_bytes)
            .finish_non_exhaustive()
    }
}

fn framing_error(message: &str) -> S3Error {
    S3Error::InvalidRequest(format!("Malformed aws-chunked body: {message}"))
}

impl AwsChunkedDecoder {
    pub fn new(config: ChunkedConfig) -> AwsChunkedDecoder {
        let previous_signature_hex = config
            .signing
            .as_ref()
            .map(|signing| signing.seed_signature_hex.clone())
            .unwrap_or_default();
        let checksummer = config.trailing_checksum.map(Checksummer::new);
        AwsChunkedDecoder {
            config,
            state: State::ChunkHeader,
            line: Vec::new(),
            previous_signature_hex,
            chunk_signature_hex: String::new(),
            chunk_hasher: Sha256::new(),
            checksummer,
            decoded_length_bytes: 0,
            trailers: Vec::new(),
            trailer_signature_hex: None,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feeds raw body bytes; appends decoded payload bytes to `output`. After an error the
    /// decoder must be discarded.
    pub fn push(&mut self, mut input: &[u8], output: &mut Vec<u8>) -> Result<(), S3Error> {
        while !input.is_empty() {
            match self.state {
                State::ChunkHeader | State::Trailer | State::FinalLine | State::ChunkDataEnd => {
                    let Some(line) = self.take_line(&mut input)? else {
                        break;
                    };
                    self.on_line(&line)?;
                }
                State::ChunkData { remaining_bytes } => {
                    let take = usize::try_from(remaining_bytes)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let (data, rest) = input.split_at(take);
                    self.on_data(data, output)?;
                    input = rest;
                    let remaining_bytes = remaining_bytes - take as u64;
                    self.state = if remaining_bytes == 0 {
                        State::ChunkDataEnd
                    } else {
                        State::ChunkData { remaining_bytes }
                    };
                }
                State::Done => return Err(framing_error("data after the final chunk")),
            }
        }
        Ok(())
    }

    /// Collects bytes up to CRLF; `Ok(None)` when the input ended first (the partial line is kept).
    fn take_line(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, S3Error> {
        match input.iter().position(|byte| *byte == b'\n') {
            Some(newline) => {
                self.line.extend_from_slice(&input[..newline]);
                *input = &input[newline + 1..];
                let mut line = std::mem::take(&mut self.line);
                if line.pop() != Some(b'\r') {
                    return Err(framing_error("line not terminated by CRLF"));
                }
                if line.len() > MAX_LINE_BYTES {
                    return Err(framing_error("line too long"));
                }
                Ok(Some(line))
            }
            None => {
                self.line.extend_from_slice(input);
                *input = &[];
                if self.line.len() > MAX_LINE_BYTES + 1 {
                    return Err(framing_error("line too long"));
                }
                Ok(None)
            }
        }
    }

    fn on_data(&mut self, data: &[u8], output: &mut Vec<u8>) -> Result<(), S3Error> {
        self.decoded_length_bytes += data.len() as u64;
        if let Some(declared) = self.config.decoded_length_bytes
            && self.decoded_length_bytes > declared
        {
            return Err(S3Error::IncompleteBody);
        }
        if self.config.signing.is_some() {
            self.chunk_hasher.update(data);
        }
        if let Some(checksummer) = &mut self.checksummer {
            checksummer.update(data);
        }
        output.extend_from_slice(data);
        Ok(())
    }

    fn on_line(&mut self, line: &[u8]) -> Result<(), S3Error> {
        let text = std::str::from_utf8(line).map_err(|_| framing_error("line is not UTF-8"))?;
        match self.state {
            State::ChunkHeader => self.on_chunk_header(text),
            State::ChunkDataEnd => {
                if !text.is_empty() {
                    return Err(framing_error("chunk data longer than its declared size"));
                }
                self.verify_chunk_signature()?;
                self.state = State::ChunkHeader;
                Ok(())
            }
            State::Trailer => self.on_trailer_line(text),
            State::FinalLine => {
                if !text.is_empty() {
                    return Err(framing_error("data after the final chunk"));
                }
                self.state = State::Done;
                Ok(())
            }
            State::ChunkData { .. } | State::Done => Err(framing_error("unexpected line")),
        }
    }

    fn on_chunk_header(&mut self, text: &str) -> Result<(), S3Error> {
        let (size_text, extensions) = text.split_once(';').unwrap_or((text, ""));
        let size_text = size_text.trim();
        if size_text.is_empty() || size_text.len() > 16 {
            return Err(framing_error("bad chunk size"));
        }
        let size_bytes =
            u64::from_str_radix(size_text, 16).map_err(|_| framing_error("bad chunk size"))?;
        if self.config.signing.is_some() {
            let signature = extensions
                .split(';')
                .find_map(|extension| extension.trim().strip_prefix("chunk-signature="))
                .ok_or_else(|| framing_error("missing chunk-signature"))?;
            self.chunk_signature_hex = signature.trim().to_string();
        }
        if size_bytes > 0 {
            self.state = State::ChunkData {
                remaining_bytes: size_bytes,
            };
            return Ok(());
        }
        // The final, empty chunk: its signature covers the empty string.
        self.verify_chunk_signature()?;
        self.state = if self.config.has_trailer {
            State::Trailer
        } else {
            State::FinalLine
        };
        Ok(())
    }

    fn verify_chunk_signature(&mut self) -> Result<(), S3Error> {
        let Some(signing) = &self.config.signing else {
            return Ok(());
        };
        let chunk_sha256_hex = hex::encode(std::mem::take(&mut self.chunk_hasher).finalize());
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256_HEX}\n{chunk_sha256_hex}",
            signing.amz_timestamp, signing.scope, self.previous_signature_hex
        );
        let computed = hex::encode(hmac_sha256(&signing.signing_key, string_to_sign.as_bytes()));
        if !signatures_equal(&computed, &self.chunk_signature_hex) {
            return Err(S3Error::SignatureDoesNotMatch);
        }
        self.previous_signature_hex = computed;
        Ok(())
    }

    fn on_trailer_line(&mut self, text: &str) -> Result<(), S3Error> {
        if text.is_empty() {
            self.verify_trailer_signature()?;
            self.state = State::Done;
            return Ok(());
        }
        let (name, value) = text.split_once(':').ok_or(S3Error::MalformedTrailerError)?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_string();
        if name == "x-amz-trailer-signature" {
            if self.config.signing.is_none() || self.trailer_signature_hex.is_some() {
                return Err(S3Error::MalformedTrailerError);
            }
            self.trailer_signature_hex = Some(value);
            return Ok(());
        }
        if self.trailer_signature_hex.is_some() || self.trailers.len() >= MAX_TRAILER_LINES {
            return Err(S3Error::MalformedTrailerError);
        }
        self.trailers.push((name, value));
        Ok(())
    }

    fn verify_trailer_signature(&mut self) -> Result<(), S3Error> {
        let Some(signing) = &self.config.signing else {
            return Ok(());
        };
        let provided = self
            .trailer_signature_hex
            .as_deref()
            .ok_or(S3Error::SignatureDoesNotMatch)?;
        // Trailer headers are signed sorted by name (names are already lowercase).
        let mut sorted_trailers: Vec<&(String, String)> = self.trailers.iter().collect();
        sorted_trailers.sort();
        let canonical_trailer: String = sorted_trailers
            .iter()
            .map(|(name, value)| format!("{name}:{value}\n"))
            .collect();
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            signing.amz_timestamp,
            signing.scope,
            self.previous_signature_hex,
            hex::encode(Sha256::digest(canonical_trailer.as_bytes()))
        );
        let computed = hex::encode(hmac_sha256(&signing.signing_key, string_to_sign.as_bytes()));
        if signatures_equal(&computed, provided) {
            Ok(())
        } else {
            Err(S3Error::SignatureDoesNotMatch)
        }
    }

    /// Ends the body: checks that the framing is complete and verifies the trailing checksum.
    pub fn finish(mut self) -> Result<ChunkedSummary, S3Error> {
        // Some clients end the body right after the trailer lines, without the closing empty
        // line; every trailer line was complete, so the body is accepted as if it had one.
        if self.state == State::Trailer && self.line.is_empty() && !self.trailers.is_empty() {
            self.verify_trailer_signature()?;
            self.state = State::Done;
        }
        if self.state == State::FinalLine && self.line.is_empty() {
            self.state = State::Done;
        }
        if self.state != State::Done {
            return Err(S3Error::IncompleteBody);
        }
        if let Some(declared) = self.config.decoded_length_bytes
            && declared != self.decoded_length_bytes
        {
            return Err(S3Error::IncompleteBody);
        }
        let trailing_checksum = match self.checksummer.take() {
            None => None,
            Some(checksummer) => {
                let algorithm = checksummer.algorithm();
                let provided = self
                    .trailers
                    .iter()
                    .find(|(name, _)| name == algorithm.header_name())
                    .map(|(_, value)| value.clone())
                    .ok_or(S3Error::MalformedTrailerError)?;
                algorithm.validate_wire_value(&provided)?;
                let computed = checksummer.finalize_base64();
                if computed != provided {
                    return Err(S3Error::BadDigest);
                }
                Some((algorithm, computed))
            }
        };
        Ok(ChunkedSummary {
            decoded_length_bytes: self.decoded_length_bytes,
            trailing_checksum,
        })
    }
}
