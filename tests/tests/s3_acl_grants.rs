//! Black-box tests of explicit ACL grants (issue 6) against `cairn dev`, with two users made by
//! `cairn admin`: alice owns the buckets, bob is granted things. boto3
//! (tests/python/s3_acl_grants.py) covers headers and bodies on every operation that takes them,
//! each permission, Block Public Access, a policy's Deny and the error cases; the Rust AWS SDK
//! covers the same model through its typed `AccessControlPolicy` and grant builders, and
//! anonymous reads through plain HTTP.

#[path = "sdk_client.rs"]
mod sdk_client;

use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AccessControlPolicy, Grant, Grantee, ObjectCannedAcl, Owner, Permission,
    PublicAccessBlockConfiguration, Type,
};
use cairn_tests::{CairnDev, http_get, run_python_script};
use sdk_client::code_and_status;

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");
const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

fn denied() -> (String, u16) {
    ("AccessDenied".to_owned(), 403)
}

fn user_grant(id: &str, permission: Permission) -> Grant {
    Grant::builder()
        .grantee(
            Grantee::builder()
                .r#type(Type::CanonicalUser)
                .id(id)
                .build()
                .unwrap(),
        )
        .permission(permission)
        .build()
}

/// (grantee id or URI, permission) of every grant, sorted.
fn grant_list(grants: &[Grant]) -> Vec<(String, String)> {
    let mut listed: Vec<(String, String)> = grants
        .iter()
        .map(|grant| {
            let grantee = grant.grantee().unwrap();
            (
                grantee.id().or(grantee.uri()).unwrap_or("").to_owned(),
                grant.permission().unwrap().as_str().to_owned(),
            )
        })
        .collect();
    listed.sort();
    listed
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = expected
        .iter()
        .map(|(grantee, permission)| (grantee.to_string(), permission.to_string()))
        .collect();
    pairs.sort();
    pairs
}

async fn put(client: &Client, bucket: &str, key: &str, body: &'static [u8]) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(body))
        .send()
        .await
        .unwrap();
}

async fn read(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    object.body.collect().await.unwrap().into_bytes().to_vec()
}

