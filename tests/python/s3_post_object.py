"""POST object (browser-based uploads) through boto3's generate_presigned_post and `requests`:
the form boto3 signs (SigV4 POST policy) is sent as multipart/form-data the way a browser would.
Covers the happy path read back byte-exact, ${filename}, metadata and Content-Type, tagging,
success_action_status 201 (PostResponse XML) and success_action_redirect (303), the refusals
(content-length-range both ways, a failed starts-with, an expired policy, a bad signature, an
unknown key, a field the policy does not cover, a missing file) with AWS's status, code and
message, each storing nothing, and anonymous POSTs: refused, then allowed by a bucket policy.

Usage: s3_post_object.py ENDPOINT ACCESS_KEY SECRET_KEY"""
import json
import os
import sys
import xml.etree.ElementTree as ElementTree

import requests
from botocore.exceptions import ClientError

from s3client import client

endpoint, access_key, secret_key = sys.argv[1:4]
s3 = client(endpoint, access_key, secret_key, retries={"total_max_attempts": 1})
bucket = "py-post"
s3.create_bucket(Bucket=bucket)


def error_of(response):
    """(status, code, message) of an S3 error response."""
    document = ElementTree.fromstring(response.content)
    return response.status_code, document.findtext("Code"), document.findtext("Message")


