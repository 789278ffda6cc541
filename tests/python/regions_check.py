"""Two regions (two `cairn dev`, one holding the global bucket service) behind one `cairn edge`,
driven by boto3; run by tests/tests/edge.rs.

usage: regions_check.py MODE EDGE_URL EAST_URL WEST_URL CA_BUNDLE ACCESS_KEY SECRET_KEY

East is us-east-1 (holds the bucket directory), west is us-west-2. Clients sign for the region
they talk to, as AWS SDKs do; through the edge a client signs for its bucket's region.

modes:
  routing    buckets in both regions through the edge (objects, listing, GetBucketLocation),
             names unique across regions, CreateBucket's LocationConstraint rules and the 301
             PermanentRedirect a region answers for another region's bucket
  east_only  (west stopped) the east bucket still works through the edge, the west one fails
  moved      a bucket the edge knows in east is deleted and recreated in west behind its back:
             the edge follows it (never serving the old region's data), then a deleted bucket
             is NoSuchBucket
"""
import sys

import boto3
import botocore.exceptions
from botocore.config import Config

from s3client import signed

EAST, WEST = "us-east-1", "us-west-2"


class Args:
    def __init__(self, argv):
        (self.mode, self.edge, self.east, self.west, self.ca, self.access, self.secret) = argv[:7]


def client(args, endpoint, region):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=args.access,
        aws_secret_access_key=args.secret,
        region_name=region,
        verify=args.ca if endpoint.startswith("https") else None,
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )


def expect_error(what, code, status, call):
    try:
        call()
    except botocore.exceptions.ClientError as error:
        got_code = error.response.get("Error", {}).get("Code")
        got_status = error.response["ResponseMetadata"]["HTTPStatusCode"]
        assert got_status == status, f"{what}: status {got_status} ({got_code}), expected {status}"
        assert code is None or got_code == code, f"{what}: code {got_code}, expected {code}"
        return error
    raise AssertionError(f"{what}: succeeded, expected {code}")


