//! Browser-based uploads (POST object): a streaming `multipart/form-data` parser.
//!
//! Model: push-style and sans-I/O. The caller pushes the request body as it arrives and gets
//! [`FormEvent`]s back: one `Field` per form field, then, for the `file` field (S3 requires it to
//! be the last one), `FileStart`, any number of `FileData` pieces and `FileEnd`. Everything after
//! the file is ignored, as S3 ignores fields below it. The stream starts with a virtual CRLF so
//! that the first boundary line is recognised by the same delimiter (`CRLF--boundary`) as the
//! others; bytes before it (a preamble) are skipped.
//!
//! Invariants: the parser never holds more than [`MAX_PART_HEADER_BYTES`] of part headers,
//! [`MAX_FIELDS_BYTES`] of field values, and, inside the file, the last `delimiter − 1` bytes (a
//! delimiter may start there); file bytes are handed on as soon as they cannot be the start of a
//! delimiter. [`FormParser::finish`] fails unless the file ended or the closing delimiter came:
//! a truncated form is `MalformedPOSTRequest`.

use crate::S3Error;

/// The form fields that precede the file (names and values together) may take at most this
/// many bytes; S3 answers `MaxPostPreDataLengthExceededError` beyond its own limit of 20 KB.
pub const MAX_FIELDS_BYTES: usize = 20 * 1024;
/// One part's header block.
pub const MAX_PART_HEADER_BYTES: usize = 8 * 1024;
/// Boundaries are 1 to 70 characters (RFC 2046 §5.1.1).
const MAX_BOUNDARY_BYTES: usize = 70;
/// Whitespace allowed between a delimiter and its CRLF (RFC 2046 "transport padding").
const MAX_TRANSPORT_PADDING_BYTES: usize = 64;

/// The boundary of a `Content-Type: multipart/form-data; boundary=...` header. Any other media
/// type is S3's `PreconditionFailed` ("Bucket POST must be of the enclosure-type
/// multipart/form-data"); a missing or invalid boundary is `MalformedPOSTRequest`.
pub fn boundary_from_content_type(content_type: Option<&str>) -> Result<String, S3Error> {
    let content_type = content_type.unwrap_or("");
    let mut parameters = split_parameters(content_type).into_iter();
    let media_type = parameters.next().unwrap_or_default();
    if !media_type
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return Err(S3Error::PreconditionFailed);
    }
    for parameter in parameters {
        let Some((name, value)) = parameter.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("boundary") {
            let boundary = unquote(value.trim());
            if boundary.is_empty()
                || boundary.len() > MAX_BOUNDARY_BYTES
                || boundary.bytes().any(|byte| byte == b'\r' || byte == b'\n')
            {
                return Err(S3Error::MalformedPostRequest);
            }
            return Ok(boundary);
        }
    }
    Err(S3Error::MalformedPostRequest)
}

/// What the parser found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormEvent {
    /// A complete form field before the file (the name as sent; S3 compares names
    /// case-insensitively).
    Field {
        name: String,
        value: String,
    },
    /// The `file` field starts; its bytes follow as `FileData`.
    FileStart {
        /// The `filename` of its Content-Disposition (what `${filename}` stands for), if any.
        filename: Option<String>,
        content_type: Option<String>,
        /// Where the file's first byte is in the request body.
        data_offset_bytes: u64,
    },
    FileData(Vec<u8>),
    FileEnd,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Preamble,
    AfterDelimiter,
    PartHeaders,
    FieldBody {
        name: String,
    },
    FileBody,
    /// After the file (ignored fields) or after the closing delimiter (the epilogue).
    Done,
}

pub struct FormParser {
    /// `CRLF--boundary`.
    delimiter: Vec<u8>,
    buffer: Vec<u8>,
    state: State,
    /// The request-body offset of `buffer[0]` (−2 at the start: the virtual CRLF).
    buffer_offset: i64,
    fields_bytes: usize,
    /// Whether the closing delimiter or the end of the file was seen.
    complete: bool,
}

