"""boto3 against a running Cairn: bucket versioning, version ids, delete markers, the null
version under Suspended, and ListObjectVersions, each compared with what AWS S3 answers.

Usage: s3_versioning.py ENDPOINT ACCESS_KEY SECRET_KEY. Exits non-zero on the first failed check.
"""
import sys

from botocore.exceptions import ClientError

import s3client

endpoint, access_key, secret_key = sys.argv[1:4]
s3 = s3client.client(endpoint, access_key, secret_key)


def error_of(call):
    try:
        call()
    except ClientError as error:
        return error.response
    raise AssertionError("the call succeeded")


def code_of(call):
    return error_of(call)["Error"]["Code"]


def headers_of(response):
    return response["ResponseMetadata"]["HTTPHeaders"]


bucket = "versions"
s3.create_bucket(Bucket=bucket)

# A bucket that never had versioning: no Status, no version ids anywhere.
assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
put = s3.put_object(Bucket=bucket, Key="k", Body=b"null-v0")
assert "VersionId" not in put, put
assert "VersionId" not in s3.head_object(Bucket=bucket, Key="k")

# Bad configurations.
def put_versioning(configuration, **extra):
    return s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=configuration, **extra)


assert code_of(lambda: put_versioning({"Status": "Enabled", "MFADelete": "Enabled"})) == "AccessDenied"
assert code_of(lambda: s3.get_bucket_versioning(Bucket="no-such-bucket")) == "NoSuchBucket"
assert "Status" not in s3.get_bucket_versioning(Bucket=bucket), "a refused request changed nothing"

put_versioning({"Status": "Enabled"})
assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"

# The object written before versioning is the null version; new writes get ids.
assert s3.head_object(Bucket=bucket, Key="k")["VersionId"] == "null"
v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"version-1")["VersionId"]
v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"version-2")["VersionId"]
assert v1 != v2 and "null" not in (v1, v2)
assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"version-2"
got = s3.get_object(Bucket=bucket, Key="k", VersionId=v1)
assert got["Body"].read() == b"version-1" and got["VersionId"] == v1
assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"null-v0"
assert s3.head_object(Bucket=bucket, Key="k", VersionId=v2)["ContentLength"] == 9
assert code_of(lambda: s3.get_object(Bucket=bucket, Key="k", VersionId="0000000000000001")) == "NoSuchVersion"
assert code_of(lambda: s3.get_object(Bucket=bucket, Key="k", VersionId="garbage")) == "InvalidArgument"

# CopyObject of an old version: the copy gets its own id and names the source version.
copy = s3.copy_object(
    Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "k", "VersionId": v1}
)
assert copy["CopySourceVersionId"] == v1 and copy["VersionId"] not in (v1, v2)
assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"version-1"

# Multipart completion returns the new version's id.
upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"mp-body")
done = s3.complete_multipart_upload(
    Bucket=bucket, Key="mp", UploadId=upload,
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
)
assert done["VersionId"] == s3.head_object(Bucket=bucket, Key="mp")["VersionId"]

# A delete adds a marker: the key reads as 404 with x-amz-delete-marker, the marker version 405.
deleted = s3.delete_object(Bucket=bucket, Key="k")
assert deleted["DeleteMarker"] is True
marker = deleted["VersionId"]
missing = error_of(lambda: s3.get_object(Bucket=bucket, Key="k"))
assert missing["Error"]["Code"] == "NoSuchKey"
assert headers_of(missing)["x-amz-delete-marker"] == "true"
assert headers_of(missing)["x-amz-version-id"] == marker
head_missing = error_of(lambda: s3.head_object(Bucket=bucket, Key="k"))
assert head_missing["ResponseMetadata"]["HTTPStatusCode"] == 404
assert headers_of(head_missing)["x-amz-delete-marker"] == "true"
on_marker = error_of(lambda: s3.get_object(Bucket=bucket, Key="k", VersionId=marker))
assert on_marker["ResponseMetadata"]["HTTPStatusCode"] == 405
assert on_marker["Error"]["Code"] == "MethodNotAllowed"
assert headers_of(on_marker)["x-amz-delete-marker"] == "true"
assert headers_of(on_marker)["x-amz-version-id"] == marker
assert s3.get_object(Bucket=bucket, Key="k", VersionId=v2)["Body"].read() == b"version-2"

