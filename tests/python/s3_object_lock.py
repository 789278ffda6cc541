"""Object lock through boto3 against `cairn dev` (issue 11), following the cases of the S3
documentation: a bucket created with object lock is versioned; GOVERNANCE retention blocks
deleting a version unless the caller bypasses it (and a bucket policy can take the bypass away);
COMPLIANCE can be extended but never shortened, removed or bypassed; a legal hold blocks
deletion until it is turned off; the bucket's default retention is applied to new versions (PUT,
multipart, copy); DeleteObjects reports AccessDenied per locked key; the integrity header S3
requires on lock writes; the errors of buckets without object lock.

Usage: s3_object_lock.py ENDPOINT ACCESS_KEY SECRET_KEY
"""
import base64
import datetime
import hashlib
import json
import os
import sys

from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(__file__))
from s3client import client  # noqa: E402

endpoint, access_key, secret_key = sys.argv[1:4]
s3 = client(endpoint, access_key, secret_key)
DAY = datetime.timedelta(days=1)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def expect_error(call, code, status):
    try:
        call()
    except ClientError as error:
        got = (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"])
        assert got == (code, status), f"expected {(code, status)}, got {got}: {error.response}"
        return error.response
    raise AssertionError(f"expected {code}")


def close_to(date, expected, slack=datetime.timedelta(minutes=5)):
    assert abs(date - expected) < slack, (date, expected)


def put(bucket, key, body=b"locked data", **kwargs):
    return s3.put_object(Bucket=bucket, Key=key, Body=body, **kwargs)["VersionId"]


def delete_version(bucket, key, version_id, **kwargs):
    return s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id, **kwargs)


def versions_of(bucket, key):
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return [v["VersionId"] for v in listing.get("Versions", []) if v["Key"] == key]


# --- a bucket without object lock ------------------------------------------------------------
plain = "plain-bucket"
s3.create_bucket(Bucket=plain)
expect_error(lambda: s3.get_object_lock_configuration(Bucket=plain),
             "ObjectLockConfigurationNotFoundError", 404)
s3.put_object(Bucket=plain, Key="k", Body=b"x")
expect_error(lambda: s3.put_object_retention(
    Bucket=plain, Key="k",
    Retention={"Mode": "GOVERNANCE", "RetainUntilDate": now() + DAY}), "InvalidRequest", 400)
expect_error(lambda: s3.get_object_legal_hold(Bucket=plain, Key="k"), "InvalidRequest", 400)
expect_error(lambda: s3.put_object(Bucket=plain, Key="k2", Body=b"x",
                                   ObjectLockLegalHoldStatus="ON"), "InvalidRequest", 400)
# Turning object lock on needs versioning (S3 allows it on existing versioned buckets).
lock_on = {"ObjectLockEnabled": "Enabled"}
expect_error(lambda: s3.put_object_lock_configuration(
    Bucket=plain, ObjectLockConfiguration=lock_on), "InvalidBucketState", 409)
s3.put_bucket_versioning(Bucket=plain, VersioningConfiguration={"Status": "Enabled"})
s3.put_object_lock_configuration(Bucket=plain, ObjectLockConfiguration=lock_on)
assert s3.get_object_lock_configuration(Bucket=plain)["ObjectLockConfiguration"] == lock_on
expect_error(lambda: s3.put_bucket_versioning(
    Bucket=plain, VersioningConfiguration={"Status": "Suspended"}), "InvalidBucketState", 409)

# --- CreateBucket with object lock -----------------------------------------------------------
bucket = "locked-bucket"
s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
config = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
assert config == lock_on, config

# --- GOVERNANCE: bypass allowed for the owner, denied by a policy ------------------------------
until = now() + DAY
version = put(bucket, "governed", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
head = s3.head_object(Bucket=bucket, Key="governed")
assert head["ObjectLockMode"] == "GOVERNANCE", head
close_to(head["ObjectLockRetainUntilDate"], until)
got = s3.get_object(Bucket=bucket, Key="governed", VersionId=version)
assert got["ObjectLockMode"] == "GOVERNANCE" and got["Body"].read() == b"locked data"
retention = s3.get_object_retention(Bucket=bucket, Key="governed", VersionId=version)["Retention"]
assert retention["Mode"] == "GOVERNANCE", retention
close_to(retention["RetainUntilDate"], until)
expect_error(lambda: s3.get_object_legal_hold(Bucket=bucket, Key="governed"),
             "NoSuchObjectLockConfiguration", 404)
expect_error(lambda: delete_version(bucket, "governed", version), "AccessDenied", 403)
# Shortening or removing needs the bypass; extending does not.
expect_error(lambda: s3.put_object_retention(
    Bucket=bucket, Key="governed", VersionId=version,
    Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until - datetime.timedelta(hours=1)}),
    "AccessDenied", 403)
