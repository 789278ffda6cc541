"""Cross-region replication between two `cairn dev` regions, driven by boto3; run by
tests/tests/replication.rs.

usage: replication_check.py MODE EAST_URL WEST_URL ACCESS_KEY SECRET_KEY STATE_FILE
                           OTHER_ACCESS_KEY OTHER_SECRET_KEY

ACCESS_KEY is the owner of both buckets; OTHER_* belongs to another user.

East (us-east-1) holds bucket `repl-src` (versioned, with a replication rule to `repl-dst`);
west (us-west-2) holds `repl-dst` (versioned). STATE_FILE (JSON) carries what each phase wrote
to the later phases.

modes:
  setup      PutBucketReplication's validation (unversioned source, missing or unversioned
             destination, malformed documents, 404 before a configuration), then the rule;
             GetBucketReplication returns it; versioning cannot be suspended under it
  write NAME objects written in the source: a PUT with metadata and tags, a multipart upload,
             a CopyObject, a delete marker, and a key outside the rule's prefix; recorded
             under NAME in the state
  pending    every version written since the last `converge` still reads PENDING on the source
  replica_writes
             the destination's side of a replicator's write: a replica PUT retried with the same
             idempotency token makes one version (status REPLICA); a replica PUT and a replica
             delete marker keep the source version id they name, and ids that could clash (the
             key has it, this region's tag, untagged, malformed, no replica header) are refused;
             another user allowed s3:PutObject by a bucket policy but not s3:ReplicateObject is
             refused a replica write
  lock       object-lock settings travel with replicas: buckets `lock-src` (east) and `lock-dst`
             (west), both with object lock, a rule between them; a version with a GOVERNANCE
             retention and a legal hold, a multipart version with a legal hold, a version with
             neither; each replica has the source's retention (mode, date) and legal hold
  metadata   later metadata changes reach the replica of the version they change, in
             `lock-src` → `lock-dst` (after `lock`): three versions of one key with equal bytes
             (so only the source version id tells their replicas apart) get PutObjectTagging,
             DeleteObjectTagging, PutObjectAcl (grants and canned), PutObjectRetention and
             PutObjectLegalHold, then a GOVERNANCE retention shortened with the bypass and the
             hold lifted; each replica ends with its source version's tags, ACL, retention and
             legal hold, the sources COMPLETED, and no version added in the destination; the
             multipart version of `lock` has its hold lifted on its replica too
  converge   waits (generous deadline) until every recorded version is in the destination
             under the source's version id (as on S3) with equal bytes, ETag, content type,
             metadata and tags, status REPLICA there and COMPLETED on the source, delete
             markers replicated under their source ids, nothing outside the prefix replicated,
             and exactly one destination version per source version (no duplicates after
             retries and restarts)
"""
import datetime
import hashlib
import json
import sys
import time

import boto3
import botocore.exceptions
from botocore.config import Config

from s3client import failure, signed

EAST, WEST = "us-east-1", "us-west-2"
SOURCE, DESTINATION = "repl-src", "repl-dst"
PART = 5 * 1024 * 1024


def client(endpoint, region, access, secret):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name=region,
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


def rule_configuration(destination=DESTINATION):
    return {
        "Role": "arn:aws:iam::123456789012:role/replication",
        "Rules": [
            {
                "ID": "to-west",
                "Priority": 1,
                "Status": "Enabled",
                "Filter": {"Prefix": "r/"},
                "Destination": {"Bucket": f"arn:aws:s3:::{destination}"},
                "DeleteMarkerReplication": {"Status": "Enabled"},
            }
        ],
    }


