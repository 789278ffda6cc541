//! POST object: browser-based uploads (`POST /bucket` with a `multipart/form-data` body).
//!
//! Model: the form's fields stream through `cairn_s3_proto::post_form::FormParser` up to the
//! `file` field (S3 requires it last). Then, before a byte of the file is stored: the form's
//! SigV4 signature over its policy is verified against the access key's secret (or, for a form
//! without policy and signature, the request stays anonymous), the policy is checked
//! (`cairn_s3_proto::post_policy`), the key gets its `${filename}`, and the form's fields become
//! the request headers of an ordinary PutObject (`Content-Type`, `x-amz-meta-*`, `acl`,
//! `tagging`, encryption, checksums, object lock). The file then streams through the same PUT
//! pipeline as PutObject ([`crate::object::put_object_from`]): authorisation as `s3:PutObject`
//! for the form's signer, PREPARE → erasure-coded pieces → COMMIT, default encryption,
//! versioning and object lock defaults.
//!
//! The PUT transaction needs the object's size before the first piece is written, and the file
//! part does not declare one. A file that ends within [`FILE_READ_AHEAD_BYTES`] is read ahead
//! and its size is exact. A larger file's size is derived from `Content-Length`: the body after
//! the file's first byte is the file and the closing `CRLF--boundary--CRLF` (the file is last);
//! the parser then checks that the file really ended there, and a form that ends otherwise (an
//! epilogue, fields after a large file) is refused (`MalformedPOSTRequest`) and stores nothing.
//!
//! Invariants: a refused POST stores nothing (every check precedes PrepareWrite, and a failure
//! while streaming aborts the write as PutObject does); at most [`FILE_READ_AHEAD_BYTES`] of the
//! file and the bounded form fields are held in memory; after a refusal the rest of the body is
//! read and dropped (up to [`REFUSED_BODY_DRAIN_BYTES`]) so the client reads the error instead of
//! a reset connection.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;
use cairn_s3_proto::S3Error;
use cairn_s3_proto::headers::parse_length;
use cairn_s3_proto::post_form::{FormEvent, FormParser, boundary_from_content_type};
use cairn_s3_proto::post_policy::{
    FormFields, SuccessAction, check_content_length, check_policy, object_headers, object_key,
    parse_policy, post_response_xml, post_signature, redirect_location, success_action,
    verify_policy_signature,
};
use cairn_s3_proto::sigv4::PayloadMode;

use crate::auth::Caller;
use crate::body::{PayloadSource, RequestBody};
use crate::server::{HttpResponse, RequestContext, empty_body, full_body, now_unix_millis};

/// A file that ends within this many bytes is read ahead whole, so its size is exact whatever
/// follows it in the form.
pub const FILE_READ_AHEAD_BYTES: usize = 1 << 20;
/// After a refusal, at most this much of the remaining body is read (and dropped) so the client
/// sees the answer; a larger remainder ends the connection.
pub const REFUSED_BODY_DRAIN_BYTES: u64 = 64 << 20;

/// The request body seen as form events.
pub struct FormReader {
    body: RequestBody,
    parser: FormParser,
    events: VecDeque<FormEvent>,
    body_ended: bool,
}

impl FormReader {
    fn new(body: RequestBody, boundary: &str) -> FormReader {
        FormReader {
            body,
            parser: FormParser::new(boundary),
            events: VecDeque::new(),
            body_ended: false,
        }
    }

    /// The next form event; `None` once the body ended after a closed form.
    async fn next_event(&mut self) -> Result<Option<FormEvent>, S3Error> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            if self.body_ended {
                return Ok(None);
            }
            match self.body.next_chunk().await? {
                Some(chunk) => {
                    let mut events = Vec::new();
                    self.parser.push(&chunk, &mut events)?;
                    self.events.extend(events);
                }
                None => {
                    self.body_ended = true;
                    self.parser.finish()?;
                }
            }
        }
    }

    /// Reads the rest of the body and drops it (what follows the file is ignored, as S3 does),
    /// reading at most `limit_bytes`.
    async fn drain(&mut self, limit_bytes: u64) -> Result<(), S3Error> {
        let mut drained_bytes = 0u64;
        while !self.body_ended && drained_bytes <= limit_bytes {
            match self.body.next_chunk().await? {
                Some(chunk) => drained_bytes += chunk.len() as u64,
                None => self.body_ended = true,
            }
        }
        Ok(())
    }
}