async fn sdk_grants(dev: &CairnDev, alice: &Client, bob: &Client) {
    let bucket = "sdk-acl-grants";
    // CreateBucket with a grant header: bob may list, not write.
    alice
        .create_bucket()
        .bucket(bucket)
        .grant_read("id=\"bob\"")
        .send()
        .await
        .unwrap();
    let acl = alice.get_bucket_acl().bucket(bucket).send().await.unwrap();
    assert_eq!(acl.owner().and_then(|owner| owner.id()), Some("alice"));
    assert_eq!(grant_list(acl.grants()), pairs(&[("bob", "READ")]));
    assert_eq!(
        acl.grants()[0].grantee().map(|grantee| grantee.r#type()),
        Some(&Type::CanonicalUser)
    );
    put(alice, bucket, "a.txt", b"alpha").await;
    put(alice, bucket, "b.txt", b"beta").await;
    let listed = bob.list_objects_v2().bucket(bucket).send().await.unwrap();
    assert_eq!(listed.key_count(), Some(2));
    let refused = bob
        .put_object()
        .bucket(bucket)
        .key("bob.txt")
        .body(ByteStream::from_static(b"b"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&refused), denied());

    // An AccessControlPolicy granting WRITE: bob writes and deletes, no longer lists.
    alice
        .put_bucket_acl()
        .bucket(bucket)
        .access_control_policy(
            AccessControlPolicy::builder()
                .owner(Owner::builder().id("alice").build())
                .grants(user_grant("bob", Permission::Write))
                .build(),
        )
        .send()
        .await
        .unwrap();
    put(bob, bucket, "bob.txt", b"from bob").await;
    assert_eq!(read(alice, bucket, "bob.txt").await, b"from bob");
    let list = bob
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&list), denied());
    bob.delete_object()
        .bucket(bucket)
        .key("bob.txt")
        .send()
        .await
        .unwrap();

    // Object READ on one object only; READ_ACP on it shows bob its ACL.
    alice
        .put_object_acl()
        .bucket(bucket)
        .key("a.txt")
        .grant_read("id=\"bob\"")
        .grant_read_acp("id=\"bob\"")
        .send()
        .await
        .unwrap();
    assert_eq!(read(bob, bucket, "a.txt").await, b"alpha");
    let other = bob
        .get_object()
        .bucket(bucket)
        .key("b.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&other), denied());
    let object_acl = bob
        .get_object_acl()
        .bucket(bucket)
        .key("a.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        object_acl.owner().and_then(|owner| owner.id()),
        Some("alice")
    );
    assert_eq!(
        grant_list(object_acl.grants()),
        pairs(&[("bob", "READ"), ("bob", "READ_ACP")])
    );
    // READ_ACP is not WRITE_ACP.
    let change = bob
        .put_object_acl()
        .bucket(bucket)
        .key("a.txt")
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&change), denied());

    // AllUsers READ: anonymous GET works, and stops once IgnorePublicAcls is set.
    alice
        .put_object_acl()
        .bucket(bucket)
        .key("b.txt")
        .grant_read(format!("uri=\"{ALL_USERS}\""))
        .send()
        .await
        .unwrap();
    let path = format!("/{bucket}/b.txt");
    assert_eq!(
        tokio::task::block_in_place(|| http_get(dev.endpoint, &path)),
        (200, b"beta".to_vec())
    );
    alice
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .ignore_public_acls(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        tokio::task::block_in_place(|| http_get(dev.endpoint, &path)).0,
        403
    );
    assert_eq!(
        read(bob, bucket, "a.txt").await,
        b"alpha",
        "user grants stay"
    );
    alice
        .delete_public_access_block()
        .bucket(bucket)
        .send()
        .await
        .unwrap();

    // A policy's explicit Deny beats bob's grant.
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Deny",
            "Principal": {"AWS": "arn:aws:iam::000000000000:user/bob"},
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/a.txt"),
        }],
    });
    alice
        .put_bucket_policy()
        .bucket(bucket)
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();
    let blocked = bob
        .get_object()
        .bucket(bucket)
        .key("a.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&blocked), denied());
    alice
        .delete_bucket_policy()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(read(bob, bucket, "a.txt").await, b"alpha");

    // Errors: canned together with grants, an unknown canonical id, an email grantee.
    let both = alice
        .put_object()
        .bucket(bucket)
        .key("both.txt")
        .acl(ObjectCannedAcl::Private)
        .grant_read("id=\"bob\"")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&both), ("InvalidRequest".to_owned(), 400));
    let unknown = alice
        .put_bucket_acl()
        .bucket(bucket)
        .access_control_policy(
            AccessControlPolicy::builder()
                .owner(Owner::builder().id("alice").build())
                .grants(user_grant("nobody", Permission::Read))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&unknown),
        ("InvalidArgument".to_owned(), 400)
    );
    let email = alice
        .put_object_acl()
        .bucket(bucket)
        .key("a.txt")
        .grant_full_control("emailAddress=\"bob@example.com\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&email),
        ("UnresolvableGrantByEmailAddress".to_owned(), 400)
    );
    // Nothing changed.
    let acl = alice.get_bucket_acl().bucket(bucket).send().await.unwrap();
    assert_eq!(grant_list(acl.grants()), pairs(&[("bob", "WRITE")]));

    for key in ["a.txt", "b.txt"] {
        alice
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }
    alice.delete_bucket().bucket(bucket).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_grants_work_with_boto3_and_the_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let dev = tokio::task::block_in_place(|| CairnDev::start(Path::new(BINARY), dir.path()));
    let (alice_key, alice_secret) =
        tokio::task::block_in_place(|| dev.create_user(Path::new(BINARY), "alice"));
    let (bob_key, bob_secret) =
        tokio::task::block_in_place(|| dev.create_user(Path::new(BINARY), "bob"));

    tokio::task::block_in_place(|| {
        run_python_script(
            "s3_acl_grants.py",
            &[
                &dev.url(),
                &alice_key,
                &alice_secret,
                &bob_key,
                &bob_secret,
                &dev.access_key,
                &dev.secret_key,
            ],
        )
    });
    let alice = sdk_client::client_with_keys(&dev, &alice_key, &alice_secret);
    let bob = sdk_client::client_with_keys(&dev, &bob_key, &bob_secret);
    sdk_grants(&dev, &alice, &bob).await;
    dev.assert_no_errors_logged();
}