s3.put_object_retention(Bucket=bucket, Key="governed", VersionId=version,
                        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until + DAY})
s3.put_object_retention(Bucket=bucket, Key="governed", VersionId=version,
                        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until},
                        BypassGovernanceRetention=True)
# A delete without a version id only adds a delete marker, which a lock does not prevent.
marker = s3.delete_object(Bucket=bucket, Key="governed")
assert marker["DeleteMarker"] is True
# A bucket policy can deny the bypass, even to the owner.
deny_bypass = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:BypassGovernanceRetention",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }],
}
s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(deny_bypass))
expect_error(lambda: delete_version(bucket, "governed", version, BypassGovernanceRetention=True),
             "AccessDenied", 403)
s3.delete_bucket_policy(Bucket=bucket)
deleted = delete_version(bucket, "governed", version, BypassGovernanceRetention=True)
assert deleted["VersionId"] == version, deleted
assert version not in versions_of(bucket, "governed")

# --- COMPLIANCE: extend only, no bypass ----------------------------------------------------------
until = now() + DAY
version = put(bucket, "compliant", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
for retention in [
    {"Mode": "COMPLIANCE", "RetainUntilDate": until - datetime.timedelta(hours=1)},
    {"Mode": "GOVERNANCE", "RetainUntilDate": until + DAY},
]:
    expect_error(lambda: s3.put_object_retention(
        Bucket=bucket, Key="compliant", VersionId=version, Retention=retention,
        BypassGovernanceRetention=True), "AccessDenied", 403)
expect_error(lambda: delete_version(bucket, "compliant", version, BypassGovernanceRetention=True),
             "AccessDenied", 403)
s3.put_object_retention(Bucket=bucket, Key="compliant", VersionId=version,
                        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until + DAY})
retention = s3.get_object_retention(Bucket=bucket, Key="compliant")["Retention"]
assert retention["Mode"] == "COMPLIANCE"
close_to(retention["RetainUntilDate"], until + DAY)
assert version in versions_of(bucket, "compliant")
# A date in the past is refused.
expect_error(lambda: s3.put_object(Bucket=bucket, Key="past", Body=b"x", ObjectLockMode="COMPLIANCE",
                                   ObjectLockRetainUntilDate=now() - DAY), "InvalidArgument", 400)

# --- legal hold ------------------------------------------------------------------------------------
version = put(bucket, "held", ObjectLockLegalHoldStatus="ON")
assert s3.head_object(Bucket=bucket, Key="held")["ObjectLockLegalHoldStatus"] == "ON"
assert s3.get_object_legal_hold(Bucket=bucket, Key="held")["LegalHold"]["Status"] == "ON"
expect_error(lambda: s3.get_object_retention(Bucket=bucket, Key="held"),
             "NoSuchObjectLockConfiguration", 404)
expect_error(lambda: delete_version(bucket, "held", version, BypassGovernanceRetention=True),
             "AccessDenied", 403)
s3.put_object_legal_hold(Bucket=bucket, Key="held", VersionId=version, LegalHold={"Status": "OFF"})
assert s3.get_object_legal_hold(Bucket=bucket, Key="held")["LegalHold"]["Status"] == "OFF"
delete_version(bucket, "held", version)
assert version not in versions_of(bucket, "held")
# A hold set later on an unprotected version.
version = put(bucket, "held-later")
s3.put_object_legal_hold(Bucket=bucket, Key="held-later", LegalHold={"Status": "ON"})
expect_error(lambda: delete_version(bucket, "held-later", version), "AccessDenied", 403)

# --- DeleteObjects: AccessDenied per locked key ------------------------------------------------------
free = put(bucket, "free")
result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
    {"Key": "free", "VersionId": free},
    {"Key": "held-later", "VersionId": version},
]})
assert [d["Key"] for d in result.get("Deleted", [])] == ["free"], result
errors = result.get("Errors", [])
assert [(e["Key"], e["Code"]) for e in errors] == [("held-later", "AccessDenied")], result
s3.put_object_legal_hold(Bucket=bucket, Key="held-later", LegalHold={"Status": "OFF"})
governed = put(bucket, "governed-batch", ObjectLockMode="GOVERNANCE",
               ObjectLockRetainUntilDate=now() + DAY)
result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
    {"Key": "governed-batch", "VersionId": governed}]})
assert [e["Code"] for e in result.get("Errors", [])] == ["AccessDenied"], result
result = s3.delete_objects(Bucket=bucket, BypassGovernanceRetention=True, Delete={"Objects": [
    {"Key": "governed-batch", "VersionId": governed}]})
