//! Multipart upload (Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts,
//! ListMultipartUploads). The metadata commands exist (`cairn_meta_state::CreateMultipartUpload`
//! and friends); the gateway side follows the single-PUT path per part and is not written yet,
//! so every operation answers 501 NotImplemented rather than a wrong success.

use cairn_s3_proto::S3Error;

use crate::server::HttpResponse;

pub fn not_implemented_yet() -> Result<HttpResponse, S3Error> {
    Err(S3Error::NotImplemented)
}