/// The reader, shared between the file handed to the PUT pipeline and [`store`], which drains
/// the body when the pipeline refuses the upload before reading it all. It is taken out while
/// in use (no `RefCell` borrow is held across an await).
type SharedReader = Rc<RefCell<Option<FormReader>>>;

/// The file's bytes, handed to the PUT pipeline as its payload.
pub struct FormFile {
    reader: SharedReader,
    read_ahead: VecDeque<Bytes>,
    /// The size PrepareWrite recorded (exact, or derived from Content-Length).
    expected_bytes: u64,
    delivered_bytes: u64,
    ended: bool,
}

impl FormFile {
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, S3Error> {
        if let Some(chunk) = self.read_ahead.pop_front() {
            self.delivered_bytes += chunk.len() as u64;
            return Ok(Some(chunk));
        }
        if self.ended {
            return Ok(None);
        }
        let mut reader = self
            .reader
            .borrow_mut()
            .take()
            .ok_or(S3Error::InternalError)?;
        let outcome = self.next_from(&mut reader).await;
        *self.reader.borrow_mut() = Some(reader);
        outcome
    }

    async fn next_from(&mut self, reader: &mut FormReader) -> Result<Option<Bytes>, S3Error> {
        match reader.next_event().await? {
            Some(FormEvent::FileData(data)) => {
                self.delivered_bytes += data.len() as u64;
                if self.delivered_bytes > self.expected_bytes {
                    // The form does not end right after the file: the derived size is wrong.
                    return Err(S3Error::MalformedPostRequest);
                }
                Ok(Some(Bytes::from(data)))
            }
            Some(FormEvent::FileEnd) => {
                self.ended = true;
                if self.delivered_bytes != self.expected_bytes {
                    return Err(S3Error::MalformedPostRequest);
                }
                reader.drain(u64::MAX).await?;
                Ok(None)
            }
            Some(FormEvent::Field { .. } | FormEvent::FileStart { .. }) | None => {
                Err(S3Error::MalformedPostRequest)
            }
        }
    }

    /// The file must have ended (and the body with it) before anything commits.
    pub fn finish(self) -> Result<(), S3Error> {
        let body_ended = self
            .reader
            .borrow()
            .as_ref()
            .is_some_and(|reader| reader.body_ended);
        if self.ended && body_ended {
            Ok(())
        } else {
            Err(S3Error::IncompleteBody)
        }
    }
}

/// The form's fields and the start of its file.
struct ParsedForm {
    fields: FormFields,
    filename: Option<String>,
    data_offset_bytes: u64,
}

async fn read_fields(reader: &mut FormReader) -> Result<ParsedForm, S3Error> {
    let mut fields = FormFields::default();
    loop {
        match reader.next_event().await? {
            Some(FormEvent::Field { name, value }) => fields.insert(name, value)?,
            Some(FormEvent::FileStart {
                filename,
                data_offset_bytes,
                ..
            }) => {
                return Ok(ParsedForm {
                    fields,
                    filename,
                    data_offset_bytes,
                });
            }
            Some(_) => return Err(S3Error::MalformedPostRequest),
            None => {
                return Err(S3Error::InvalidArgument(
                    "POST requires exactly one file upload per request.".to_owned(),
                ));
            }
        }
    }
}

