"""Explicit ACL grants through boto3, between two users made by `cairn admin` (alice owns the
bucket, bob is granted things) and anonymous callers: x-amz-grant-* headers and
AccessControlPolicy bodies on buckets and objects (PutBucketAcl, PutObjectAcl, PutObject,
CreateMultipartUpload, CopyObject), what each permission opens, Block Public Access against
explicit public grants, a policy's explicit Deny over a grant, and the error cases.

Usage: s3_acl_grants.py ENDPOINT ALICE_KEY ALICE_SECRET BOB_KEY BOB_SECRET ROOT_KEY ROOT_SECRET"""
import functools
import json
import sys

from s3client import anonymous as _anonymous
from s3client import client, failure, signed

endpoint, alice_key, alice_secret, bob_key, bob_secret, root_key, root_secret = sys.argv[1:8]
anonymous = functools.partial(_anonymous, endpoint)
alice = client(endpoint, alice_key, alice_secret, retries={"total_max_attempts": 1})
bob = client(endpoint, bob_key, bob_secret, retries={"total_max_attempts": 1})
root = client(endpoint, root_key, root_secret, retries={"total_max_attempts": 1})
bucket = "py-acl-grants"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
XML = {"Content-Type": "application/xml"}


def grants(answer):
    return sorted(
        (grant["Grantee"].get("URI") or grant["Grantee"].get("ID"), grant["Permission"])
        for grant in answer["Grants"]
    )


def user(id, permission):
    return {"Grantee": {"Type": "CanonicalUser", "ID": id}, "Permission": permission}


def group(uri, permission):
    return {"Grantee": {"Type": "Group", "URI": uri}, "Permission": permission}


def body(data):
    return data["Body"].read()


# Canonical ids are user names, shown as the owner by ListBuckets and GetBucketAcl.
assert alice.list_buckets()["Owner"]["ID"] == "alice"
assert root.list_buckets()["Owner"]["ID"] == "root"
alice.create_bucket(Bucket=bucket, GrantRead='id="bob"')
acl = alice.get_bucket_acl(Bucket=bucket)
assert acl["Owner"]["ID"] == "alice", acl
assert grants(acl) == [("bob", "READ")], acl
assert acl["Grants"][0]["Grantee"]["Type"] == "CanonicalUser", acl
alice.put_object(Bucket=bucket, Key="doc.txt", Body=b"doc")
alice.put_object(Bucket=bucket, Key="other.txt", Body=b"other")

# Bucket READ: bob lists (objects, versions, uploads) but cannot write, read objects or the ACL.
assert [item["Key"] for item in bob.list_objects_v2(Bucket=bucket)["Contents"]] == ["doc.txt", "other.txt"]
assert len(bob.list_object_versions(Bucket=bucket)["Versions"]) == 2
bob.list_multipart_uploads(Bucket=bucket)
assert failure(lambda: bob.put_object(Bucket=bucket, Key="from-bob.txt", Body=b"b")) == ("AccessDenied", 403)
assert failure(lambda: bob.get_object(Bucket=bucket, Key="doc.txt")) == ("AccessDenied", 403)
assert failure(lambda: bob.get_bucket_acl(Bucket=bucket)) == ("AccessDenied", 403)
assert anonymous("GET", f"/{bucket}?list-type=2")[0] == 403, "a user grant is not public"

# Bucket WRITE and READ_ACP from an AccessControlPolicy body: bob creates and deletes objects
# (and owns what he writes), reads the bucket's ACL, and still cannot list or change the ACL.
alice.put_bucket_acl(Bucket=bucket, AccessControlPolicy={
    "Owner": {"ID": "alice"},
    "Grants": [user("bob", "WRITE"), user("bob", "READ_ACP"), group(LOG_DELIVERY, "WRITE")],
})
assert grants(alice.get_bucket_acl(Bucket=bucket)) == sorted(
    [("bob", "WRITE"), ("bob", "READ_ACP"), (LOG_DELIVERY, "WRITE")])
