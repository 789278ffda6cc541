"""boto3 against a running Cairn started with short lifecycle days (`--lifecycle-day-seconds 2
--lifecycle-interval-secs 1`): Put/Get/DeleteBucketLifecycleConfiguration with AWS's errors, and
the lifecycle worker applying the rules: Expiration by prefix and by tag (And), a rule added
later expiring existing objects, a delete marker on a versioned bucket, NoncurrentVersionExpiration
with NewerNoncurrentVersions, ExpiredObjectDeleteMarker, and AbortIncompleteMultipartUpload.

Usage: s3_lifecycle.py ENDPOINT ACCESS_KEY SECRET_KEY. Exits non-zero on the first failed check.
"""
import datetime
import sys
import time

from botocore.exceptions import ClientError

import s3client
from s3client import failure

endpoint, access_key, secret_key = sys.argv[1:4]
s3 = s3client.client(endpoint, access_key, secret_key, retries={"total_max_attempts": 1})
DEADLINE_SECONDS = 60


def put_rules(bucket, rules):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})


def wait_until(description, check):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for: {description}")


def exists(bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as error:
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 404, error.response
        return False


def versions(bucket, key):
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    entries = [(v["VersionId"], False, v["IsLatest"]) for v in listing.get("Versions", []) if v["Key"] == key]
    entries += [(m["VersionId"], True, m["IsLatest"]) for m in listing.get("DeleteMarkers", []) if m["Key"] == key]
    return entries


# --- the configuration API ---
bucket = "py-lifecycle"
s3.create_bucket(Bucket=bucket)
assert failure(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket)) == ("NoSuchLifecycleConfiguration", 404)
rules = [
    {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}},
    {
        "ID": "tagged",
        "Filter": {"And": {"Prefix": "tmp/", "Tags": [{"Key": "class", "Value": "temp"}], "ObjectSizeGreaterThan": 10}},
        "Status": "Disabled",
        "Expiration": {"Date": datetime.datetime(2040, 1, 1, tzinfo=datetime.timezone.utc)},
    },
    {
        "ID": "versions",
        "Filter": {},
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 7, "NewerNoncurrentVersions": 2},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3},
    },
    {"ID": "markers", "Filter": {"Tag": {"Key": "a", "Value": "b"}}, "Status": "Enabled", "Expiration": {"Days": 1}},
]
put_rules(bucket, rules)
stored = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
assert [rule["ID"] for rule in stored] == ["logs", "tagged", "versions", "markers"], stored
assert stored[0]["Filter"] == {"Prefix": "logs/"} and stored[0]["Expiration"] == {"Days": 30}, stored[0]
assert stored[1]["Status"] == "Disabled", stored[1]
assert stored[1]["Filter"]["And"]["Tags"] == [{"Key": "class", "Value": "temp"}], stored[1]
assert stored[1]["Filter"]["And"]["ObjectSizeGreaterThan"] == 10, stored[1]
assert stored[1]["Expiration"]["Date"] == datetime.datetime(2040, 1, 1, tzinfo=datetime.timezone.utc), stored[1]
assert stored[2]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7, "NewerNoncurrentVersions": 2}, stored[2]
assert stored[2]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 3}, stored[2]
assert stored[3]["Filter"] == {"Tag": {"Key": "a", "Value": "b"}}, stored[3]

errors = [
    ([{"ID": "x", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 0}}], ("InvalidArgument", 400)),
    ([{"ID": "x", "Filter": {}, "Status": "Enabled"}], ("InvalidRequest", 400)),
    ([{"ID": "x", "Filter": {}, "Status": "Maybe", "Expiration": {"Days": 1}}], ("MalformedXML", 400)),
    (
        [{"ID": "x", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 1}},
         {"ID": "x", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 2}}],
        ("InvalidArgument", 400),
    ),
    (
        [{"ID": "x", "Filter": {}, "Status": "Enabled",
          "Expiration": {"Date": datetime.datetime(2040, 1, 1, 12, tzinfo=datetime.timezone.utc)}}],
        ("InvalidArgument", 400),
    ),
    (
        [{"ID": "x", "Filter": {"Tag": {"Key": "k", "Value": "v"}}, "Status": "Enabled",
          "Expiration": {"ExpiredObjectDeleteMarker": True}}],
        ("InvalidRequest", 400),
    ),
    (
        [{"ID": "x", "Filter": {}, "Status": "Enabled",
          "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 101}}],
        ("InvalidArgument", 400),
    ),
    (
        [{"ID": "x", "Filter": {}, "Status": "Enabled", "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]}],
        ("NotImplemented", 501),
    ),
]
for bad, expected in errors:
    assert failure(lambda: put_rules(bucket, bad)) == expected, (bad, expected)
# A refused configuration changes nothing.
assert len(s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]) == 4
assert failure(lambda: s3.get_bucket_lifecycle_configuration(Bucket="py-lifecycle-none")) == ("NoSuchBucket", 404)
s3.delete_bucket_lifecycle(Bucket=bucket)
assert failure(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket)) == ("NoSuchLifecycleConfiguration", 404)
s3.delete_bucket_lifecycle(Bucket=bucket)  # idempotent, 204

# --- expiration on an unversioned bucket: prefix, And(prefix, tag), a rule added later ---
bucket = "py-lc-expire"
s3.create_bucket(Bucket=bucket)
for key in ["logs/a", "logs/b", "keep/c", "docs/x", "docs/y"]:
    s3.put_object(Bucket=bucket, Key=key, Body=b"data")
s3.put_object_tagging(Bucket=bucket, Key="docs/x", Tagging={"TagSet": [{"Key": "class", "Value": "temp"}]})
s3.put_object_tagging(Bucket=bucket, Key="docs/y", Tagging={"TagSet": [{"Key": "class", "Value": "keep"}]})
put_rules(bucket, [
    {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 1}},
    {"ID": "temp", "Filter": {"And": {"Prefix": "docs/", "Tags": [{"Key": "class", "Value": "temp"}]}},
     "Status": "Enabled", "Expiration": {"Days": 1}},
    {"ID": "off", "Filter": {"Prefix": "keep/"}, "Status": "Disabled", "Expiration": {"Days": 1}},
])
wait_until("logs/ and tagged docs expire",
           lambda: not exists(bucket, "logs/a") and not exists(bucket, "logs/b") and not exists(bucket, "docs/x"))