impl std::fmt::Debug for FormParser {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FormParser")
            .field("state", &self.state)
            .field("buffer_offset", &self.buffer_offset)
            .finish_non_exhaustive()
    }
}

impl FormParser {
    pub fn new(boundary: &str) -> FormParser {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        FormParser {
            delimiter,
            buffer: b"\r\n".to_vec(),
            state: State::Preamble,
            buffer_offset: -2,
            fields_bytes: 0,
            complete: false,
        }
    }

    /// The bytes a well-formed form has after the file's last byte when the file is the last
    /// field: `CRLF--boundary--CRLF`.
    pub fn closing_bytes(&self) -> u64 {
        self.delimiter.len() as u64 + 4
    }

    /// Whether the file ended (or the form closed without one).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn consume(&mut self, count: usize) {
        self.buffer.drain(..count);
        self.buffer_offset += count as i64;
    }

    /// Feeds body bytes; events are appended to `events`.
    pub fn push(&mut self, input: &[u8], events: &mut Vec<FormEvent>) -> Result<(), S3Error> {
        if self.state == State::Done {
            return Ok(());
        }
        self.buffer.extend_from_slice(input);
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Preamble => match find(&self.buffer, &self.delimiter) {
                    Some(position) => {
                        self.consume(position + self.delimiter.len());
                        self.state = State::AfterDelimiter;
                    }
                    None => {
                        let keep = self.delimiter.len() - 1;
                        if self.buffer.len() > keep {
                            self.consume(self.buffer.len() - keep);
                        }
                        self.state = State::Preamble;
                        return Ok(());
                    }
                },
                State::AfterDelimiter => {
                    let padding = self
                        .buffer
                        .iter()
                        .take_while(|byte| **byte == b' ' || **byte == b'\t')
                        .count();
                    if padding > MAX_TRANSPORT_PADDING_BYTES {
                        return Err(S3Error::MalformedPostRequest);
                    }
                    if self.buffer.len() < padding + 2 {
                        self.state = State::AfterDelimiter;
                        return Ok(());
                    }
                    match &self.buffer[padding..padding + 2] {
                        b"--" => {
                            // The closing delimiter: whatever follows is the epilogue.
                            self.consume(self.buffer.len());
                            self.complete = true;
                            return Ok(());
                        }
                        b"\r\n" => {
                            self.consume(padding + 2);
                            self.state = State::PartHeaders;
                        }
                        _ => return Err(S3Error::MalformedPostRequest),
                    }
                }
                State::PartHeaders => {
                    let header_end = if self.buffer.starts_with(b"\r\n") {
                        Some((0, 2))
                    } else {
                        find(&self.buffer, b"\r\n\r\n").map(|position| (position, position + 4))
                    };
                    let Some((headers_length, consumed)) = header_end else {
                        if self.buffer.len() > MAX_PART_HEADER_BYTES {
                            return Err(S3Error::MalformedPostRequest);
                        }
                        self.state = State::PartHeaders;
                        return Ok(());
                    };
                    if headers_length > MAX_PART_HEADER_BYTES {
                        return Err(S3Error::MalformedPostRequest);
                    }
                    let headers = std::str::from_utf8(&self.buffer[..headers_length])
                        .map_err(|_| S3Error::MalformedPostRequest)?;
                    let part = parse_part_headers(headers)?;
                    self.consume(consumed);
                    if part.name.eq_ignore_ascii_case("file") {
                        events.push(FormEvent::FileStart {
                            filename: part.filename,
                            content_type: part.content_type,
                            data_offset_bytes: self.buffer_offset.max(0) as u64,
                        });
                        self.state = State::FileBody;
                    } else {
                        self.fields_bytes += part.name.len();
                        self.state = State::FieldBody { name: part.name };
                    }
                }
                State::FieldBody { name } => match find(&self.buffer, &self.delimiter) {
                    Some(position) => {
                        self.fields_bytes += position;
                        if self.fields_bytes > MAX_FIELDS_BYTES {
                            return Err(S3Error::MaxPostPreDataLengthExceeded);
                        }
                        let value = String::from_utf8(self.buffer[..position].to_vec())
                            .map_err(|_| S3Error::MalformedPostRequest)?;
                        events.push(FormEvent::Field { name, value });
                        self.consume(position + self.delimiter.len());
                        self.state = State::AfterDelimiter;
                    }
                    None => {
                        if self.fields_bytes + self.buffer.len()
                            > MAX_FIELDS_BYTES + self.delimiter.len()
                        {
                            return Err(S3Error::MaxPostPreDataLengthExceeded);
                        }
                        self.state = State::FieldBody { name };
                        return Ok(());
                    }
                },
                State::FileBody => match find(&self.buffer, &self.delimiter) {
                    Some(position) => {
                        if position > 0 {
                            events.push(FormEvent::FileData(self.buffer[..position].to_vec()));
                        }
                        events.push(FormEvent::FileEnd);
                        self.consume(self.buffer.len());
                        self.complete = true;
                        return Ok(());
                    }
                    None => {
                        // A delimiter may start in the last `delimiter − 1` bytes: keep them.
                        let keep = self.delimiter.len() - 1;
                        if self.buffer.len() > keep {
                            let ready = self.buffer.len() - keep;
                            events.push(FormEvent::FileData(self.buffer[..ready].to_vec()));
                            self.consume(ready);
                        }
                        self.state = State::FileBody;
                        return Ok(());
                    }
                },
                State::Done => return Ok(()),
            }
        }
    }

    /// The end of the body: the form must have closed (or its file must have ended).
    pub fn finish(&self) -> Result<(), S3Error> {
        if self.complete {
            Ok(())
        } else {
            Err(S3Error::MalformedPostRequest)
        }
    }
}

