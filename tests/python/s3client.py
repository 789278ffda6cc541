"""The boto3 client every test script uses: path-style addressing, SigV4 everywhere (boto3 would
presign with SigV2, which Cairn refuses), region us-east-1; `retries` and further botocore
`Config` settings vary per script; plus the helpers the scripts share: the S3 error of a failing
call, and unsigned or hand-signed raw requests (for what boto3 would not send)."""
import urllib.error
import urllib.request

import boto3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError


def client(endpoint, access_key, secret_key, retries=None, **config):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries=retries or {"max_attempts": 2},
            **config,
        ),
    )


def failure(call):
    """The (S3 error code, HTTP status) of `call`, which must fail."""
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("the call succeeded")


def _send(request):
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def anonymous(endpoint, method, path, body=None):
    """An unsigned request: (status, body)."""
    return _send(urllib.request.Request(f"{endpoint}{path}", data=body, method=method))


def signed(endpoint, method, path, key, secret, body=None, headers=None, region="us-east-1"):
    """A SigV4-signed request without an SDK's retries, redirects or checks (a malformed
    document, a scope for another region): (status, body)."""
    request = AWSRequest(method=method, url=f"{endpoint}{path}", data=body, headers=headers or {})
    S3SigV4Auth(Credentials(key, secret), "s3", region).add_auth(request)
    prepared = request.prepare()
    return _send(urllib.request.Request(prepared.url, data=body, method=method,
                                        headers=dict(prepared.headers)))