assert grants(bob.get_bucket_acl(Bucket=bucket)) == grants(alice.get_bucket_acl(Bucket=bucket))
bob.put_object(Bucket=bucket, Key="from-bob.txt", Body=b"bob")
assert body(bob.get_object(Bucket=bucket, Key="from-bob.txt")) == b"bob"
assert bob.get_object_acl(Bucket=bucket, Key="from-bob.txt")["Owner"]["ID"] == "bob"
assert body(alice.get_object(Bucket=bucket, Key="from-bob.txt")) == b"bob", "the bucket owner reads"
assert failure(lambda: bob.list_objects_v2(Bucket=bucket)) == ("AccessDenied", 403)
assert failure(lambda: bob.put_bucket_acl(Bucket=bucket, ACL="public-read")) == ("AccessDenied", 403)
bob.delete_object(Bucket=bucket, Key="from-bob.txt")
assert failure(lambda: alice.head_object(Bucket=bucket, Key="from-bob.txt"))[1] == 404

# Bucket WRITE_ACP: bob replaces the bucket's ACL (here granting himself FULL_CONTROL).
alice.put_bucket_acl(Bucket=bucket, GrantWriteACP='id="bob"')
bob.put_bucket_acl(Bucket=bucket, GrantFullControl='id="bob"')
assert grants(alice.get_bucket_acl(Bucket=bucket)) == [("bob", "FULL_CONTROL")]
bob.list_objects_v2(Bucket=bucket)
bob.put_object(Bucket=bucket, Key="full.txt", Body=b"f")
bob.delete_object(Bucket=bucket, Key="full.txt")
assert failure(lambda: bob.get_object(Bucket=bucket, Key="doc.txt")) == ("AccessDenied", 403), \
    "bucket grants never open objects"
alice.put_bucket_acl(Bucket=bucket, ACL="private")
assert grants(alice.get_bucket_acl(Bucket=bucket)) == [("alice", "FULL_CONTROL")]
assert failure(lambda: bob.list_objects_v2(Bucket=bucket)) == ("AccessDenied", 403)

