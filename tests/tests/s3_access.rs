//! Black-box tests of users and access control (issue 6) against `cairn dev`: users' access keys
//! created, listed and revoked with `cairn admin` (signed with the root keys), bucket ownership
//! enforced between two users through boto3 (tests/python/s3_users.py) and the Rust AWS SDK, the
//! admin API refused to users and to anonymous callers, and a revoked key refused; bucket
//! policies (tests/python/s3_policy.py and the SDK) granting and denying users and anonymous
//! callers, with conditions; canned ACLs on buckets and objects (tests/python/s3_acl.py and the
//! SDK); Block Public Access (tests/python/s3_public_access_block.py and the SDK).

#[path = "sdk_client.rs"]
mod sdk_client;

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use cairn_tests::{CairnDev, run_python_script};
use sdk_client::code_and_status;

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");

fn denied() -> (String, u16) {
    ("AccessDenied".to_owned(), 403)
}

async fn sdk_ownership(alice: &Client, bob: &Client) {
    alice
        .create_bucket()
        .bucket("sdk-alice")
        .send()
        .await
        .unwrap();
    alice
        .put_object()
        .bucket("sdk-alice")
        .key("secret")
        .body(ByteStream::from_static(b"alice only"))
        .send()
        .await
        .unwrap();
    bob.create_bucket().bucket("sdk-bob").send().await.unwrap();

    let get = bob
        .get_object()
        .bucket("sdk-alice")
        .key("secret")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&get), denied());
    let list = bob
        .list_objects_v2()
        .bucket("sdk-alice")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&list), denied());
    let put = bob
        .put_object()
        .bucket("sdk-alice")
        .key("intruder")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&put), denied());
    let delete = bob
        .delete_bucket()
        .bucket("sdk-alice")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&delete), denied());
    let multipart = bob
        .create_multipart_upload()
        .bucket("sdk-alice")
        .key("mp")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&multipart), denied());

    let listed = bob.list_buckets().send().await.unwrap();
    let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["sdk-bob"]);
    assert_eq!(listed.owner().and_then(|owner| owner.id()), Some("bob"));

    let mine = alice
        .get_object()
        .bucket("sdk-alice")
        .key("secret")
        .send()
        .await
        .unwrap();
    assert_eq!(
        mine.body.collect().await.unwrap().into_bytes().as_ref(),
        b"alice only"
    );
    alice
        .delete_object()
        .bucket("sdk-alice")
        .key("secret")
        .send()
        .await
        .unwrap();
    alice
        .delete_bucket()
        .bucket("sdk-alice")
        .send()
        .await
        .unwrap();
    bob.delete_bucket().bucket("sdk-bob").send().await.unwrap();
}