/// The position of `needle` in `haystack` (searching for its first byte, then comparing).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut start = 0;
    while let Some(found) = haystack[start..].iter().position(|byte| *byte == first) {
        let at = start + found;
        if haystack.len() - at < needle.len() {
            return None;
        }
        if &haystack[at..at + needle.len()] == needle {
            return Some(at);
        }
        start = at + 1;
    }
    None
}

struct PartHeaders {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
}

fn parse_part_headers(block: &str) -> Result<PartHeaders, S3Error> {
    let mut name = None;
    let mut filename = None;
    let mut content_type = None;
    for line in block.split("\r\n").filter(|line| !line.is_empty()) {
        let (header, value) = line.split_once(':').ok_or(S3Error::MalformedPostRequest)?;
        let header = header.trim();
        if header.eq_ignore_ascii_case("content-disposition") {
            let mut parameters = split_parameters(value).into_iter();
            let disposition = parameters.next().unwrap_or_default();
            if !disposition.trim().eq_ignore_ascii_case("form-data") {
                return Err(S3Error::MalformedPostRequest);
            }
            for parameter in parameters {
                let Some((key, raw)) = parameter.split_once('=') else {
                    continue;
                };
                match key.trim().to_ascii_lowercase().as_str() {
                    "name" => name = Some(unquote(raw.trim())),
                    "filename" => filename = Some(unquote(raw.trim())),
                    _ => {}
                }
            }
        } else if header.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_owned());
        }
    }
    let name = name
        .filter(|name| !name.is_empty())
        .ok_or(S3Error::MalformedPostRequest)?;
    Ok(PartHeaders {
        name,
        filename,
        content_type,
    })
}

/// Splits `a; b="c;d"; e` at semicolons outside quoted strings.
fn split_parameters(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for character in text.chars() {
        if escaped {
            current.push(character);
            escaped = false;
            continue;
        }
        match character {
            '\\' if quoted => {
                current.push(character);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                current.push(character);
            }
            ';' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(character),
        }
    }
    parts.push(current);
    parts
}

