//! CORS: Put/Get/DeleteBucketCors, preflight `OPTIONS` on bucket and object paths, and the CORS
//! headers of actual requests that carry an `Origin`.
//!
//! Model: the rules are the bucket attribute [`CORS_ATTRIBUTE`] (the canonical
//! `CORSConfiguration` document). A preflight is answered without authentication, as S3 does:
//! 200 with the `Access-Control-*` headers of the first matching rule, 403 `AccessForbidden`
//! when the bucket has no configuration or no rule matches, 400 without `Origin` or
//! `Access-Control-Request-Method`. An actual request with an `Origin` gets the same headers on
//! a successful response when a rule matches its method (one extra bucket read per such request).

use cairn_meta_state::BucketRecord;
use cairn_s3_proto::S3Error;
use cairn_s3_proto::cors::{
    CorsGrant, cors_configuration_xml, decode_stored_rules, encode_stored_rules, match_rule,
    parse_cors_configuration,
};

use crate::body::RequestBody;
use crate::bucket::write_bucket_attribute;
use crate::bucket::{owned_bucket, read_bucket, read_verified_document};
use crate::server::{HttpResponse, RequestContext, empty_body, xml_response};

/// The attribute name of a bucket's CORS configuration.
pub const CORS_ATTRIBUTE: &str = "cors";

fn grant_for(
    record: &BucketRecord,
    origin: &str,
    method: &str,
    request_headers: Option<&str>,
) -> Result<Option<CorsGrant>, S3Error> {
    let Some(stored) = record.attributes.get(CORS_ATTRIBUTE) else {
        return Ok(None);
    };
    let rules = decode_stored_rules(stored).inspect_err(|_| {
        tracing::error!(bucket = %record.name, "stored CORS configuration does not parse");
    })?;
    Ok(match_rule(&rules, origin, method, request_headers))
}

fn insert_grant(response: &mut HttpResponse, grant: &CorsGrant, preflight: bool) {
    let headers = response.headers_mut();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = http::HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put("access-control-allow-origin", &grant.allow_origin);
    put("access-control-allow-methods", &grant.allow_methods);
    if let Some(expose) = &grant.expose_headers {
        put("access-control-expose-headers", expose);
    }
    if preflight {
        if let Some(allowed) = &grant.allow_headers {
            put("access-control-allow-headers", allowed);
        }
        if let Some(seconds) = grant.max_age_seconds {
            put("access-control-max-age", &seconds.to_string());
        }
    }
    if grant.allow_origin != "*" {
        put(
            "vary",
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
        );
    }
}

pub async fn preflight(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    let origin = context.header("origin").ok_or_else(|| {
        S3Error::BadRequest("Insufficient information. Origin request header needed.".to_owned())
    })?;
    let method = context
        .header("access-control-request-method")
        .ok_or_else(|| {
            S3Error::BadRequest("Invalid Access-Control-Request-Method: null".to_owned())
        })?;
    let record = read_bucket(context, bucket).await?;
    if !record.attributes.contains_key(CORS_ATTRIBUTE) {
        return Err(S3Error::AccessForbidden(
            "CORSResponse: CORS is not enabled for this bucket.".to_owned(),
        ));
    }
    let grant = grant_for(
        &record,
        origin,
        method,
        context.header("access-control-request-headers"),
    )?
    .ok_or_else(|| {
        S3Error::AccessForbidden(
            "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.".to_owned(),
        )
    })?;
    let mut response = http::Response::builder()
        .status(http::StatusCode::OK)
        .body(empty_body())
        .expect("static headers are valid");
    insert_grant(&mut response, &grant, true);
    Ok(response)
}

/// Adds CORS headers to the successful response of an actual request with an `Origin`.
pub(crate) async fn decorate(
    context: &RequestContext<'_>,
    bucket: &str,
    method: &str,
    response: &mut HttpResponse,
) {
    let Some(origin) = context.header("origin") else {
        return;
    };
    let Ok(record) = read_bucket(context, bucket).await else {
        return;
    };
    if let Ok(Some(grant)) = grant_for(&record, origin, method, None) {
        insert_grant(response, &grant, false);
    }
}

pub async fn get_bucket_cors(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    let stored = record
        .attributes
        .get(CORS_ATTRIBUTE)
        .ok_or(S3Error::NoSuchCorsConfiguration)?;
    Ok(xml_response(cors_configuration_xml(&decode_stored_rules(
        stored,
    )?)))
}

pub async fn put_bucket_cors(
    context: &RequestContext<'_>,
    bucket: &str,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    let document = read_verified_document(context, body).await?;
    let rules = parse_cors_configuration(&document)?;
    write_bucket_attribute(
        context,
        bucket,
        CORS_ATTRIBUTE,
        Some(encode_stored_rules(&rules)),
        http::StatusCode::OK,
    )
    .await
}

pub async fn delete_bucket_cors(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    crate::bucket::delete_bucket_attribute(context, bucket, CORS_ATTRIBUTE).await
}
