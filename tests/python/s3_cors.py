"""boto3 against a running Cairn: Put/Get/DeleteBucketCors, preflight OPTIONS on object and
bucket paths (200 with the matching rule's headers, 403 AccessForbidden without a match or a
configuration, 400 without Origin), and CORS headers on actual requests.

Usage: s3_cors.py ENDPOINT ACCESS_KEY SECRET_KEY. Exits non-zero on the first failed check.
"""
import sys
import urllib.error
import urllib.request


import s3client
from s3client import failure

endpoint, access_key, secret_key = sys.argv[1:4]
s3 = s3client.client(endpoint, access_key, secret_key, retries={"total_max_attempts": 1})
bucket = "py-cors"


def options(path, headers):
    request = urllib.request.Request(f"{endpoint}{path}", method="OPTIONS", headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


s3.create_bucket(Bucket=bucket)
s3.put_object(Bucket=bucket, Key="page.html", Body=b"<p>hi</p>")
assert failure(lambda: s3.get_bucket_cors(Bucket=bucket)) == ("NoSuchCORSConfiguration", 404)
status, _, body = options(f"/{bucket}/page.html", {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"})
assert status == 403 and b"AccessForbidden" in body, (status, body)

rules = [
    {"ID": "app", "AllowedOrigins": ["https://*.example.com"], "AllowedMethods": ["GET", "PUT"],
     "AllowedHeaders": ["x-amz-*", "content-type"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 300},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD"]},
]
s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
stored = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
assert stored[0]["ID"] == "app" and stored[0]["AllowedOrigins"] == ["https://*.example.com"], stored
assert stored[0]["MaxAgeSeconds"] == 300 and stored[1]["AllowedMethods"] == ["HEAD"], stored

# Preflight on an object path: the first matching rule's headers.
status, headers, _ = options(f"/{bucket}/page.html", {
    "Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT",
    "Access-Control-Request-Headers": "Content-Type, X-Amz-Date"})
assert status == 200, status
assert headers["access-control-allow-origin"] == "https://app.example.com", headers
assert headers["access-control-allow-methods"] == "GET, PUT", headers
assert headers["access-control-allow-headers"] == "content-type, x-amz-date", headers
assert headers["access-control-max-age"] == "300" and headers["access-control-expose-headers"] == "ETag", headers
# On the bucket path, the wildcard rule answers with `*`.
status, headers, _ = options(f"/{bucket}", {"Origin": "https://other.test", "Access-Control-Request-Method": "HEAD"})
assert status == 200 and headers["access-control-allow-origin"] == "*", (status, headers)
# No rule: a method, an origin or a header not allowed.
for headers in [
    {"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"},
    {"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"},
    {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"},
]:
    status, _, body = options(f"/{bucket}/page.html", headers)
    assert status == 403 and b"<Code>AccessForbidden</Code>" in body, (headers, status, body)
status, _, body = options(f"/{bucket}/page.html", {"Access-Control-Request-Method": "GET"})
assert status == 400, (status, body)
status, _, _ = options("/py-cors-no-such-bucket/x", {"Origin": "https://a.example.com", "Access-Control-Request-Method": "GET"})
assert status == 404, status

# Actual requests with an Origin get the headers (the SDK passes extra headers through events).
def add_origin(request, **_):
    request.headers["Origin"] = "https://app.example.com"


s3.meta.events.register("before-sign.s3.GetObject", add_origin)
answer = s3.get_object(Bucket=bucket, Key="page.html")
assert answer["ResponseMetadata"]["HTTPHeaders"]["access-control-allow-origin"] == "https://app.example.com", answer["ResponseMetadata"]
s3.meta.events.unregister("before-sign.s3.GetObject", add_origin)
answer = s3.get_object(Bucket=bucket, Key="page.html")
assert "access-control-allow-origin" not in answer["ResponseMetadata"]["HTTPHeaders"]

# Invalid configurations.
bad_method = {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]}
assert failure(lambda: s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=bad_method)) == ("InvalidRequest", 400)
assert len(s3.get_bucket_cors(Bucket=bucket)["CORSRules"]) == 2

s3.delete_bucket_cors(Bucket=bucket)
assert failure(lambda: s3.get_bucket_cors(Bucket=bucket)) == ("NoSuchCORSConfiguration", 404)
status, _, _ = options(f"/{bucket}/page.html", {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"})
assert status == 403
s3.delete_object(Bucket=bucket, Key="page.html")
s3.delete_bucket(Bucket=bucket)
print("cors: ok")