# Object READ by grant header on PutObject, CreateMultipartUpload (applied at completion) and
# CopyObject: bob reads those objects only, and not their ACLs.
alice.put_object(Bucket=bucket, Key="shared.txt", Body=b"shared", GrantRead='id="bob"')
assert body(bob.get_object(Bucket=bucket, Key="shared.txt")) == b"shared"
assert bob.head_object(Bucket=bucket, Key="shared.txt")["ContentLength"] == 6
assert failure(lambda: bob.get_object(Bucket=bucket, Key="doc.txt")) == ("AccessDenied", 403)
assert failure(lambda: bob.get_object_acl(Bucket=bucket, Key="shared.txt")) == ("AccessDenied", 403)
assert failure(lambda: bob.put_object(Bucket=bucket, Key="shared.txt", Body=b"x")) == ("AccessDenied", 403)
assert grants(alice.get_object_acl(Bucket=bucket, Key="shared.txt")) == [("bob", "READ")]
upload = alice.create_multipart_upload(Bucket=bucket, Key="multi.bin", GrantRead='id="bob"')
part = alice.upload_part(Bucket=bucket, Key="multi.bin", UploadId=upload["UploadId"], PartNumber=1, Body=b"m" * 100)
assert failure(lambda: bob.get_object(Bucket=bucket, Key="multi.bin"))[1] in (403, 404)
alice.complete_multipart_upload(Bucket=bucket, Key="multi.bin", UploadId=upload["UploadId"],
                                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
assert body(bob.get_object(Bucket=bucket, Key="multi.bin")) == b"m" * 100
alice.copy_object(Bucket=bucket, Key="copy.txt", CopySource={"Bucket": bucket, "Key": "doc.txt"},
                  GrantRead='id="bob"')
assert body(bob.get_object(Bucket=bucket, Key="copy.txt")) == b"doc"
assert grants(alice.get_object_acl(Bucket=bucket, Key="copy.txt")) == [("bob", "READ")]

# Object READ_ACP / WRITE_ACP: bob reads doc.txt's ACL, then replaces it with a body granting
# himself READ (the document's owner must stay alice, the object's owner).
alice.put_object_acl(Bucket=bucket, Key="doc.txt", GrantReadACP='id="bob"', GrantWriteACP='id="bob"')
assert grants(bob.get_object_acl(Bucket=bucket, Key="doc.txt")) == sorted([("bob", "READ_ACP"), ("bob", "WRITE_ACP")])
assert failure(lambda: bob.get_object(Bucket=bucket, Key="doc.txt")) == ("AccessDenied", 403)
assert failure(lambda: bob.put_object_acl(Bucket=bucket, Key="doc.txt", AccessControlPolicy={
    "Owner": {"ID": "bob"}, "Grants": [user("bob", "READ")]})) == ("AccessDenied", 403)
bob.put_object_acl(Bucket=bucket, Key="doc.txt", AccessControlPolicy={
    "Owner": {"ID": "alice"}, "Grants": [user("bob", "READ"), user("root", "READ")]})
assert body(bob.get_object(Bucket=bucket, Key="doc.txt")) == b"doc"
assert body(root.get_object(Bucket=bucket, Key="doc.txt")) == b"doc"
assert failure(lambda: bob.get_object_acl(Bucket=bucket, Key="doc.txt")) == ("AccessDenied", 403)
assert alice.get_object_acl(Bucket=bucket, Key="doc.txt")["Owner"]["ID"] == "alice"

# AllUsers READ: anonymous callers read the object and list the bucket, until IgnorePublicAcls;
# grants to users are not public and still apply.
alice.put_object_acl(Bucket=bucket, Key="other.txt", GrantRead=f'uri="{ALL_USERS}"')
alice.put_bucket_acl(Bucket=bucket, GrantRead=f'uri="{ALL_USERS}"')
assert anonymous("GET", f"/{bucket}/other.txt") == (200, b"other")
assert anonymous("GET", f"/{bucket}?list-type=2")[0] == 200
assert anonymous("GET", f"/{bucket}/doc.txt")[0] == 403
alice.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
    "BlockPublicAcls": False, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
assert anonymous("GET", f"/{bucket}/other.txt")[0] == 403
assert anonymous("GET", f"/{bucket}?list-type=2")[0] == 403
assert body(bob.get_object(Bucket=bucket, Key="shared.txt")) == b"shared"
# BlockPublicAcls: explicit public grants are refused, by header and by body; others pass.
alice.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
    "BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
assert anonymous("GET", f"/{bucket}/other.txt") == (200, b"other"), "the existing grant applies again"
assert failure(lambda: alice.put_object_acl(Bucket=bucket, Key="other.txt", GrantRead=f'uri="{AUTHENTICATED}"')) == ("AccessDenied", 403)
assert failure(lambda: alice.put_object(Bucket=bucket, Key="public.txt", Body=b"p", GrantRead=f'uri="{ALL_USERS}"')) == ("AccessDenied", 403)
assert failure(lambda: alice.put_bucket_acl(Bucket=bucket, AccessControlPolicy={
    "Owner": {"ID": "alice"}, "Grants": [group(AUTHENTICATED, "WRITE")]})) == ("AccessDenied", 403)
assert failure(lambda: alice.head_object(Bucket=bucket, Key="public.txt"))[1] == 404
alice.put_object_acl(Bucket=bucket, Key="other.txt", GrantRead='id="bob"')
alice.delete_public_access_block(Bucket=bucket)
assert anonymous("GET", f"/{bucket}/other.txt")[0] == 403

# A bucket policy's explicit Deny beats a grant.
deny = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Deny", "Principal": {"AWS": ["arn:aws:iam::000000000000:user/bob"]},
    "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/shared.txt"}]}