/// A parameter value, without its quotes and backslash escapes when quoted.
fn unquote(text: &str) -> String {
    let Some(inner) = text
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return text.to_owned();
    };
    let mut value = String::with_capacity(inner.len());
    let mut escaped = false;
    for character in inner.chars() {
        if !escaped && character == '\\' {
            escaped = true;
            continue;
        }
        escaped = false;
        value.push(character);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(boundary: &str, fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        if let Some((filename, data)) = file {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: text/plain\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        body
    }

    /// Parses `body` pushed in pieces of `piece` bytes; file data pieces are joined.
    fn parse(boundary: &str, body: &[u8], piece: usize) -> Result<Vec<FormEvent>, S3Error> {
        let mut parser = FormParser::new(boundary);
        let mut events = Vec::new();
        for chunk in body.chunks(piece.max(1)) {
            parser.push(chunk, &mut events)?;
        }
        parser.finish()?;
        let mut joined: Vec<FormEvent> = Vec::new();
        for event in events {
            match (joined.last_mut(), event) {
                (Some(FormEvent::FileData(previous)), FormEvent::FileData(more)) => {
                    previous.extend_from_slice(&more)
                }
                (_, event) => joined.push(event),
            }
        }
        Ok(joined)
    }

    #[test]
    fn boundary_comes_from_the_content_type() {
        assert_eq!(
            boundary_from_content_type(Some("multipart/form-data; boundary=abc123")).unwrap(),
            "abc123"
        );
        assert_eq!(
            boundary_from_content_type(Some("Multipart/Form-Data;BOUNDARY=\"a b;c\"")).unwrap(),
            "a b;c"
        );
        assert_eq!(
            boundary_from_content_type(Some("application/x-www-form-urlencoded")),
            Err(S3Error::PreconditionFailed)
        );
        assert_eq!(
            boundary_from_content_type(None),
            Err(S3Error::PreconditionFailed)
        );
        assert_eq!(
            boundary_from_content_type(Some("multipart/form-data")),
            Err(S3Error::MalformedPostRequest)
        );
        let long = format!("multipart/form-data; boundary={}", "x".repeat(71));
        assert_eq!(
            boundary_from_content_type(Some(&long)),
            Err(S3Error::MalformedPostRequest)
        );
    }

    #[test]
    fn fields_then_file_in_any_piece_size() {
        // File data full of near-delimiters: CRLF, "--", a prefix of the boundary.
        let data: Vec<u8> = b"line one\r\n--bound\r\n--boundar\r\n-\r\nend".repeat(50);
        let body = form(
            "boundary42",
            &[("key", "user/${filename}"), ("Content-Type", "text/plain")],
            Some(("photo.txt", &data)),
        );
        let expected_offset = body.len() as u64 - data.len() as u64 - (2 + 2 + 10 + 4);
        for piece in [1, 2, 3, 7, 13, 64, 1000, body.len()] {
            let events = parse("boundary42", &body, piece).unwrap();
            assert_eq!(
                events,
                vec![
                    FormEvent::Field {
                        name: "key".into(),
                        value: "user/${filename}".into()
                    },
                    FormEvent::Field {
                        name: "Content-Type".into(),
                        value: "text/plain".into()
                    },
                    FormEvent::FileStart {
                        filename: Some("photo.txt".into()),
                        content_type: Some("text/plain".into()),
                        data_offset_bytes: expected_offset,
                    },
                    FormEvent::FileData(data.clone()),
                    FormEvent::FileEnd,
                ],
                "piece size {piece}"
            );
        }
        let parser = FormParser::new("boundary42");
        // The file's last byte is followed by exactly the closing bytes.
        assert_eq!(
            expected_offset + data.len() as u64 + parser.closing_bytes(),
            body.len() as u64
        );
    }

    #[test]
    fn an_empty_file_and_a_preamble_and_padding() {
        let mut body = b"this is a preamble\r\n".to_vec();
        body.extend_from_slice(
            b"--b  \r\ncontent-disposition: form-data; name=key\r\n\r\nk\r\n--b\r\nContent-Disposition: form-data; name=\"FILE\"\r\n\r\n\r\n--b--",
        );
        let events = parse("b", &body, 5).unwrap();
        assert_eq!(
            events,
            vec![
                FormEvent::Field {
                    name: "key".into(),
                    value: "k".into()
                },
                FormEvent::FileStart {
                    filename: None,
                    content_type: None,
                    data_offset_bytes: body.len() as u64 - 7,
                },
                FormEvent::FileEnd,
            ]
        );
    }

    #[test]
    fn fields_after_the_file_are_ignored() {
        let mut body = form("b", &[("key", "k")], Some(("a", b"data")));
        body.truncate(body.len() - b"--b--\r\n".len());
        body.extend_from_slice(
            b"--b\r\nContent-Disposition: form-data; name=\"acl\"\r\n\r\npublic-read\r\n--b--\r\n",
        );
        let events = parse("b", &body, 3).unwrap();
        assert_eq!(events.len(), 4);
        assert_eq!(events[2], FormEvent::FileData(b"data".to_vec()));
        assert_eq!(events[3], FormEvent::FileEnd);
    }

    #[test]
    fn a_form_without_a_file_closes_cleanly() {
        let body = form("b", &[("key", "k")], None);
        let events = parse("b", &body, 4).unwrap();
        assert_eq!(
            events,
            vec![FormEvent::Field {
                name: "key".into(),
                value: "k".into()
            }]
        );
    }

    #[test]
    fn truncated_and_malformed_forms_are_refused() {
        let body = form("b", &[("key", "k")], Some(("a", b"data")));
        for cut in [0, 5, 20, body.len() - 9] {
            assert_eq!(
                parse("b", &body[..cut], 3),
                Err(S3Error::MalformedPostRequest),
                "cut at {cut}"
            );
        }
        // A part without a name.
        let nameless = b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n";
        assert_eq!(
            parse("b", nameless, 100),
            Err(S3Error::MalformedPostRequest)
        );
        // Garbage after a delimiter.
        let garbage = b"--bXX\r\n";
        assert_eq!(parse("b", garbage, 100), Err(S3Error::MalformedPostRequest));
        // Invalid UTF-8 in a field value.
        let mut invalid = b"--b\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\n".to_vec();
        invalid.extend_from_slice(&[0xff, 0xfe]);
        invalid.extend_from_slice(b"\r\n--b--\r\n");
        assert_eq!(
            parse("b", &invalid, 100),
            Err(S3Error::MalformedPostRequest)
        );
    }

    #[test]
    fn oversized_fields_are_refused() {
        let big = "v".repeat(MAX_FIELDS_BYTES);
        let body = form("b", &[("x-amz-meta-a", &big)], Some(("a", b"d")));
        assert_eq!(
            parse("b", &body, 999),
            Err(S3Error::MaxPostPreDataLengthExceeded)
        );
        let headers = format!(
            "--b\r\nContent-Disposition: form-data; name=\"k\"\r\nX-Long: {}\r\n",
            "h".repeat(MAX_PART_HEADER_BYTES)
        );
        assert_eq!(
            parse("b", headers.as_bytes(), 999),
            Err(S3Error::MalformedPostRequest)
        );
    }

    #[test]
    fn file_bytes_are_released_while_streaming() {
        // Held back is at most the delimiter minus one byte.
        let mut parser = FormParser::new("bnd");
        let mut events = Vec::new();
        parser
            .push(
                b"--bnd\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n",
                &mut events,
            )
            .unwrap();
        events.clear();
        parser.push(&[7u8; 10_000], &mut events).unwrap();
        let released: usize = events
            .iter()
            .map(|event| match event {
                FormEvent::FileData(data) => data.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(released, 10_000 - ("\r\n--bnd".len() - 1));
        assert!(!parser.is_done());
        assert_eq!(parser.finish(), Err(S3Error::MalformedPostRequest));
    }
}
