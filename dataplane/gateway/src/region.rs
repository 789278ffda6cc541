//! Regions: which region a request may be answered in.
//!
//! Model (as S3 answers it): every bucket lives in one region (its `primary_region` in the global
//! bucket service, set from CreateBucket's LocationConstraint). A gateway serves one region.
//! The signature is verified whatever region its credential scope names, and then:
//! - a request addressing an existing bucket must be signed for the bucket's region
//!   (`AuthorizationHeaderMalformed` otherwise) and, when that region is not this gateway's,
//!   is answered `301 PermanentRedirect` with `x-amz-bucket-region` (clients and the edge re-send
//!   it there). GetBucketLocation is answered in every region, as on AWS.
//! - a request addressing no bucket (ListBuckets), a CreateBucket and a request for a bucket
//!   that does not exist must be signed for this gateway's region.
//! - CreateBucket's LocationConstraint must name this gateway's region
//!   (`IllegalLocationConstraintException` for another region, `InvalidLocationConstraint` for a
//!   name that is no region); without one the bucket goes to us-east-1, so only a us-east-1
//!   gateway accepts that.
//!
//! Invariant: no handler touches a bucket's objects outside the bucket's region — object
//! metadata lives in the region's own partitions.

use cairn_meta_state::BucketRecord;
use cairn_s3_proto::S3Error;

use crate::server::RequestContext;

/// The region S3 assigns a bucket created without a LocationConstraint.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The bucket's region (an empty record field is a bucket created before regions were recorded:
/// it belongs to the region of the gateway that reads it).
pub fn bucket_region<'a>(gateway_region: &'a str, record: &'a BucketRecord) -> &'a str {
    if record.primary_region.is_empty() {
        gateway_region
    } else {
        &record.primary_region
    }
}

/// The checks for a request addressing `record` (see the module header).
pub fn check_bucket_region(
    context: &RequestContext<'_>,
    record: &BucketRecord,
) -> Result<(), S3Error> {
    let gateway_region = context.executor.shared.config.region.as_str();
    let region = bucket_region(gateway_region, record);
    if context.action == "s3:GetBucketLocation" {
        return Ok(());
    }
    check_signing_region(&context.signing_region, region)?;
    if region != gateway_region {
        return Err(S3Error::PermanentRedirect {
            region: region.to_owned(),
        });
    }
    Ok(())
}

/// The credential scope's region must be `expected`.
pub fn check_signing_region(signing_region: &str, expected: &str) -> Result<(), S3Error> {
    if signing_region == expected {
        Ok(())
    } else {
        Err(S3Error::WrongSigningRegion {
            signing_region: signing_region.to_owned(),
            expected_region: expected.to_owned(),
        })
    }
}

/// CreateBucket's LocationConstraint (`None`: absent or empty) against this gateway's region.
pub fn check_location_constraint(
    gateway_region: &str,
    location: Option<&str>,
) -> Result<(), S3Error> {
    match location {
        None if gateway_region == DEFAULT_REGION => Ok(()),
        None => Err(S3Error::IllegalLocationConstraintException(
            "unspecified".to_owned(),
        )),
        Some(location) if location == gateway_region => Ok(()),
        Some(location) if looks_like_region(location) => Err(
            S3Error::IllegalLocationConstraintException(location.to_owned()),
        ),
        Some(_) => Err(S3Error::InvalidLocationConstraint),
    }
}

/// A region name: lowercase letters, digits and inner hyphens (`us-west-2`, `local-a`).
fn looks_like_region(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_constraints_as_aws_answers_them() {
        assert_eq!(check_location_constraint("us-east-1", None), Ok(()));
        assert_eq!(
            check_location_constraint("us-west-2", None),
            Err(S3Error::IllegalLocationConstraintException(
                "unspecified".into()
            ))
        );
        assert_eq!(
            check_location_constraint("us-west-2", Some("us-west-2")),
            Ok(())
        );
        assert_eq!(
            check_location_constraint("us-west-2", Some("eu-west-1")),
            Err(S3Error::IllegalLocationConstraintException(
                "eu-west-1".into()
            ))
        );
        assert_eq!(
            check_location_constraint("us-west-2", Some("Not A Region")),
            Err(S3Error::InvalidLocationConstraint)
        );
    }

    #[test]
    fn signing_region_must_match() {
        assert_eq!(check_signing_region("us-west-2", "us-west-2"), Ok(()));
        let error = check_signing_region("us-east-1", "us-west-2").unwrap_err();
        assert_eq!(error.code(), "AuthorizationHeaderMalformed");
        assert!(error.to_string().contains("expecting 'us-west-2'"));
    }
}
