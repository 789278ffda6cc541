//! Black-box tests of object lock and bucket default encryption against `cairn dev` (issue 11):
//! boto3 (tests/python/s3_object_lock.py, s3_bucket_encryption.py) and aws-sdk-s3 for the
//! documented object lock cases (governance bypass allowed and denied, compliance cannot be
//! shortened, legal hold blocks delete, default retention applied).

#[path = "sdk_client.rs"]
mod sdk_client;

use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockLegalHold,
    ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode,
    ObjectLockRule, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use cairn_tests::{CairnDev, run_python_script};
use sdk_client::code_and_status;

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn in_future(offset: Duration) -> DateTime {
    DateTime::from(SystemTime::now() + offset)
}

async fn put_version(s3: &Client, bucket: &str, key: &str) -> String {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(b"sdk locked"))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned()
}

async fn delete_version(
    s3: &Client,
    bucket: &str,
    key: &str,
    version_id: &str,
    bypass: bool,
) -> Result<(), (String, u16)> {
    let mut request = s3
        .delete_object()
        .bucket(bucket)
        .key(key)
        .version_id(version_id);
    if bypass {
        request = request.bypass_governance_retention(true);
    }
    request
        .send()
        .await
        .map(|_| ())
        .map_err(|error| code_and_status(&error))
}

fn denied() -> Result<(), (String, u16)> {
    Err(("AccessDenied".to_owned(), 403))
}

async fn sdk_object_lock(s3: &Client) {
    let bucket = "sdk-locked";
    s3.create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();

    // GOVERNANCE: the owner may bypass; a policy denying the bypass takes that away.
    let version = put_version(s3, bucket, "governed").await;
    s3.put_object_retention()
        .bucket(bucket)
        .key("governed")
        .version_id(&version)
        .retention(
            ObjectLockRetention::builder()
                .mode(ObjectLockRetentionMode::Governance)
                .retain_until_date(in_future(DAY))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        delete_version(s3, bucket, "governed", &version, false).await,
        denied()
    );
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Principal":"*","Action":"s3:BypassGovernanceRetention","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    );
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .unwrap();
    assert_eq!(
        delete_version(s3, bucket, "governed", &version, true).await,
        denied()
    );
    s3.delete_bucket_policy()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    delete_version(s3, bucket, "governed", &version, true)
        .await
        .unwrap();

    // COMPLIANCE: extended, never shortened, even with the bypass.
    let version = put_version(s3, bucket, "compliant").await;
    let set_retention = |days: u32, bypass: bool| {
        let mut request = s3
            .put_object_retention()
            .bucket(bucket)
            .key("compliant")
            .version_id(&version)
            .retention(
                ObjectLockRetention::builder()
                    .mode(ObjectLockRetentionMode::Compliance)
                    .retain_until_date(in_future(DAY * days))
                    .build(),
            );
        if bypass {
            request = request.bypass_governance_retention(true);
        }
        request.send()
    };
    set_retention(2, false).await.unwrap();
    set_retention(3, false).await.unwrap();
    let error = set_retention(1, true).await.unwrap_err();
    assert_eq!(code_and_status(&error), ("AccessDenied".to_owned(), 403));
    let retention = s3
        .get_object_retention()
        .bucket(bucket)
        .key("compliant")
        .send()
        .await
        .unwrap();
    let retention = retention.retention().unwrap();
    assert_eq!(retention.mode(), Some(&ObjectLockRetentionMode::Compliance));
    let until = retention.retain_until_date().unwrap().secs();
    let expected = in_future(DAY * 3).secs();
    assert!((until - expected).abs() < 300, "{until} vs {expected}");
    assert_eq!(
        delete_version(s3, bucket, "compliant", &version, true).await,
        denied()
    );

    // Legal hold blocks deletion until it is turned off.
    let version = put_version(s3, bucket, "held").await;
    let set_hold = |status: ObjectLockLegalHoldStatus| {
        s3.put_object_legal_hold()
            .bucket(bucket)
            .key("held")
            .version_id(&version)
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            .send()
    };
    set_hold(ObjectLockLegalHoldStatus::On).await.unwrap();
    let head = s3
        .head_object()
        .bucket(bucket)
        .key("held")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.object_lock_legal_hold_status(),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    assert_eq!(
        delete_version(s3, bucket, "held", &version, true).await,
        denied()
    );
    set_hold(ObjectLockLegalHoldStatus::Off).await.unwrap();
    delete_version(s3, bucket, "held", &version, false)
        .await
        .unwrap();

    // The bucket's default retention applies to new versions.
    s3.put_object_lock_configuration()
        .bucket(bucket)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let configuration = s3
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let default = configuration
        .object_lock_configuration()
        .and_then(|configuration| configuration.rule())
        .and_then(|rule| rule.default_retention())
        .unwrap();
    assert_eq!(default.days(), Some(1));
    let version = put_version(s3, bucket, "defaulted").await;
    let head = s3
        .head_object()
        .bucket(bucket)
        .key("defaulted")
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
    let until = head.object_lock_retain_until_date().unwrap().secs();
    assert!((until - in_future(DAY).secs()).abs() < 300);
    assert_eq!(
        delete_version(s3, bucket, "defaulted", &version, false).await,
        denied()
    );

    // Without object lock on the bucket.
    s3.create_bucket().bucket("sdk-plain").send().await.unwrap();
    let error = s3
        .get_object_lock_configuration()
        .bucket("sdk-plain")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&error),
        ("ObjectLockConfigurationNotFoundError".to_owned(), 404)
    );
}

