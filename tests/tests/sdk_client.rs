//! The aws-sdk-s3 client the Rust black-box tests use against a `cairn dev` (included with
//! `#[path]` by each test file; not a test of its own): path-style, plain HTTP, the dev's root
//! keys, region us-east-1.

use aws_credential_types::Credentials;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use cairn_tests::CairnDev;

#[allow(dead_code)]
pub fn client(dev: &CairnDev) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(dev.url())
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            dev.access_key.clone(),
            dev.secret_key.clone(),
            None,
            None,
            "cairn-dev",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(config)
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