async fn sdk_policy(dev: &CairnDev, alice: &Client, bob: &Client) {
    let bucket = "sdk-policy";
    alice.create_bucket().bucket(bucket).send().await.unwrap();
    alice
        .put_object()
        .bucket(bucket)
        .key("shared/doc")
        .body(ByteStream::from_static(b"shared"))
        .send()
        .await
        .unwrap();
    let missing = alice
        .get_bucket_policy()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&missing),
        ("NoSuchBucketPolicy".to_owned(), 404)
    );
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "bob"}, "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": format!("arn:aws:s3:::{bucket}/shared/*")},
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
             "Resource": format!("arn:aws:s3:::{bucket}/shared/*"),
             "Condition": {"StringEquals": {"aws:UserAgent": "cairn-test-agent"}}}
        ]
    })
    .to_string();
    alice
        .put_bucket_policy()
        .bucket(bucket)
        .policy(&policy)
        .send()
        .await
        .unwrap();
    let stored = alice
        .get_bucket_policy()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.policy(), Some(policy.as_str()));
    let status = alice
        .get_bucket_policy_status()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.policy_status().and_then(|status| status.is_public()),
        Some(true)
    );

    // Bob reads and writes under shared/ only.
    let read = bob
        .get_object()
        .bucket(bucket)
        .key("shared/doc")
        .send()
        .await
        .unwrap();
    assert_eq!(
        read.body.collect().await.unwrap().into_bytes().as_ref(),
        b"shared"
    );
    bob.put_object()
        .bucket(bucket)
        .key("shared/from-bob")
        .body(ByteStream::from_static(b"bob"))
        .send()
        .await
        .unwrap();
    let outside = bob
        .put_object()
        .bucket(bucket)
        .key("elsewhere")
        .body(ByteStream::from_static(b"bob"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&outside), denied());
    let list = bob
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&list), denied());
    let manage = bob
        .delete_bucket_policy()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&manage), denied());

    // Anonymous: only with the user agent the condition names.
    let anonymous = |user_agent: &'static str| {
        let endpoint = dev.endpoint;
        move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(endpoint).unwrap();
            write!(
                stream,
                "GET /{bucket}/shared/doc HTTP/1.1\r\nHost: {endpoint}\r\nUser-Agent: {user_agent}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
        }
    };
    let allowed = tokio::task::block_in_place(anonymous("cairn-test-agent"));
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");
    assert!(allowed.ends_with("shared"), "{allowed}");
    let refused = tokio::task::block_in_place(anonymous("some-browser"));
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");

    let malformed = alice
        .put_bucket_policy()
        .bucket(bucket)
        .policy("{\"Statement\": \"nope\"}")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&malformed),
        ("MalformedPolicy".to_owned(), 400)
    );
    alice
        .delete_bucket_policy()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let after = bob
        .get_object()
        .bucket(bucket)
        .key("shared/doc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&after), denied());
    for key in ["shared/doc", "shared/from-bob"] {
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

async fn sdk_acl(alice: &Client, bob: &Client) {
    use aws_sdk_s3::types::{BucketCannedAcl, ObjectCannedAcl, Permission, Type};
    let bucket = "sdk-acl";
    alice
        .create_bucket()
        .bucket(bucket)
        .acl(BucketCannedAcl::AuthenticatedRead)
        .send()
        .await
        .unwrap();
    let acl = alice.get_bucket_acl().bucket(bucket).send().await.unwrap();
    assert_eq!(acl.owner().and_then(|owner| owner.id()), Some("alice"));
    let group_grants: Vec<(Option<&str>, Option<&Permission>)> = acl
        .grants()
        .iter()
        .filter(|grant| grant.grantee().map(|grantee| grantee.r#type()) == Some(&Type::Group))
        .map(|grant| (grant.grantee().and_then(|g| g.uri()), grant.permission()))
        .collect();
    assert_eq!(
        group_grants,
        [(
            Some("http://acs.amazonaws.com/groups/global/AuthenticatedUsers"),
            Some(&Permission::Read)
        )]
    );
    alice
        .put_object()
        .bucket(bucket)
        .key("doc")
        .acl(ObjectCannedAcl::AuthenticatedRead)
        .body(ByteStream::from_static(b"doc"))
        .send()
        .await
        .unwrap();
    // Bucket READ for signed-in users: bob lists; the object's ACL lets him read it.
    let listed = bob.list_objects_v2().bucket(bucket).send().await.unwrap();
    assert_eq!(listed.key_count(), Some(1));
    bob.get_object()
        .bucket(bucket)
        .key("doc")
        .send()
        .await
        .unwrap();
    let write = bob
        .put_object()
        .bucket(bucket)
        .key("bob")
        .body(ByteStream::from_static(b"b"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&write), denied());
    alice
        .put_object_acl()
        .bucket(bucket)
        .key("doc")
        .acl(ObjectCannedAcl::Private)
        .send()
        .await
        .unwrap();
    let read = bob
        .get_object()
        .bucket(bucket)
        .key("doc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&read), denied());
    let object_acl = alice
        .get_object_acl()
        .bucket(bucket)
        .key("doc")
        .send()
        .await
        .unwrap();
    assert_eq!(object_acl.grants().len(), 1);
    let denied_acl = bob
        .get_object_acl()
        .bucket(bucket)
        .key("doc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&denied_acl), denied());
    alice
        .delete_object()
        .bucket(bucket)
        .key("doc")
        .send()
        .await
        .unwrap();
    alice.delete_bucket().bucket(bucket).send().await.unwrap();
}

async fn sdk_public_access_block(alice: &Client) {
    use aws_sdk_s3::types::{ObjectCannedAcl, PublicAccessBlockConfiguration};
    let bucket = "sdk-public-access-block";
    alice.create_bucket().bucket(bucket).send().await.unwrap();
    let none = alice
        .get_public_access_block()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&none),
        ("NoSuchPublicAccessBlockConfiguration".to_owned(), 404)
    );
    alice
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let stored = alice
        .get_public_access_block()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let configuration = stored.public_access_block_configuration().unwrap();
    assert_eq!(configuration.block_public_acls(), Some(true));
    assert_eq!(configuration.ignore_public_acls(), Some(false));
    assert_eq!(configuration.block_public_policy(), Some(true));
    assert_eq!(configuration.restrict_public_buckets(), Some(false));
    let refused = alice
        .put_object()
        .bucket(bucket)
        .key("k")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"k"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&refused), denied());
    alice
        .delete_public_access_block()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    alice
        .put_object()
        .bucket(bucket)
        .key("k")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"k"))
        .send()
        .await
        .unwrap();
    alice
        .delete_object()
        .bucket(bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    alice.delete_bucket().bucket(bucket).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_own_their_buckets_and_admin_manages_keys() {
    let dir = tempfile::tempdir().unwrap();
    let dev = tokio::task::block_in_place(|| CairnDev::start(Path::new(BINARY), dir.path()));
    let (alice_key, alice_secret) =
        tokio::task::block_in_place(|| dev.create_user(Path::new(BINARY), "alice"));
    let (bob_key, bob_secret) =
        tokio::task::block_in_place(|| dev.create_user(Path::new(BINARY), "bob"));

    // list-keys: both users and root, no secrets; filtered by user.
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
        dev.admin(
            Path::new(BINARY),
            &dev.access_key,
            &dev.secret_key,
            &["list-keys"],
        )
    });
    assert!(ok, "{stderr}");
    assert!(!stdout.contains(&alice_secret) && !stdout.contains(&dev.secret_key));
    let listed: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let keys = listed["access_keys"].as_array().unwrap();
    let find = |id: &str| keys.iter().find(|key| key["access_key_id"] == id).cloned();
    assert_eq!(find(&alice_key).unwrap()["user"], "alice");
    assert_eq!(find(&bob_key).unwrap()["status"], "active");
    assert_eq!(find(&dev.access_key).unwrap()["root"], true);
    let (ok, stdout, _) = tokio::task::block_in_place(|| {
        dev.admin(
            Path::new(BINARY),
            &dev.access_key,
            &dev.secret_key,
            &["list-keys", "--user", "bob"],
        )
    });
    assert!(ok);
    let listed: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(listed["access_keys"].as_array().unwrap().len(), 1);

    // Users cannot use the admin API; bad user names and the root key's revocation are refused.
    let (ok, _, stderr) = tokio::task::block_in_place(|| {
        dev.admin(
            Path::new(BINARY),
            &alice_key,
            &alice_secret,
            &["create-key", "--user", "eve"],
        )
    });
    assert!(
        !ok && stderr.contains("403") && stderr.contains("AccessDenied"),
        "{stderr}"
    );
    let (ok, _, stderr) = tokio::task::block_in_place(|| {
        dev.admin(
            Path::new(BINARY),
            &dev.access_key,
            "wrong-secret",
            &["list-keys"],
        )
    });
    assert!(!ok && stderr.contains("SignatureDoesNotMatch"), "{stderr}");
    let (ok, _, stderr) = tokio::task::block_in_place(|| {
        dev.admin(
            Path::new(BINARY),
            &dev.access_key,
            &dev.secret_key,
            &["create-key", "--user", "no spaces"],
        )
    });
    assert!(!ok && stderr.contains("InvalidArgument"), "{stderr}");
    let (ok, _, stderr) = tokio::task::block_in_place(|| {
        dev.admin(
            Path::new(BINARY),
            &dev.access_key,
            &dev.secret_key,
            &["revoke-key", &dev.access_key],
        )
    });
    assert!(!ok && stderr.contains("InvalidArgument"), "{stderr}");
    let (ok, _, stderr) = tokio::task::block_in_place(|| {
        dev.admin(
            Path::new(BINARY),
            &dev.access_key,
            &dev.secret_key,
            &["revoke-key", "CAIRNNOSUCHKEY"],
        )
    });
    assert!(!ok && stderr.contains("404"), "{stderr}");

    tokio::task::block_in_place(|| {
        run_python_script(
            "s3_users.py",
            &[&dev.url(), &alice_key, &alice_secret, &bob_key, &bob_secret],
        )
    });
    let alice = sdk_client::client_with_keys(&dev, &alice_key, &alice_secret);
    let bob = sdk_client::client_with_keys(&dev, &bob_key, &bob_secret);
    sdk_ownership(&alice, &bob).await;

    tokio::task::block_in_place(|| {
        run_python_script(
            "s3_policy.py",
            &[&dev.url(), &alice_key, &alice_secret, &bob_key, &bob_secret],
        )
    });
    sdk_policy(&dev, &alice, &bob).await;

    tokio::task::block_in_place(|| {
        run_python_script(
            "s3_acl.py",
            &[&dev.url(), &alice_key, &alice_secret, &bob_key, &bob_secret],
        )
    });
    sdk_acl(&alice, &bob).await;
    tokio::task::block_in_place(|| {
        run_python_script(
            "s3_public_access_block.py",
            &[&dev.url(), &alice_key, &alice_secret, &bob_key, &bob_secret],
        )
    });
    sdk_public_access_block(&alice).await;

    // Revocation: bob's key stops working (within the gateway's key cache lifetime).
    let (ok, _, stderr) = tokio::task::block_in_place(|| {
        dev.admin(
            Path::new(BINARY),
            &dev.access_key,
            &dev.secret_key,
            &["revoke-key", &bob_key],
        )
    });
    assert!(ok, "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match bob.list_buckets().send().await {
            Err(error) => {
                assert_eq!(
                    code_and_status(&error),
                    ("InvalidAccessKeyId".to_owned(), 403)
                );
                break;
            }
            Ok(_) => {
                assert!(Instant::now() < deadline, "revoked key still accepted");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let (_, stdout, _) = tokio::task::block_in_place(|| {
        dev.admin(
            Path::new(BINARY),
            &dev.access_key,
            &dev.secret_key,
            &["list-keys", "--user", "bob"],
        )
    });
    assert!(stdout.contains("\"revoked\""), "{stdout}");
    // Alice is unaffected.
    alice.list_buckets().send().await.unwrap();
    dev.assert_no_errors_logged();
}