def body(seed, size):
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def setup(east, west, east_keys):
    east.create_bucket(Bucket=SOURCE)
    west.create_bucket(
        Bucket=DESTINATION, CreateBucketConfiguration={"LocationConstraint": WEST}
    )
    east.create_bucket(Bucket="repl-unversioned")
    # No configuration yet.
    assert failure(lambda: east.get_bucket_replication(Bucket=SOURCE)) == (
        "ReplicationConfigurationNotFoundError",
        404,
    )
    # The source must be versioned.
    assert failure(
        lambda: east.put_bucket_replication(
            Bucket=SOURCE, ReplicationConfiguration=rule_configuration()
        )
    ) == ("InvalidRequest", 400)
    east.put_bucket_versioning(Bucket=SOURCE, VersioningConfiguration={"Status": "Enabled"})
    # The destination must exist, and be versioned.
    assert failure(
        lambda: east.put_bucket_replication(
            Bucket=SOURCE, ReplicationConfiguration=rule_configuration("repl-nowhere")
        )
    ) == ("InvalidRequest", 400)
    assert failure(
        lambda: east.put_bucket_replication(
            Bucket=SOURCE, ReplicationConfiguration=rule_configuration("repl-unversioned")
        )
    ) == ("InvalidRequest", 400)
    west.put_bucket_versioning(
        Bucket=DESTINATION, VersioningConfiguration={"Status": "Enabled"}
    )
    # The current schema needs DeleteMarkerReplication with a Filter; rule ids are unique.
    without_marker_setting = rule_configuration()
    del without_marker_setting["Rules"][0]["DeleteMarkerReplication"]
    assert failure(
        lambda: east.put_bucket_replication(
            Bucket=SOURCE, ReplicationConfiguration=without_marker_setting
        )
    ) == ("InvalidRequest", 400)
    twice = rule_configuration()
    twice["Rules"].append(dict(twice["Rules"][0], Priority=2))
    assert failure(
        lambda: east.put_bucket_replication(Bucket=SOURCE, ReplicationConfiguration=twice)
    ) == ("InvalidArgument", 400)
    # A malformed document (boto3 would not send one: a hand-signed request).
    status, answer = signed(
        east.meta.endpoint_url, "PUT", f"/{SOURCE}?replication", east_keys[0], east_keys[1],
        body=b"<ReplicationConfiguration><Rule><Status>On</Status></Rule>",
    )
    assert status == 400 and b"<Code>MalformedXML</Code>" in answer, (status, answer)
    assert failure(lambda: east.get_bucket_replication(Bucket=SOURCE))[1] == 404

    east.put_bucket_replication(Bucket=SOURCE, ReplicationConfiguration=rule_configuration())
    stored = east.get_bucket_replication(Bucket=SOURCE)["ReplicationConfiguration"]
    assert stored["Role"] == rule_configuration()["Role"], stored
    rule = stored["Rules"][0]
    assert rule["ID"] == "to-west" and rule["Status"] == "Enabled", rule
    assert rule["Destination"]["Bucket"] == f"arn:aws:s3:::{DESTINATION}", rule
    assert rule["Filter"] == {"Prefix": "r/"}, rule
    assert rule["DeleteMarkerReplication"] == {"Status": "Enabled"}, rule
    # Replication needs versioning: it cannot be suspended under a configuration.
    assert failure(
        lambda: east.put_bucket_versioning(
            Bucket=SOURCE, VersioningConfiguration={"Status": "Suspended"}
        )
    ) == ("InvalidBucketState", 409)
    return {"written": [], "markers": [], "outside": []}