alice.put_bucket_policy(Bucket=bucket, Policy=json.dumps(deny))
assert failure(lambda: bob.get_object(Bucket=bucket, Key="shared.txt")) == ("AccessDenied", 403)
assert body(bob.get_object(Bucket=bucket, Key="other.txt")) == b"other"
alice.delete_bucket_policy(Bucket=bucket)
assert body(bob.get_object(Bucket=bucket, Key="shared.txt")) == b"shared"

# Errors, each leaving the ACL as it was.
before = grants(alice.get_bucket_acl(Bucket=bucket))
assert failure(lambda: alice.put_bucket_acl(Bucket=bucket, ACL="private", GrantRead='id="bob"')) == ("InvalidRequest", 400)
assert failure(lambda: alice.put_object(Bucket=bucket, Key="both.txt", Body=b"b", ACL="public-read", GrantRead='id="bob"')) == ("InvalidRequest", 400)
assert failure(lambda: alice.put_bucket_acl(Bucket=bucket, ACL="private", AccessControlPolicy={
    "Owner": {"ID": "alice"}, "Grants": [user("bob", "READ")]})) == ("UnexpectedContent", 400)
assert failure(lambda: alice.put_bucket_acl(Bucket=bucket, GrantRead='id="nobody"')) == ("InvalidArgument", 400)
assert failure(lambda: alice.put_object(Bucket=bucket, Key="nobody.txt", Body=b"n", GrantRead='id="nobody"')) == ("InvalidArgument", 400)
assert failure(lambda: alice.create_bucket(Bucket="py-acl-grants-bad", GrantRead='id="nobody"')) == ("InvalidArgument", 400)
assert failure(lambda: alice.put_bucket_acl(Bucket=bucket, AccessControlPolicy={
    "Owner": {"ID": "alice"}, "Grants": [user("nobody", "READ")]})) == ("InvalidArgument", 400)
assert failure(lambda: alice.put_bucket_acl(Bucket=bucket, GrantRead='emailAddress="bob@example.com"')) == ("UnresolvableGrantByEmailAddress", 400)
assert failure(lambda: alice.put_bucket_acl(Bucket=bucket, AccessControlPolicy={
    "Owner": {"ID": "alice"},
    "Grants": [{"Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": "bob@example.com"}, "Permission": "READ"}]})) == ("UnresolvableGrantByEmailAddress", 400)
assert failure(lambda: alice.put_bucket_acl(Bucket=bucket, GrantRead='uri="http://example.com/groups/Friends"')) == ("InvalidArgument", 400)
assert failure(lambda: alice.put_bucket_acl(Bucket=bucket, GrantRead="bob")) == ("InvalidArgument", 400)
for document in [b"<AccessControlPolicy><AccessControlList>", b"not xml at all",
                 b"<AccessControlPolicy><AccessControlList><Grant><Grantee><ID>bob</ID></Grantee>"
                 b"<Permission>EVERYTHING</Permission></Grant></AccessControlList></AccessControlPolicy>"]:
    status, answer = signed(endpoint, "PUT", f"/{bucket}?acl", alice_key, alice_secret, document, XML)
    assert status == 400 and b"<Code>MalformedACLError</Code>" in answer, (document, status, answer)
status, answer = signed(endpoint, "PUT", f"/{bucket}/doc.txt?acl", alice_key, alice_secret, b"<Nope/>", XML)
assert status == 400 and b"<Code>MalformedACLError</Code>" in answer, (status, answer)
assert grants(alice.get_bucket_acl(Bucket=bucket)) == before
assert failure(lambda: alice.head_object(Bucket=bucket, Key="both.txt"))[1] == 404
assert failure(lambda: alice.head_object(Bucket=bucket, Key="nobody.txt"))[1] == 404
assert failure(lambda: alice.head_bucket(Bucket="py-acl-grants-bad"))[1] == 404

for key in ["doc.txt", "other.txt", "shared.txt", "multi.bin", "copy.txt"]:
    alice.delete_object(Bucket=bucket, Key=key)
alice.delete_bucket(Bucket=bucket)
print("acl grants: ok")