/// Who the form speaks for: its signer (signature checked, policy checked) or, for a form
/// without policy and signature, the request's own caller (anonymous unless header-signed).
/// Returns the caller, the credential scope's region and the policy's length range.
async fn authenticate_form(
    context: &RequestContext<'_>,
    bucket: &str,
    fields: &FormFields,
) -> Result<(Caller, String, Option<(u64, u64)>), S3Error> {
    let Some(signature) = post_signature(fields)? else {
        return Ok((context.caller.clone(), context.signing_region.clone(), None));
    };
    let access_key_id = signature.credential.access_key_id.clone();
    let Some((secret, owner)) = crate::auth::lookup(context.executor, &access_key_id).await? else {
        return Err(S3Error::InvalidAccessKeyId);
    };
    let policy_base64 = fields.get("policy").unwrap_or_default();
    verify_policy_signature(&secret, &signature, policy_base64)?;
    let policy = parse_policy(policy_base64)?;
    let length_range = check_policy(&policy, fields, bucket, now_unix_millis() as i64)?;
    Ok((
        Caller {
            access_key_id,
            owner,
        },
        signature.credential.region,
        length_range,
    ))
}

/// Request headers the object write may still read (policy conditions such as `aws:Referer`,
/// CORS's `Origin`); the ones that describe the form itself or a plain PUT are left out.
fn passed_through(name: &str) -> bool {
    !(name.starts_with("x-amz-")
        || name.starts_with("if-")
        || matches!(
            name,
            "content-type"
                | "content-length"
                | "content-md5"
                | "content-encoding"
                | "transfer-encoding"
                | "authorization"
                | "expect"
        ))
}

/// The object's URL, for `Location`.
fn object_location(context: &RequestContext<'_>, bucket: &str, key: &str) -> String {
    let scheme = if context.executor.shared.config.s3_tls.is_some() {
        "https"
    } else {
        "http"
    };
    let host = context.header("host").unwrap_or("localhost");
    let encoded_key = cairn_s3_proto::encoding::uri_encode(key, true);
    if host.starts_with(&format!("{bucket}.")) {
        format!("{scheme}://{host}/{encoded_key}")
    } else {
        format!("{scheme}://{host}/{bucket}/{encoded_key}")
    }
}

pub async fn post_object(
    context: &RequestContext<'_>,
    bucket: &str,
    mut body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    let boundary = match boundary_from_content_type(context.header("content-type")) {
        Ok(boundary) => boundary,
        Err(error) => {
            drain_body(&mut body).await;
            return Err(error);
        }
    };
    let mut reader = FormReader::new(body, &boundary);
    match prepare_upload(context, bucket, &mut reader).await {
        Ok(upload) => store(context, bucket, reader, upload).await,
        Err(error) => {
            // The client may still be sending the file: read it so it gets this answer.
            let _ = reader.drain(REFUSED_BODY_DRAIN_BYTES).await;
            Err(error)
        }
    }
}

async fn drain_body(body: &mut RequestBody) {
    let mut drained_bytes = 0u64;
    while drained_bytes <= REFUSED_BODY_DRAIN_BYTES {
        match body.next_chunk().await {
            Ok(Some(chunk)) => drained_bytes += chunk.len() as u64,
            Ok(None) | Err(_) => return,
        }
    }
}

/// Everything decided before the file is stored.
struct Upload {
    caller: Caller,
    signing_region: String,
    key: String,
    headers: Vec<(String, String)>,
    success: SuccessAction,
    read_ahead: VecDeque<Bytes>,
    file_bytes: u64,
    file_ended: bool,
}