def absent(key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 404, error.response
        return True
    return False


def post(presigned, data, filename="photo.txt", extra_fields=None):
    fields = dict(presigned["fields"])
    fields.update(extra_fields or {})
    # requests sends the data fields first and the file last, as S3 requires.
    return requests.post(
        presigned["url"], data=fields, files={"file": (filename, data)}, allow_redirects=False
    )


# Happy path: ${filename}, metadata, Content-Type, tagging; 204 with ETag and Location.
payload = os.urandom(300_000)
tagging = "<Tagging><TagSet><Tag><Key>team</Key><Value>web</Value></Tag></TagSet></Tagging>"
presigned = s3.generate_presigned_post(
    bucket,
    "uploads/${filename}",
    Fields={"Content-Type": "image/png", "x-amz-meta-color": "blue", "tagging": tagging},
    Conditions=[
        {"Content-Type": "image/png"},
        ["starts-with", "$x-amz-meta-color", ""],
        {"tagging": tagging},
        ["content-length-range", 1, 1_000_000],
    ],
    ExpiresIn=600,
)
assert presigned["url"].endswith(f"/{bucket}"), presigned["url"]
response = post(presigned, payload, filename="cat.png")
assert response.status_code == 204, (response.status_code, response.text)
etag = response.headers["ETag"]
assert response.headers["Location"].endswith(f"/{bucket}/uploads/cat.png"), response.headers
stored = s3.get_object(Bucket=bucket, Key="uploads/cat.png")
assert stored["Body"].read() == payload
assert stored["ETag"] == etag, (stored["ETag"], etag)
assert stored["ContentType"] == "image/png", stored["ContentType"]
assert stored["Metadata"] == {"color": "blue"}, stored["Metadata"]
assert s3.get_object_tagging(Bucket=bucket, Key="uploads/cat.png")["TagSet"] == [
    {"Key": "team", "Value": "web"}
]

# success_action_status 201: the PostResponse document.
presigned = s3.generate_presigned_post(
    bucket,
    "created.bin",
    Fields={"success_action_status": "201"},
    Conditions=[{"success_action_status": "201"}],
)
response = post(presigned, b"created")
assert response.status_code == 201, (response.status_code, response.text)
document = ElementTree.fromstring(response.content)
assert document.tag == "PostResponse", response.text
assert document.findtext("Bucket") == bucket
assert document.findtext("Key") == "created.bin"
assert document.findtext("ETag") == s3.head_object(Bucket=bucket, Key="created.bin")["ETag"]
assert document.findtext("Location").endswith(f"/{bucket}/created.bin"), response.text

# success_action_redirect: 303 to the URL with bucket, key and etag.
presigned = s3.generate_presigned_post(
    bucket,
    "redirected.bin",
    Fields={"success_action_redirect": "http://example.com/done?from=form"},
    Conditions=[["starts-with", "$success_action_redirect", "http://example.com/"]],
)
response = post(presigned, b"redirected")
assert response.status_code == 303, (response.status_code, response.text)
location = response.headers["Location"]
etag = s3.head_object(Bucket=bucket, Key="redirected.bin")["ETag"]
assert location.startswith("http://example.com/done?from=form&bucket=py-post&key=redirected.bin&etag="), location
assert location.endswith(requests.utils.quote(etag, safe="")), (location, etag)

# content-length-range refused both ways: nothing stored.
presigned = s3.generate_presigned_post(
    bucket, "ranged.bin", Conditions=[["content-length-range", 10, 100]]
)
status, code, _ = error_of(post(presigned, b"x" * 101))
assert (status, code) == (400, "EntityTooLarge"), (status, code)
status, code, _ = error_of(post(presigned, b"x" * 9))
assert (status, code) == (400, "EntityTooSmall"), (status, code)
assert absent("ranged.bin")
assert post(presigned, b"x" * 100).status_code == 204

# A failed starts-with condition.
presigned = s3.generate_presigned_post(
    bucket,
    "typed.bin",
    Fields={"Content-Type": "text/html"},
    Conditions=[["starts-with", "$Content-Type", "image/"]],
)
status, code, message = error_of(post(presigned, b"<html>"))
assert (status, code) == (403, "AccessDenied"), (status, code)
assert message.startswith("Invalid according to Policy: Policy Condition failed:"), message
assert "starts-with" in message and "image/" in message, message
assert absent("typed.bin")

# An expired policy.
presigned = s3.generate_presigned_post(bucket, "late.bin", ExpiresIn=-60)
status, code, message = error_of(post(presigned, b"late"))
assert (status, code, message) == (403, "AccessDenied", "Invalid according to Policy: Policy expired."), (
    status, code, message)
assert absent("late.bin")

# A bad signature, and a policy changed after signing.
presigned = s3.generate_presigned_post(bucket, "forged.bin")
signature = presigned["fields"]["x-amz-signature"]
forged = ("0" if signature[0] != "0" else "1") + signature[1:]
status, code, _ = error_of(post(presigned, b"forged", extra_fields={"x-amz-signature": forged}))
assert (status, code) == (403, "SignatureDoesNotMatch"), (status, code)
other = s3.generate_presigned_post(bucket, "other.bin")
status, code, _ = error_of(post(presigned, b"forged", extra_fields={"policy": other["fields"]["policy"]}))
assert (status, code) == (403, "SignatureDoesNotMatch"), (status, code)
assert absent("forged.bin")

# An unknown access key.
stranger = client(endpoint, "AKIDUNKNOWN000000000", "no-such-secret")
presigned = stranger.generate_presigned_post(bucket, "stranger.bin")
status, code, _ = error_of(post(presigned, b"stranger"))
assert (status, code) == (403, "InvalidAccessKeyId"), (status, code)
assert absent("stranger.bin")

# A field the policy does not name; x-ignore- fields need no condition.
presigned = s3.generate_presigned_post(bucket, "extra.bin")
status, code, message = error_of(post(presigned, b"extra", extra_fields={"acl": "public-read"}))
assert (status, code) == (403, "AccessDenied"), (status, code)
assert message == "Invalid according to Policy: Extra input fields: acl", message
assert absent("extra.bin")
response = post(presigned, b"ignored", extra_fields={"x-ignore-tracking": "1"})
assert response.status_code == 204, response.text

# A form without a file.
presigned = s3.generate_presigned_post(bucket, "nofile.bin")
response = requests.post(presigned["url"], files={name: (None, value) for name, value in presigned["fields"].items()})
status, code, _ = error_of(response)
assert (status, code) == (400, "InvalidArgument"), (status, code, response.text)
assert absent("nofile.bin")

# Anonymous: refused without a bucket policy that allows it, accepted with one.
anonymous_fields = {"key": "public/${filename}"}
response = requests.post(f"{endpoint}/{bucket}", data=anonymous_fields, files={"file": ("anon.txt", b"anon")})
status, code, _ = error_of(response)
assert (status, code) == (403, "AccessDenied"), (status, code)
assert absent("public/anon.txt")
s3.put_bucket_policy(
    Bucket=bucket,
    Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{bucket}/public/*",
        }],
    }),
)
response = requests.post(f"{endpoint}/{bucket}", data=anonymous_fields, files={"file": ("anon.txt", b"anon")})
assert response.status_code == 204, (response.status_code, response.text)
assert s3.get_object(Bucket=bucket, Key="public/anon.txt")["Body"].read() == b"anon"
# The policy allows public/ only.
response = requests.post(f"{endpoint}/{bucket}", data={"key": "private.txt"}, files={"file": ("p", b"p")})
assert error_of(response)[:2] == (403, "AccessDenied"), response.text

print("s3_post_object.py: ok")