# ListObjectVersions: key order, newest first, markers interleaved, IsLatest on the newest.
listing = s3.list_object_versions(Bucket=bucket, Prefix="k")
entries = sorted(
    [("v", v["VersionId"], v["IsLatest"]) for v in listing.get("Versions", [])]
    + [("m", m["VersionId"], m["IsLatest"]) for m in listing.get("DeleteMarkers", [])],
    key=lambda entry: [marker, v2, v1, "null"].index(entry[1]),
)
assert entries == [("m", marker, True), ("v", v2, False), ("v", v1, False), ("v", "null", False)], entries
assert [v["Size"] for v in listing["Versions"]] == [9, 9, 7]
assert listing["IsTruncated"] is False

# Paging with key-marker / version-id-marker, one entry per page, through boto3's paginator.
paged = []
for page in s3.get_paginator("list_object_versions").paginate(
    Bucket=bucket, Prefix="k", PaginationConfig={"PageSize": 1}
):
    paged += [v["VersionId"] for v in page.get("Versions", [])]
    paged += [m["VersionId"] for m in page.get("DeleteMarkers", [])]
assert paged == [marker, v2, v1, "null"], paged
page = s3.list_object_versions(Bucket=bucket, Prefix="k", KeyMarker="k", VersionIdMarker=v2)
assert [v["VersionId"] for v in page["Versions"]] == [v1, "null"]
assert code_of(lambda: s3.list_object_versions(Bucket=bucket, VersionIdMarker=v2)) == "InvalidArgument"

# Delimiter and encoding-type=url.
s3.put_object(Bucket=bucket, Key="dir/a b", Body=b"x")
s3.put_object(Bucket=bucket, Key="dir/sub/c", Body=b"y")
rolled = s3.list_object_versions(Bucket=bucket, Prefix="dir/", Delimiter="/")
assert [v["Key"] for v in rolled["Versions"]] == ["dir/a b"]
assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["dir/sub/"]
encoded = s3.list_object_versions(Bucket=bucket, Prefix="dir/a", EncodingType="url")
assert encoded["EncodingType"] == "url"
# boto3 decodes only the encoding it asked for itself (it sends encoding-type=url on every
# ListObjectVersions); one the caller asked for reaches the caller as sent.
assert [v["Key"] for v in encoded["Versions"]] == ["dir/a%20b"], encoded["Versions"]

# Deleting a version permanently: the next newest becomes current again.
removed = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
assert removed["VersionId"] == marker and removed["DeleteMarker"] is True
assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"version-2"
removed = s3.delete_object(Bucket=bucket, Key="k", VersionId=v2)
assert removed["VersionId"] == v2 and "DeleteMarker" not in removed
assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"version-1"

# DeleteObjects reports markers it created and versions it removed.
result = s3.delete_objects(
    Bucket=bucket,
    Delete={"Objects": [{"Key": "copy"}, {"Key": "k", "VersionId": v1}]},
)
by_key = {entry["Key"]: entry for entry in result["Deleted"]}
assert by_key["copy"]["DeleteMarker"] is True and by_key["copy"]["DeleteMarkerVersionId"]
assert by_key["k"]["VersionId"] == v1
assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"null-v0"

# Suspended: new writes replace the null version; deletes add a null marker.
put_versioning({"Status": "Suspended"})
assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
s3.put_object(Bucket=bucket, Key="k", Body=b"null-v1")
assert s3.head_object(Bucket=bucket, Key="k")["VersionId"] == "null"
assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"null-v1"
deleted = s3.delete_object(Bucket=bucket, Key="k")
assert deleted["DeleteMarker"] is True and deleted["VersionId"] == "null"
missing = error_of(lambda: s3.get_object(Bucket=bucket, Key="k"))
assert headers_of(missing)["x-amz-version-id"] == "null"
versions = s3.list_object_versions(Bucket=bucket, Prefix="k")
assert [m["VersionId"] for m in versions["DeleteMarkers"]] == ["null"]
assert "Versions" not in versions, "the null object was replaced by the null marker"

# Clean up every version so the bucket can go.
for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
    for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])
s3.delete_bucket(Bucket=bucket)
print("versioning: ok")