def get_body(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def routing(args):
    edge_east = client(args, args.edge, EAST)
    edge_west = client(args, args.edge, WEST)
    east = client(args, args.east, EAST)
    west = client(args, args.west, WEST)

    # Buckets created through the edge land in the region the client signed for.
    edge_east.create_bucket(Bucket="region-east")
    edge_west.create_bucket(
        Bucket="region-west", CreateBucketConfiguration={"LocationConstraint": WEST}
    )
    for index in range(3):
        edge_east.put_object(Bucket="region-east", Key=f"k{index}", Body=b"east-%d" % index)
        edge_west.put_object(Bucket="region-west", Key=f"k{index}", Body=b"west-%d" % index)
    for index in range(3):
        assert get_body(edge_east, "region-east", f"k{index}") == b"east-%d" % index
        assert get_body(edge_west, "region-west", f"k{index}") == b"west-%d" % index
    listed = edge_west.list_objects_v2(Bucket="region-west")
    assert [item["Key"] for item in listed["Contents"]] == ["k0", "k1", "k2"], listed

    # Each region's own gateway holds its own objects (the other region redirects).
    assert get_body(west, "region-west", "k0") == b"west-0"
    assert get_body(east, "region-east", "k0") == b"east-0"
    error = expect_error(
        "west bucket at the east gateway", None, 301, lambda: east_signed_for_west(args).head_bucket(Bucket="region-west")
    )
    assert error.response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-bucket-region") == WEST
    # Signed for the wrong region: 400 AuthorizationHeaderMalformed naming the right region in
    # <Region>, as S3 does; SDKs read it and sign again for that region.
    status, body = signed(args.west, "GET", "/region-west/k0", args.access, args.secret, region=EAST)
    assert status == 400, (status, body)
    assert b"<Code>AuthorizationHeaderMalformed</Code>" in body, body
    assert b"<Region>us-west-2</Region>" in body, body
    assert get_body(client(args, args.west, EAST), "region-west", "k0") == b"west-0"

    # GetBucketLocation answers in every region; ListBuckets shows the global directory.
    for s3 in (east, west, edge_east):
        assert s3.get_bucket_location(Bucket="region-west")["LocationConstraint"] == WEST
        assert s3.get_bucket_location(Bucket="region-east")["LocationConstraint"] in (None, "")
    names = {bucket["Name"] for bucket in west.list_buckets()["Buckets"]}
    assert {"region-east", "region-west"} <= names, names

    # Names are global: taken in one region means taken in the other.
    expect_error(
        "east name in west",
        "BucketAlreadyOwnedByYou",
        409,
        lambda: edge_west.create_bucket(
            Bucket="region-east", CreateBucketConfiguration={"LocationConstraint": WEST}
        ),
    )
    expect_error(
        "west name in east",
        "BucketAlreadyOwnedByYou",
        409,
        lambda: east.create_bucket(Bucket="region-west"),
    )
    # LocationConstraint rules of regional endpoints.
    expect_error(
        "other region's constraint",
        "IllegalLocationConstraintException",
        400,
        lambda: west.create_bucket(
            Bucket="region-elsewhere", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        ),
    )
    expect_error(
        "no constraint outside us-east-1",
        "IllegalLocationConstraintException",
        400,
        lambda: west.create_bucket(Bucket="region-elsewhere"),
    )
    expect_error(
        "not a region",
        "InvalidLocationConstraint",
        400,
        lambda: west.create_bucket(
            Bucket="region-elsewhere", CreateBucketConfiguration={"LocationConstraint": "No Such"}
        ),
    )
    expect_error("nothing created", None, 404, lambda: west.head_bucket(Bucket="region-elsewhere"))
    print("routing ok")


def east_signed_for_west(args):
    """A client talking to the east gateway but signing for us-west-2 (as an SDK does once it
    knows the bucket's region)."""
    return client(args, args.east, WEST)


def east_only(args):
    edge_east = client(args, args.edge, EAST)
    edge_west = client(args, args.edge, WEST)
    for index in range(3):
        assert get_body(edge_east, "region-east", f"k{index}") == b"east-%d" % index
    edge_east.put_object(Bucket="region-east", Key="while-west-down", Body=b"still here")
    try:
        # A listing: never answered from the edge's hot-object cache.
        edge_west.list_objects_v2(Bucket="region-west")
    except botocore.exceptions.ClientError as error:
        status = error.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status >= 500, f"west down: status {status}"
    else:
        raise AssertionError("the stopped region answered")
    print("east_only ok")


def moved(args):
    edge_east = client(args, args.edge, EAST)
    edge_west = client(args, args.edge, WEST)
    east = client(args, args.east, EAST)
    west = client(args, args.west, WEST)

    edge_east.create_bucket(Bucket="moving")
    edge_east.put_object(Bucket="moving", Key="k", Body=b"from east")
    # The edge learns moving -> us-east-1 (a listing is never served from the hot cache).
    assert [item["Key"] for item in edge_east.list_objects_v2(Bucket="moving")["Contents"]] == ["k"]

    # Behind the edge's back: deleted in east, recreated in west with other data.
    east.delete_object(Bucket="moving", Key="k")
    east.delete_bucket(Bucket="moving")
    west.create_bucket(Bucket="moving", CreateBucketConfiguration={"LocationConstraint": WEST})
    west.put_object(Bucket="moving", Key="k", Body=b"from west")

    # The edge still says east; east answers 301 (the bucket is in west now) and the edge
    # refreshes and retries in west.
    assert get_body(edge_west, "moving", "k") == b"from west"
    listed = edge_west.list_objects_v2(Bucket="moving")
    assert [item["Key"] for item in listed["Contents"]] == ["k"], listed
    # Writes through the edge go to west from now on.
    edge_west.put_object(Bucket="moving", Key="k2", Body=b"via edge")
    assert get_body(west, "moving", "k2") == b"via edge"

    # Deleted in west behind the edge's back: NoSuchBucket, from whichever region.
    for key in ("k", "k2"):
        west.delete_object(Bucket="moving", Key=key)
    west.delete_bucket(Bucket="moving")
    expect_error("deleted bucket", "NoSuchBucket", 404, lambda: edge_west.get_object(Bucket="moving", Key="k"))
    print("moved ok")


def main():
    args = Args(sys.argv[1:])
    {"routing": routing, "east_only": east_only, "moved": moved}[args.mode](args)


if __name__ == "__main__":
    main()