time.sleep(3)  # more passes: the others stay
assert exists(bucket, "keep/c") and exists(bucket, "docs/y")
put_rules(bucket, [{"ID": "keep", "Filter": {"Prefix": "keep/"}, "Status": "Enabled", "Expiration": {"Days": 1}}])
wait_until("a rule added later expires existing keep/c", lambda: not exists(bucket, "keep/c"))
assert exists(bucket, "docs/y")

# --- versioned: expiring the current version adds a delete marker ---
bucket = "py-lc-versioned"
s3.create_bucket(Bucket=bucket)
s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
first = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["VersionId"]
put_rules(bucket, [{"ID": "expire", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 1}}])
wait_until("a delete marker hides k", lambda: not exists(bucket, "k"))
entries = versions(bucket, "k")
assert (first, False, False) in entries, entries
assert any(marker and latest for _, marker, latest in entries), entries
assert s3.get_object(Bucket=bucket, Key="k", VersionId=first)["Body"].read() == b"v1"
# A GET of the marker's version is 405 with the marker's Last-Modified, as on S3.
marker_id = next(version for version, marker, _ in entries if marker)
try:
    s3.get_object(Bucket=bucket, Key="k", VersionId=marker_id)
    raise AssertionError("GET of a delete marker version succeeded")
except ClientError as error:
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 405, error.response
    headers = error.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers.get("x-amz-delete-marker") == "true", headers
    assert headers.get("last-modified", "").endswith(" GMT"), headers
# Then noncurrent versions go, and the delete marker left alone goes too.
put_rules(bucket, [
    {"ID": "noncurrent", "Filter": {}, "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
    {"ID": "markers", "Filter": {}, "Status": "Enabled", "Expiration": {"ExpiredObjectDeleteMarker": True}},
])
wait_until("every version and the marker of k are gone", lambda: versions(bucket, "k") == [])

# --- NewerNoncurrentVersions keeps the newest noncurrent ones ---
bucket = "py-lc-newer"
s3.create_bucket(Bucket=bucket)
s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
ids = [s3.put_object(Bucket=bucket, Key="k", Body=f"v{n}".encode())["VersionId"] for n in range(4)]
put_rules(bucket, [{"ID": "two", "Filter": {}, "Status": "Enabled",
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 2}}])
wait_until("the oldest noncurrent version goes", lambda: len(versions(bucket, "k")) == 3)
time.sleep(3)
assert sorted(v for v, _, _ in versions(bucket, "k")) == sorted(ids[1:]), versions(bucket, "k")
assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v3"

# --- incomplete multipart uploads ---
bucket = "py-lc-uploads"
s3.create_bucket(Bucket=bucket)
aborted = s3.create_multipart_upload(Bucket=bucket, Key="up/a")["UploadId"]
s3.upload_part(Bucket=bucket, Key="up/a", UploadId=aborted, PartNumber=1, Body=b"part")
kept = s3.create_multipart_upload(Bucket=bucket, Key="other/b")["UploadId"]
put_rules(bucket, [{"ID": "abort", "Filter": {"Prefix": "up/"}, "Status": "Enabled",
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}])


def upload_keys():
    return sorted(upload["Key"] for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


wait_until("the upload under up/ is aborted", lambda: upload_keys() == ["other/b"])
assert failure(lambda: s3.list_parts(Bucket=bucket, Key="up/a", UploadId=aborted)) == ("NoSuchUpload", 404)
s3.abort_multipart_upload(Bucket=bucket, Key="other/b", UploadId=kept)
print("lifecycle: ok")