def write(east, state, name):
    written = []
    key = f"r/{name}/plain"
    data = body(key, 100_000)
    put = east.put_object(
        Bucket=SOURCE,
        Key=key,
        Body=data,
        ContentType="text/x-cairn",
        Metadata={"color": "blue"},
        Tagging="team=storage&tier=gold",
    )
    written.append({"key": key, "version": put["VersionId"], "sha": hashlib.sha256(data).hexdigest()})

    key = f"r/{name}/multipart"
    upload = east.create_multipart_upload(
        Bucket=SOURCE, Key=key, ContentType="application/x-parts", Metadata={"parts": "two"}
    )
    first, second = body(key + "1", PART), body(key + "2", 1_234_567)
    parts = []
    for number, chunk in ((1, first), (2, second)):
        part = east.upload_part(
            Bucket=SOURCE, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=chunk
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    done = east.complete_multipart_upload(
        Bucket=SOURCE, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    written.append(
        {"key": key, "version": done["VersionId"], "sha": hashlib.sha256(first + second).hexdigest()}
    )

    key = f"r/{name}/copy"
    copied = east.copy_object(
        Bucket=SOURCE, Key=key, CopySource={"Bucket": SOURCE, "Key": f"r/{name}/plain"}
    )
    written.append({"key": key, "version": copied["VersionId"], "sha": written[0]["sha"]})

    key = f"r/{name}/deleted"
    data = body(key, 2_000)
    put = east.put_object(Bucket=SOURCE, Key=key, Body=data)
    written.append({"key": key, "version": put["VersionId"], "sha": hashlib.sha256(data).hexdigest()})
    marker = east.delete_object(Bucket=SOURCE, Key=key)
    assert marker.get("DeleteMarker"), marker

    key = f"outside/{name}"
    east.put_object(Bucket=SOURCE, Key=key, Body=b"not replicated")

    state["written"] += written
    state["markers"].append({"key": f"r/{name}/deleted", "version": marker["VersionId"]})
    state["outside"].append(key)
    state["recent"] = [entry["key"] for entry in written]
    return state


def pending(east, state):
    for entry in state["written"]:
        if entry["key"] not in state["recent"] or entry["key"].endswith("/deleted"):
            continue
        head = east.head_object(Bucket=SOURCE, Key=entry["key"], VersionId=entry["version"])
        assert head.get("ReplicationStatus") == "PENDING", (entry, head.get("ReplicationStatus"))


def converged(east, west, state):
    """None when everything is replicated, else what is still missing."""
    for entry in state["written"]:
        source = east.head_object(Bucket=SOURCE, Key=entry["key"], VersionId=entry["version"])
        assert source.get("ReplicationStatus") != "FAILED", f"{entry['key']}: FAILED"
        if source.get("ReplicationStatus") != "COMPLETED":
            return f"{entry['key']}: source status {source.get('ReplicationStatus')}"
        versions = west.list_object_versions(Bucket=DESTINATION, Prefix=entry["key"])
        replicas = [v for v in versions.get("Versions", []) if v["Key"] == entry["key"]]
        if not replicas:
            return f"{entry['key']}: not in the destination yet"
        matching = [v for v in replicas if v["ETag"] == source["ETag"]]
        assert len(matching) == 1, f"{entry['key']}: {len(matching)} replicas of one version"
        replica_version = matching[0]["VersionId"]
        # A replica keeps its source version's id (ids carry their region's tag).
        assert replica_version == entry["version"], (entry["key"], replica_version, entry["version"])
        got = west.get_object(Bucket=DESTINATION, Key=entry["key"], VersionId=replica_version)
        data = got["Body"].read()
        assert hashlib.sha256(data).hexdigest() == entry["sha"], entry["key"]
        assert got["ETag"] == source["ETag"], (entry["key"], got["ETag"], source["ETag"])
        assert got.get("ReplicationStatus") == "REPLICA", (entry["key"], got.get("ReplicationStatus"))
        assert got["ContentType"] == source["ContentType"], entry["key"]
        assert got["Metadata"] == source["Metadata"], entry["key"]
        source_tags = east.get_object_tagging(
            Bucket=SOURCE, Key=entry["key"], VersionId=entry["version"]
        )["TagSet"]
        replica_tags = west.get_object_tagging(
            Bucket=DESTINATION, Key=entry["key"], VersionId=replica_version
        )["TagSet"]
        assert sorted(t["Key"] + "=" + t["Value"] for t in source_tags) == sorted(
            t["Key"] + "=" + t["Value"] for t in replica_tags
        ), entry["key"]
    for marker in state["markers"]:
        versions = west.list_object_versions(Bucket=DESTINATION, Prefix=marker["key"])
        markers = [m for m in versions.get("DeleteMarkers", []) if m["Key"] == marker["key"]]
        if not markers:
            return f"{marker['key']}: delete marker not replicated yet"
        assert len(markers) == 1, f"{marker['key']}: {len(markers)} delete markers"
        assert markers[0]["IsLatest"], marker
        assert markers[0]["VersionId"] == marker["version"], (marker, markers[0]["VersionId"])
        try:
            west.head_object(Bucket=DESTINATION, Key=marker["key"])
            raise AssertionError(f"{marker['key']} visible in the destination")
        except botocore.exceptions.ClientError as error:
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    for key in state["outside"]:
        head = east.head_object(Bucket=SOURCE, Key=key)
        assert "ReplicationStatus" not in head, (key, head.get("ReplicationStatus"))
    listed = west.list_object_versions(Bucket=DESTINATION, Prefix="outside/")
    assert not listed.get("Versions"), "a key outside the rule was replicated"
    # Exactly one destination version per source version, one marker per source marker.
    everything = west.list_object_versions(Bucket=DESTINATION)
    assert len(everything.get("Versions", [])) == len(state["written"]), everything.get("Versions")
    assert len(everything.get("DeleteMarkers", [])) == len(state["markers"])
    return None


def lock_settings(client, bucket, key, version):
    """A version's (retention as (mode, date), legal hold status), None where it has none."""
    try:
        retention = client.get_object_retention(Bucket=bucket, Key=key, VersionId=version)["Retention"]
        retention = (retention["Mode"], retention["RetainUntilDate"])
    except botocore.exceptions.ClientError as error:
        assert error.response["Error"]["Code"] == "NoSuchObjectLockConfiguration", error.response
        retention = None
    try:
        hold = client.get_object_legal_hold(Bucket=bucket, Key=key, VersionId=version)["LegalHold"]["Status"]
    except botocore.exceptions.ClientError as error:
        assert error.response["Error"]["Code"] == "NoSuchObjectLockConfiguration", error.response
        hold = None
    return retention, hold


def metadata_of(client, bucket, key, version):
    """A version's replicated metadata: tags, ACL grants, retention, legal hold."""
    tags = sorted(
        t["Key"] + "=" + t["Value"]
        for t in client.get_object_tagging(Bucket=bucket, Key=key, VersionId=version)["TagSet"]
    )
    grants = sorted(
        (grant["Grantee"].get("ID") or grant["Grantee"].get("URI"), grant["Permission"])
        for grant in client.get_object_acl(Bucket=bucket, Key=key, VersionId=version)["Grants"]
    )
    return (tags, grants) + lock_settings(client, bucket, key, version)


def wait_until(what, check, seconds=180):
    """Polls `check` (None when satisfied, else what is missing) until a generous deadline."""
    deadline = time.monotonic() + seconds
    while True:
        missing = check()
        if missing is None:
            return
        assert time.monotonic() < deadline, f"{what}: {missing}"
        time.sleep(0.5)


def metadata(east, west):
    source, destination, key = "lock-src", "lock-dst", "meta"
    data = body("meta", 3_000)
    versions = [
        east.put_object(Bucket=source, Key=key, Body=data, Tagging=f"v={number}")["VersionId"]
        for number in (1, 2, 3)
    ]

    def statuses():
        for version in versions:
            status = east.head_object(Bucket=source, Key=key, VersionId=version).get("ReplicationStatus")
            assert status != "FAILED", f"{version}: FAILED"
            if status != "COMPLETED":
                return f"{version}: {status}"
        return None

    wait_until("versions replicated", statuses)
    # The replicas, told apart by their first tags (their bytes and ETags are equal).
    listed = west.list_object_versions(Bucket=destination, Prefix=key)["Versions"]
    replica_of = {}
    for replica in (v for v in listed if v["Key"] == key):
        tags = west.get_object_tagging(Bucket=destination, Key=key, VersionId=replica["VersionId"])["TagSet"]
        number = [t["Value"] for t in tags if t["Key"] == "v"][0]
        replica_of[versions[int(number) - 1]] = replica["VersionId"]
    assert len(replica_of) == 3, listed
    # Each replica keeps its source version's id.
    assert all(source == replica for source, replica in replica_of.items()), replica_of
    assert len({v["ETag"] for v in listed if v["Key"] == key}) == 1, listed

    def in_sync():
        missing = statuses()
        if missing:
            return missing
        for version in versions:
            wanted = metadata_of(east, source, key, version)
            got = metadata_of(west, destination, key, replica_of[version])
            if got != wanted:
                return f"replica of {version}: {got} != {wanted}"
        return None

    owner = east.get_object_acl(Bucket=source, Key=key, VersionId=versions[0])["Owner"]
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    later, much_later = now + datetime.timedelta(days=1), now + datetime.timedelta(days=2)
    first, second, third = versions
    # The oldest version (not the current one) is re-tagged, given grants and a retention.
    east.put_object_tagging(
        Bucket=source, Key=key, VersionId=first,
        Tagging={"TagSet": [{"Key": "changed", "Value": "yes"}]},
    )
    status = east.head_object(Bucket=source, Key=key, VersionId=first).get("ReplicationStatus")
    assert status in ("PENDING", "COMPLETED"), status
    east.put_object_acl(
        Bucket=source, Key=key, VersionId=first,
        AccessControlPolicy={
            "Owner": owner,
            "Grants": [
                {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
                {"Grantee": {"Type": "CanonicalUser", "ID": "other"}, "Permission": "READ"},
            ],
        },
    )
    east.put_object_retention(
        Bucket=source, Key=key, VersionId=first,
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": much_later},
    )
    # The second loses its tags and is held; the third gets a canned ACL.
    east.delete_object_tagging(Bucket=source, Key=key, VersionId=second)
    east.put_object_legal_hold(
        Bucket=source, Key=key, VersionId=second, LegalHold={"Status": "ON"}
    )
    east.put_object_acl(Bucket=source, Key=key, VersionId=third, ACL="authenticated-read")
    assert metadata_of(east, source, key, first)[0] == ["changed=yes"]
    assert metadata_of(east, source, key, first)[2] == ("GOVERNANCE", much_later)
    assert metadata_of(east, source, key, second)[0] == []
    assert metadata_of(east, source, key, second)[3] == "ON"
    wait_until("metadata changes replicated", in_sync)

    # Weakening: the GOVERNANCE retention shortened with the bypass, the hold lifted.
    east.put_object_retention(
        Bucket=source, Key=key, VersionId=first, BypassGovernanceRetention=True,
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later},
    )
    east.put_object_legal_hold(
        Bucket=source, Key=key, VersionId=second, LegalHold={"Status": "OFF"}
    )
    assert metadata_of(east, source, key, first)[2] == ("GOVERNANCE", later)
    wait_until("weakened lock settings replicated", in_sync)

    # A multipart version's replica (from `lock`) names its source too: its hold is lifted.
    multipart = "held-multipart"
    [held] = [v["VersionId"] for v in east.list_object_versions(Bucket=source, Prefix=multipart)["Versions"]]
    [held_replica] = [
        v["VersionId"] for v in west.list_object_versions(Bucket=destination, Prefix=multipart)["Versions"]
    ]
    east.put_object_legal_hold(Bucket=source, Key=multipart, VersionId=held, LegalHold={"Status": "OFF"})

    def hold_lifted():
        got = lock_settings(west, destination, multipart, held_replica)
        return None if got == (None, "OFF") else f"replica of {multipart}: {got}"

    wait_until("multipart replica's hold lifted", hold_lifted)
    # Whole-state syncs add no version in the destination.
    listed = west.list_object_versions(Bucket=destination, Prefix=key)["Versions"]
    assert len([v for v in listed if v["Key"] == key]) == 3, listed


def lock(east, west):
    east.create_bucket(Bucket="lock-src", ObjectLockEnabledForBucket=True)
    west.create_bucket(
        Bucket="lock-dst",
        CreateBucketConfiguration={"LocationConstraint": WEST},
        ObjectLockEnabledForBucket=True,
    )
    configuration = rule_configuration("lock-dst")
    configuration["Rules"][0]["Filter"] = {"Prefix": ""}
    east.put_bucket_replication(Bucket="lock-src", ReplicationConfiguration=configuration)
    until = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(days=1)
    written = []
    put = east.put_object(
        Bucket="lock-src", Key="held-and-retained", Body=body("held", 50_000),
        ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until,
        ObjectLockLegalHoldStatus="ON",
    )
    written.append(("held-and-retained", put["VersionId"], ("GOVERNANCE", until), "ON"))
    upload = east.create_multipart_upload(
        Bucket="lock-src", Key="held-multipart", ObjectLockLegalHoldStatus="ON"
    )
    part = east.upload_part(
        Bucket="lock-src", Key="held-multipart", UploadId=upload["UploadId"], PartNumber=1,
        Body=body("multipart", 10_000),
    )
    done = east.complete_multipart_upload(
        Bucket="lock-src", Key="held-multipart", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    written.append(("held-multipart", done["VersionId"], None, "ON"))
    put = east.put_object(Bucket="lock-src", Key="unlocked", Body=b"free")
    written.append(("unlocked", put["VersionId"], None, None))

    deadline = time.monotonic() + 180
    for key, version, retention, hold in written:
        assert lock_settings(east, "lock-src", key, version) == (retention, hold), key
        while True:
            head = east.head_object(Bucket="lock-src", Key=key, VersionId=version)
            status = head.get("ReplicationStatus")
            assert status != "FAILED", f"{key}: FAILED"
            if status == "COMPLETED":
                break
            assert time.monotonic() < deadline, f"{key} not replicated: {status}"
            time.sleep(0.5)
        replicas = west.list_object_versions(Bucket="lock-dst", Prefix=key)["Versions"]
        replicas = [v for v in replicas if v["Key"] == key]
        assert len(replicas) == 1, (key, replicas)
        assert replicas[0]["VersionId"] == version, (key, replicas[0]["VersionId"], version)
        assert lock_settings(west, "lock-dst", key, replicas[0]["VersionId"]) == (retention, hold), key


def replica_writes(west, other):
    key = "r/retry/replica"

    def replica_headers(request, **_):
        request.headers["x-cairn-replica"] = "true"
        request.headers["x-cairn-idempotency-token"] = "replica:test:retry"

    west.meta.events.register_first("before-sign.s3.PutObject", replica_headers)
    try:
        first = west.put_object(Bucket=DESTINATION, Key=key, Body=b"once")
        again = west.put_object(Bucket=DESTINATION, Key=key, Body=b"once")
    finally:
        west.meta.events.unregister("before-sign.s3.PutObject", replica_headers)
    assert first["VersionId"] == again["VersionId"], (first["VersionId"], again["VersionId"])
    versions = west.list_object_versions(Bucket=DESTINATION, Prefix=key).get("Versions", [])
    assert len(versions) == 1, versions
    head = west.head_object(Bucket=DESTINATION, Key=key)
    assert head.get("ReplicationStatus") == "REPLICA", head.get("ReplicationStatus")
    west.delete_object(Bucket=DESTINATION, Key=key, VersionId=first["VersionId"])

    # A replica write may keep its source's version id: one tagged by another region (the top
    # byte; us-east-1's is ec), not one the key has already, and only with x-cairn-replica.
    key = "r/kept/replica"
    kept = "ec00000000000abc"

    def put_with(headers):
        def add(request, **_):
            for name, value in headers.items():
                request.headers[name] = value

        west.meta.events.register_first("before-sign.s3.PutObject", add)
        try:
            return west.put_object(Bucket=DESTINATION, Key=key, Body=b"kept")
        finally:
            west.meta.events.unregister("before-sign.s3.PutObject", add)

    replica = {"x-cairn-replica": "true", "x-cairn-replica-version-id": kept}
    put = put_with({**replica, "x-cairn-idempotency-token": "replica:test:kept"})
    assert put["VersionId"] == kept, put["VersionId"]
    got = west.get_object(Bucket=DESTINATION, Key=key, VersionId=kept)
    assert got["Body"].read() == b"kept" and got["VersionId"] == kept, got["VersionId"]
    listed = west.list_object_versions(Bucket=DESTINATION, Prefix=key)["Versions"]
    assert [v["VersionId"] for v in listed] == [kept], listed
    for headers in (
        {**replica, "x-cairn-idempotency-token": "replica:test:kept-again"},  # the key has it
        {**replica, "x-cairn-replica-version-id": "5700000000000001"},  # us-west-2's own tag
        {**replica, "x-cairn-replica-version-id": "0000000000000001"},  # untagged
        {**replica, "x-cairn-replica-version-id": "not-an-id"},
        {"x-cairn-replica-version-id": "ec00000000000abd"},  # not a replica write
    ):
        assert failure(lambda: put_with(headers)) == ("InvalidArgument", 400), headers
    # A replicator's delete marker keeps its source id too.
    def marker_headers(request, **_):
        request.headers["x-cairn-replica"] = "true"
        request.headers["x-cairn-replica-version-id"] = "ec00000000000abe"

    west.meta.events.register_first("before-sign.s3.DeleteObject", marker_headers)
    try:
        marker = west.delete_object(Bucket=DESTINATION, Key=key)
    finally:
        west.meta.events.unregister("before-sign.s3.DeleteObject", marker_headers)
    assert marker.get("DeleteMarker") and marker["VersionId"] == "ec00000000000abe", marker
    for version in ("ec00000000000abe", kept):
        west.delete_object(Bucket=DESTINATION, Key=key, VersionId=version)
    listed = west.list_object_versions(Bucket=DESTINATION, Prefix=key)
    assert not listed.get("Versions") and not listed.get("DeleteMarkers"), listed

    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["arn:aws:iam::000000000000:user/other"]},
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{DESTINATION}/*",
            }
        ],
    }
    west.put_bucket_policy(Bucket=DESTINATION, Policy=json.dumps(policy))
    try:
        def replica_header(request, **_):
            request.headers["x-cairn-replica"] = "true"

        other.meta.events.register_first("before-sign.s3.PutObject", replica_header)
        try:
            assert failure(
                lambda: other.put_object(Bucket=DESTINATION, Key="r/other/x", Body=b"x")
            ) == ("AccessDenied", 403)
        finally:
            other.meta.events.unregister("before-sign.s3.PutObject", replica_header)
    finally:
        west.delete_bucket_policy(Bucket=DESTINATION)
    assert not west.list_object_versions(Bucket=DESTINATION, Prefix="r/other/").get("Versions")


def main():
    mode, east_url, west_url, access, secret, state_file = sys.argv[1:7]
    other_access, other_secret = sys.argv[7:9]
    east = client(east_url, EAST, access, secret)
    west = client(west_url, WEST, access, secret)
    if mode == "setup":
        state = setup(east, west, (access, secret))
    else:
        with open(state_file) as file:
            state = json.load(file)
    if mode.startswith("write:"):
        state = write(east, state, mode.split(":", 1)[1])
    elif mode == "replica_writes":
        replica_writes(west, client(west_url, WEST, other_access, other_secret))
    elif mode == "pending":
        pending(east, state)
    elif mode == "lock":
        lock(east, west)
    elif mode == "metadata":
        metadata(east, west)
    elif mode == "converge":
        deadline = time.monotonic() + 180
        while True:
            missing = converged(east, west, state)
            if missing is None:
                break
            assert time.monotonic() < deadline, f"replication did not converge: {missing}"
            time.sleep(0.5)
    elif mode != "setup":
        raise SystemExit(f"unknown mode {mode}")
    with open(state_file, "w") as file:
        json.dump(state, file)
    print(f"{mode}: ok")


if __name__ == "__main__":
    main()
