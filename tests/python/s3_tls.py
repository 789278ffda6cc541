"""boto3 against a gateway serving S3 over TLS, driven by tests/tests/internal_tls.rs.

usage: s3_tls.py HTTPS_URL CA_BUNDLE ACCESS_KEY SECRET_KEY

Checks: a bucket and object round trip (incl. a 6 MiB multipart upload) with the CA bundle as
trust root; without it the client refuses the certificate (no request is made in the clear).
"""
import hashlib
import os
import sys

import boto3
import botocore.exceptions
from botocore.config import Config

url, ca_bundle, access_key, secret_key = sys.argv[1:5]
s3 = boto3.client(
    "s3",
    endpoint_url=url,
    aws_access_key_id=access_key,
    aws_secret_access_key=secret_key,
    region_name="us-east-1",
    verify=ca_bundle,
    config=Config(
        s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 2}
    ),
)
s3.create_bucket(Bucket="tls-bucket")
body = os.urandom(6 * 1024 * 1024 + 17)
s3.put_object(Bucket="tls-bucket", Key="small", Body=b"hello over tls")
assert s3.get_object(Bucket="tls-bucket", Key="small")["Body"].read() == b"hello over tls"
upload = s3.create_multipart_upload(Bucket="tls-bucket", Key="big")["UploadId"]
parts = []
for number, start in enumerate(range(0, len(body), 5 * 1024 * 1024), start=1):
    part = s3.upload_part(
        Bucket="tls-bucket",
        Key="big",
        UploadId=upload,
        PartNumber=number,
        Body=body[start : start + 5 * 1024 * 1024],
    )
    parts.append({"ETag": part["ETag"], "PartNumber": number})
s3.complete_multipart_upload(
    Bucket="tls-bucket", Key="big", UploadId=upload, MultipartUpload={"Parts": parts}
)
read = s3.get_object(Bucket="tls-bucket", Key="big")["Body"].read()
assert hashlib.sha256(read).digest() == hashlib.sha256(body).digest()
keys = [item["Key"] for item in s3.list_objects_v2(Bucket="tls-bucket")["Contents"]]
assert keys == ["big", "small"], keys

# Without the CA bundle the system trust store does not know the cluster CA: refused.
untrusting = boto3.client(
    "s3",
    endpoint_url=url,
    aws_access_key_id=access_key,
    aws_secret_access_key=secret_key,
    region_name="us-east-1",
    config=Config(retries={"max_attempts": 1}),
)
try:
    untrusting.list_buckets()
except botocore.exceptions.SSLError:
    pass
else:
    raise AssertionError("a client without the CA bundle accepted the certificate")
print("ok")