async fn prepare_upload(
    context: &RequestContext<'_>,
    bucket: &str,
    reader: &mut FormReader,
) -> Result<Upload, S3Error> {
    let declared_body_bytes = parse_length(context.header("content-length"))?;
    let form = read_fields(reader).await?;
    let (caller, signing_region, length_range) =
        authenticate_form(context, bucket, &form.fields).await?;
    let key = object_key(&form.fields, form.filename.as_deref())?;
    let mut headers = object_headers(&form.fields)?;
    let success = success_action(&form.fields);

    // Read a small file whole; know a large one's size from Content-Length.
    let mut read_ahead = VecDeque::new();
    let mut read_ahead_bytes = 0usize;
    let mut file_ended = false;
    while read_ahead_bytes <= FILE_READ_AHEAD_BYTES {
        match reader.next_event().await? {
            Some(FormEvent::FileData(data)) => {
                read_ahead_bytes += data.len();
                read_ahead.push_back(Bytes::from(data));
            }
            Some(FormEvent::FileEnd) => {
                file_ended = true;
                reader.drain(u64::MAX).await?;
                break;
            }
            _ => return Err(S3Error::MalformedPostRequest),
        }
    }
    let file_bytes = if file_ended {
        read_ahead_bytes as u64
    } else {
        let declared_body_bytes = declared_body_bytes.ok_or(S3Error::MissingContentLength)?;
        declared_body_bytes
            .checked_sub(form.data_offset_bytes)
            .and_then(|rest| rest.checked_sub(reader.parser.closing_bytes()))
            .filter(|file_bytes| *file_bytes >= read_ahead_bytes as u64)
            .ok_or(S3Error::MalformedPostRequest)?
    };
    check_content_length(length_range, file_bytes)?;
    headers.push(("content-length".to_owned(), file_bytes.to_string()));
    Ok(Upload {
        caller,
        signing_region,
        key,
        headers,
        success,
        read_ahead,
        file_bytes,
        file_ended,
    })
}

async fn store(
    context: &RequestContext<'_>,
    bucket: &str,
    reader: FormReader,
    upload: Upload,
) -> Result<HttpResponse, S3Error> {
    let mut header_pairs: Vec<(&str, &str)> = context
        .headers
        .iter()
        .filter(|(name, _)| passed_through(&name.to_ascii_lowercase()))
        .copied()
        .collect();
    header_pairs.extend(
        upload
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    let put_context = RequestContext {
        executor: context.executor,
        request_id: context.request_id,
        caller: upload.caller.clone(),
        headers: &header_pairs,
        is_head: false,
        resource: context.resource,
        payload: PayloadMode::Unsigned,
        action: "s3:PutObject",
        object_key: Some(upload.key.clone()),
        raw_query: context.raw_query,
        peer: context.peer,
        signing_region: upload.signing_region.clone(),
    };
    let shared_reader: SharedReader = Rc::new(RefCell::new(Some(reader)));
    let file = FormFile {
        reader: Rc::clone(&shared_reader),
        read_ahead: upload.read_ahead,
        expected_bytes: upload.file_bytes,
        delivered_bytes: 0,
        ended: upload.file_ended,
    };
    let stored = match crate::object::put_object_from(
        &put_context,
        bucket,
        &upload.key,
        PayloadSource::Form(Box::new(file)),
    )
    .await
    {
        Ok(stored) => stored,
        Err(error) => {
            // Refused before the file was read (authorisation, headers) or while reading it:
            // let the client finish sending so it reads this answer.
            let reader = shared_reader.borrow_mut().take();
            if let Some(mut reader) = reader {
                let _ = reader.drain(REFUSED_BODY_DRAIN_BYTES).await;
            }
            return Err(error);
        }
    };
    let (mut parts, _) = stored.into_parts();
    let etag = parts
        .headers
        .get("etag")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let location = object_location(context, bucket, &upload.key);
    // A redirect URL that cannot be a header value is ignored, as S3 ignores invalid ones.
    let redirect = match &upload.success {
        SuccessAction::Redirect(url) => {
            http::HeaderValue::from_str(&redirect_location(url, bucket, &upload.key, &etag)).ok()
        }
        SuccessAction::Status(_) => None,
    };
    let status = match upload.success {
        SuccessAction::Status(status) => status,
        SuccessAction::Redirect(_) => 204,
    };
    let body = match redirect {
        Some(target) => {
            parts.status = http::StatusCode::SEE_OTHER;
            parts.headers.insert(http::header::LOCATION, target);
            empty_body()
        }
        None => {
            parts.status =
                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::NO_CONTENT);
            if let Ok(value) = http::HeaderValue::from_str(&location) {
                parts.headers.insert(http::header::LOCATION, value);
            }
            if status == 201 {
                parts.headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/xml"),
                );
                full_body(post_response_xml(&location, bucket, &upload.key, &etag))
            } else {
                empty_body()
            }
        }
    };
    Ok(http::Response::from_parts(parts, body))
}
