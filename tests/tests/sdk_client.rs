//! The aws-sdk-s3 client the Rust black-box tests use against a `cairn dev` (included with
//! `#[path]` by each test file; not a test of its own): path-style, plain HTTP, the dev's root
//! keys, region us-east-1.

use aws_credential_types::Credentials;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use cairn_tests::CairnDev;

#[allow(dead_code)]
pub fn client(dev: &CairnDev) -> Client {
    client_with_keys(dev, &dev.access_key, &dev.secret_key)
}

/// A client of the same dev signing with other keys (a user's).
#[allow(dead_code)]
pub fn client_with_keys(dev: &CairnDev, access_key: &str, secret_key: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(dev.url())
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            access_key.to_owned(),
            secret_key.to_owned(),
            None,
            None,
            "cairn-user",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(config)
}

/// The S3 error code and HTTP status of a failed SDK call.
#[allow(dead_code)]
pub fn code_and_status<E>(
    error: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> (String, u16)
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    use aws_sdk_s3::error::ProvideErrorMetadata;
    let code = error.code().unwrap_or("").to_owned();
    let status = error
        .raw_response()
        .map_or(0, |response| response.status().as_u16());
    (code, status)
}

/// Creates `bucket` with versioning enabled.
#[allow(dead_code)]
pub async fn create_versioned_bucket(s3: &Client, bucket: &str) {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
}