assert not result.get("Errors") and len(result["Deleted"]) == 1, result

# --- default retention ---------------------------------------------------------------------------
default_config = {
    "ObjectLockEnabled": "Enabled",
    "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 2}},
}
s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=default_config)
assert s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"] == default_config
version = put(bucket, "defaulted")
head = s3.head_object(Bucket=bucket, Key="defaulted")
assert head["ObjectLockMode"] == "GOVERNANCE", head
close_to(head["ObjectLockRetainUntilDate"], now() + 2 * DAY)
expect_error(lambda: delete_version(bucket, "defaulted", version), "AccessDenied", 403)
# Explicit headers win over the default.
put(bucket, "explicit", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=now() + 3 * DAY)
close_to(s3.head_object(Bucket=bucket, Key="explicit")["ObjectLockRetainUntilDate"], now() + 3 * DAY)
assert s3.head_object(Bucket=bucket, Key="explicit")["ObjectLockMode"] == "COMPLIANCE"
# Multipart and copies get the default too (copies do not take the source's lock).
upload = s3.create_multipart_upload(Bucket=bucket, Key="multi")
part = s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload["UploadId"], PartNumber=1,
                      Body=b"m" * 1000)
s3.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=upload["UploadId"],
                             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
assert s3.get_object_retention(Bucket=bucket, Key="multi")["Retention"]["Mode"] == "GOVERNANCE"
s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "explicit"})
assert s3.head_object(Bucket=bucket, Key="copied")["ObjectLockMode"] == "GOVERNANCE"
s3.copy_object(Bucket=bucket, Key="copied-held", CopySource={"Bucket": bucket, "Key": "explicit"},
               ObjectLockLegalHoldStatus="ON", ObjectLockMode="COMPLIANCE",
               ObjectLockRetainUntilDate=now() + DAY)
head = s3.head_object(Bucket=bucket, Key="copied-held")
assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockLegalHoldStatus"] == "ON", head
upload = s3.create_multipart_upload(Bucket=bucket, Key="multi-held", ObjectLockLegalHoldStatus="ON")
part = s3.upload_part(Bucket=bucket, Key="multi-held", UploadId=upload["UploadId"], PartNumber=1,
                      Body=b"m" * 1000)
s3.complete_multipart_upload(Bucket=bucket, Key="multi-held", UploadId=upload["UploadId"],
                             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
assert s3.get_object_legal_hold(Bucket=bucket, Key="multi-held")["LegalHold"]["Status"] == "ON"
years = {"ObjectLockEnabled": "Enabled",
         "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 1}}}
s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=years)
put(bucket, "yearly")
close_to(s3.head_object(Bucket=bucket, Key="yearly")["ObjectLockRetainUntilDate"], now() + 365 * DAY)
expect_error(lambda: s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
    "ObjectLockEnabled": "Enabled",
    "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1, "Years": 1}}}),
    "MalformedXML", 400)
expect_error(lambda: s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
    "ObjectLockEnabled": "Enabled",
    "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 0}}}),
    "InvalidArgument", 400)
s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=lock_on)


# --- the integrity header S3 requires on lock writes ----------------------------------------------
def strip_integrity_headers(request, **_):
    for name in list(request.headers.keys()):
        lowered = name.lower()
        if lowered in ("content-md5", "x-amz-trailer", "x-amz-sdk-checksum-algorithm") or (
                lowered.startswith("x-amz-checksum-")):
            del request.headers[name]


bare = client(endpoint, access_key, secret_key, request_checksum_calculation="when_required")
bare.meta.events.register("before-sign.s3.PutObjectRetention", strip_integrity_headers)
bare.meta.events.register("before-sign.s3.PutObject", strip_integrity_headers)
response = expect_error(lambda: bare.put_object_retention(
    Bucket=bucket, Key="explicit",
    Retention={"Mode": "COMPLIANCE", "RetainUntilDate": now() + 10 * DAY}), "InvalidRequest", 400)
assert "Content-MD5" in response["Error"]["Message"]
expect_error(lambda: bare.put_object(
    Bucket=bucket, Key="no-md5", Body=b"x", ObjectLockMode="GOVERNANCE",
    ObjectLockRetainUntilDate=now() + DAY), "InvalidRequest", 400)
# With Content-MD5 it is accepted.
body = b"with md5"
md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
md5_only = client(endpoint, access_key, secret_key, request_checksum_calculation="when_required")
md5_only.put_object(Bucket=bucket, Key="with-md5", Body=body, ContentMD5=md5,
                ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=now() + DAY)
assert s3.head_object(Bucket=bucket, Key="with-md5")["ObjectLockMode"] == "GOVERNANCE"
print("object lock: ok")
