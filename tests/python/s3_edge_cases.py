"""boto3 against a running Cairn: the S3 edge cases of issue 6 not covered elsewhere — keys with
`//`, a leading `/`-free path of only slashes, `%`, `+`, spaces and Unicode (written, listed,
read, copied and deleted); ListObjectsV2 with MaxKeys=0; an empty object; a single PUT over
5 GiB refused from its Content-Length (EntityTooLarge) before any body is read; part number
10,001 refused (InvalidArgument); a non-last part under 5 MiB refused at completion
(EntityTooSmall).

Usage: s3_edge_cases.py ENDPOINT ACCESS_KEY SECRET_KEY. Exits non-zero on the first failed check.
"""
import http.client
import sys
import urllib.parse


import s3client
from s3client import failure

endpoint, access_key, secret_key = sys.argv[1:4]
s3 = s3client.client(endpoint, access_key, secret_key, retries={"total_max_attempts": 1})
bucket = "py-edge-cases"
MiB = 1024 * 1024


s3.create_bucket(Bucket=bucket)
keys = [
    "a//b",
    "//leading",
    "trailing//",
    "100% sure",
    "1+1=2",
    "with space",
    "日本語/ключ/é",
    "mixed //+% ü",
]
for index, key in enumerate(keys):
    s3.put_object(Bucket=bucket, Key=key, Body=f"body {index}".encode())
listed = [entry["Key"] for entry in s3.list_objects_v2(Bucket=bucket)["Contents"]]
assert listed == sorted(keys, key=lambda k: k.encode()), listed
for index, key in enumerate(keys):
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == f"body {index}".encode(), key
    s3.copy_object(Bucket=bucket, Key=key + ".copy", CopySource={"Bucket": bucket, "Key": key})
    assert s3.head_object(Bucket=bucket, Key=key + ".copy")["ContentLength"] == len(f"body {index}"), key
# URL-encoded listings carry the same keys.
encoded = s3.list_objects_v2(Bucket=bucket, EncodingType="url", Prefix="a//")
assert [entry["Key"] for entry in encoded["Contents"]] == ["a//b", "a//b.copy"], encoded["Contents"]

# MaxKeys=0: an empty, untruncated page.
empty_page = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
assert empty_page["KeyCount"] == 0 and "Contents" not in empty_page, empty_page
assert empty_page["IsTruncated"] is False, empty_page

# An empty object.
s3.put_object(Bucket=bucket, Key="empty", Body=b"")
head = s3.head_object(Bucket=bucket, Key="empty")
assert head["ContentLength"] == 0 and head["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"', head
assert s3.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""

# A single PUT over 5 GiB: refused from its Content-Length, no body sent.
url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "huge"}, ExpiresIn=300)
parsed = urllib.parse.urlsplit(url)
connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
connection.putrequest("PUT", f"{parsed.path}?{parsed.query}", skip_accept_encoding=True)
connection.putheader("Content-Length", str(5 * 1024 * MiB + 1))
connection.endheaders()
response = connection.getresponse()
body = response.read()
assert response.status == 400 and b"<Code>EntityTooLarge</Code>" in body, (response.status, body)
connection.close()
assert failure(lambda: s3.head_object(Bucket=bucket, Key="huge")) == ("404", 404)

# Multipart: part 10,001 is refused; a small non-last part fails the completion.
upload = s3.create_multipart_upload(Bucket=bucket, Key="parts")["UploadId"]
assert failure(lambda: s3.upload_part(Bucket=bucket, Key="parts", UploadId=upload, PartNumber=10001, Body=b"x")) == (
    "InvalidArgument", 400)
assert failure(lambda: s3.upload_part(Bucket=bucket, Key="parts", UploadId=upload, PartNumber=0, Body=b"x")) == (
    "InvalidArgument", 400)
first = s3.upload_part(Bucket=bucket, Key="parts", UploadId=upload, PartNumber=1, Body=b"small")["ETag"]
last = s3.upload_part(Bucket=bucket, Key="parts", UploadId=upload, PartNumber=10000, Body=b"last")["ETag"]
parts = {"Parts": [{"PartNumber": 1, "ETag": first}, {"PartNumber": 10000, "ETag": last}]}
assert failure(lambda: s3.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload,
                                                    MultipartUpload=parts)) == ("EntityTooSmall", 400)
# Parts of at least 5 MiB (but the last) complete.
big = s3.upload_part(Bucket=bucket, Key="parts", UploadId=upload, PartNumber=1, Body=b"p" * (5 * MiB))["ETag"]
parts = {"Parts": [{"PartNumber": 1, "ETag": big}, {"PartNumber": 10000, "ETag": last}]}
s3.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload, MultipartUpload=parts)
assert s3.head_object(Bucket=bucket, Key="parts")["ContentLength"] == 5 * MiB + 4
for key in keys:
    s3.delete_object(Bucket=bucket, Key=key)
    assert failure(lambda: s3.head_object(Bucket=bucket, Key=key)) == ("404", 404), key
print("edge cases: ok")
