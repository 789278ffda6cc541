"""Same-region replication through one S3 endpoint, driven by tests/tests/cluster.rs against a
`cairn cluster up` cluster whose replicator is configured by the cluster file only.

usage: replication_same_region.py ENDPOINT ACCESS_KEY SECRET_KEY

Creates versioned buckets `same-src` and `same-dst`, a rule from the first to the second, writes
one object and waits (generous deadline: the machine is loaded) until the source version reads
COMPLETED and the destination holds a REPLICA with the same bytes and ETag.
"""
import sys
import time

from s3client import client

endpoint, access, secret = sys.argv[1:4]
s3 = client(endpoint, access, secret, retries={"max_attempts": 3, "mode": "standard"})
for bucket in ("same-src", "same-dst"):
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
s3.put_bucket_replication(
    Bucket="same-src",
    ReplicationConfiguration={
        "Role": "arn:aws:iam::123456789012:role/replication",
        "Rules": [
            {
                "ID": "all",
                "Priority": 1,
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "Destination": {"Bucket": "arn:aws:s3:::same-dst"},
                "DeleteMarkerReplication": {"Status": "Disabled"},
            }
        ],
    },
)
body = b"replicated by the cluster file's replicator\n" * 1000
put = s3.put_object(Bucket="same-src", Key="k", Body=body)
deadline = time.monotonic() + 180
while True:
    head = s3.head_object(Bucket="same-src", Key="k", VersionId=put["VersionId"])
    status = head.get("ReplicationStatus")
    assert status != "FAILED", "replication FAILED"
    if status == "COMPLETED":
        break
    assert time.monotonic() < deadline, f"still {status}"
    time.sleep(0.5)
replica = s3.get_object(Bucket="same-dst", Key="k")
assert replica["Body"].read() == body
assert replica["ETag"] == put["ETag"], (replica["ETag"], put["ETag"])
assert replica.get("ReplicationStatus") == "REPLICA", replica.get("ReplicationStatus")