async fn sdk_bucket_encryption(s3: &Client) {
    let bucket = "sdk-default-encryption";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let error = s3
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&error),
        (
            "ServerSideEncryptionConfigurationNotFoundError".to_owned(),
            404
        )
    );
    let put = s3
        .put_object()
        .bucket(bucket)
        .key("before")
        .body(ByteStream::from_static(b"plain"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.server_side_encryption(), None);
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::Aes256)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let put = s3
        .put_object()
        .bucket(bucket)
        .key("after")
        .body(ByteStream::from_static(b"encrypted"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    let got = s3
        .get_object()
        .bucket(bucket)
        .key("after")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"encrypted"
    );
    let configuration = s3
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let rule = &configuration
        .server_side_encryption_configuration()
        .unwrap()
        .rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm(),
        &ServerSideEncryption::Aes256
    );
    s3.delete_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert!(
        s3.get_bucket_encryption()
            .bucket(bucket)
            .send()
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_lock_through_boto3_and_aws_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let dev = tokio::task::block_in_place(|| CairnDev::start(Path::new(BINARY), dir.path()));
    tokio::task::block_in_place(|| dev.run_boto3_script("s3_object_lock.py"));
    sdk_object_lock(&sdk_client::client(&dev)).await;
    dev.assert_no_errors_logged();
}

/// Bucket default encryption on a dev that does not encrypt by default (so the bucket's
/// configuration is what turns SSE-S3 on) and on one that does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_default_encryption_through_boto3_and_aws_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let dev = tokio::task::block_in_place(|| {
        CairnDev::start_with(Path::new(BINARY), dir.path(), &["--no-default-encryption"])
    });
    let args = [
        dev.url(),
        dev.access_key.clone(),
        dev.secret_key.clone(),
        "off".to_owned(),
    ];
    tokio::task::block_in_place(|| run_python_script("s3_bucket_encryption.py", &args));
    sdk_bucket_encryption(&sdk_client::client(&dev)).await;
    dev.assert_no_errors_logged();
    drop(dev);
    let dir = tempfile::tempdir().unwrap();
    let dev = tokio::task::block_in_place(|| CairnDev::start(Path::new(BINARY), dir.path()));
    let args = [
        dev.url(),
        dev.access_key.clone(),
        dev.secret_key.clone(),
        "on".to_owned(),
    ];
    tokio::task::block_in_place(|| run_python_script("s3_bucket_encryption.py", &args));
    dev.assert_no_errors_logged();
}
