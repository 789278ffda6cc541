"""boto3 against a running Cairn: object tagging (Put/Get/DeleteObjectTagging, by version id),
`x-amz-tagging` on PutObject, CreateMultipartUpload and CopyObject (tagging directive),
`x-amz-tagging-count` on GET/HEAD, bucket tagging, and S3's limits and error codes.

Usage: s3_tagging.py ENDPOINT ACCESS_KEY SECRET_KEY. Exits non-zero on the first failed check.
"""
import sys


import s3client
from s3client import failure

endpoint, access_key, secret_key = sys.argv[1:4]
s3 = s3client.client(endpoint, access_key, secret_key, retries={"total_max_attempts": 1})


def tag_set(pairs):
    return {"TagSet": [{"Key": key, "Value": value} for key, value in pairs]}


def tags(**arguments):
    return [(tag["Key"], tag["Value"]) for tag in s3.get_object_tagging(**arguments)["TagSet"]]


bucket = "py-tagging"
s3.create_bucket(Bucket=bucket)

# x-amz-tagging on PUT, tagging-count on GET and HEAD; an untagged object has neither.
s3.put_object(Bucket=bucket, Key="tagged", Body=b"x", Tagging="project=cairn&team=storage%20core")
assert tags(Bucket=bucket, Key="tagged") == [("project", "cairn"), ("team", "storage core")]
assert s3.head_object(Bucket=bucket, Key="tagged")["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
assert s3.get_object(Bucket=bucket, Key="tagged")["TagCount"] == 2
s3.put_object(Bucket=bucket, Key="plain", Body=b"y")
assert "TagCount" not in s3.get_object(Bucket=bucket, Key="plain")
assert tags(Bucket=bucket, Key="plain") == []

# Put replaces the whole set; Delete removes it; Unicode keys and values count characters.
unicode_key = "ключ" * 32  # 128 characters, 256 bytes
s3.put_object_tagging(Bucket=bucket, Key="plain", Tagging=tag_set([(unicode_key, "値" * 256), ("a", "")]))
assert tags(Bucket=bucket, Key="plain") == [(unicode_key, "値" * 256), ("a", "")]
s3.put_object_tagging(Bucket=bucket, Key="plain", Tagging=tag_set([("b", "2")]))
assert tags(Bucket=bucket, Key="plain") == [("b", "2")]
s3.delete_object_tagging(Bucket=bucket, Key="plain")
assert tags(Bucket=bucket, Key="plain") == []

# Limits and error codes.
eleven = tag_set([(f"k{i}", "v") for i in range(11)])
assert failure(lambda: s3.put_object_tagging(Bucket=bucket, Key="plain", Tagging=eleven)) == ("BadRequest", 400)
assert failure(lambda: s3.put_object_tagging(Bucket=bucket, Key="plain", Tagging=tag_set([("k" * 129, "v")]))) == ("InvalidTag", 400)
assert failure(lambda: s3.put_object_tagging(Bucket=bucket, Key="plain", Tagging=tag_set([("k", "v" * 257)]))) == ("InvalidTag", 400)
assert failure(lambda: s3.put_object_tagging(Bucket=bucket, Key="plain", Tagging=tag_set([("k", "1"), ("k", "2")]))) == ("InvalidTag", 400)
assert failure(lambda: s3.put_object_tagging(Bucket=bucket, Key="plain", Tagging=tag_set([("aws:reserved", "v")]))) == ("InvalidTag", 400)
assert failure(lambda: s3.put_object(Bucket=bucket, Key="bad", Body=b"z", Tagging="a=1&a=2")) == ("InvalidArgument", 400)
assert failure(lambda: s3.put_object(Bucket=bucket, Key="bad", Body=b"z", Tagging="&".join(f"k{i}=v" for i in range(11)))) == ("BadRequest", 400)
assert failure(lambda: s3.head_object(Bucket=bucket, Key="bad"))[1] == 404, "a refused PUT stores nothing"
assert failure(lambda: s3.get_object_tagging(Bucket=bucket, Key="absent")) == ("NoSuchKey", 404)
assert failure(lambda: s3.put_object_tagging(Bucket=bucket, Key="absent", Tagging=tag_set([("a", "b")]))) == ("NoSuchKey", 404)
assert failure(lambda: s3.get_object_tagging(Bucket="py-no-such-bucket", Key="k")) == ("NoSuchBucket", 404)
assert tags(Bucket=bucket, Key="plain") == [], "refused requests change nothing"

# Versions: each version has its own tags; versionId selects one.
s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
first = s3.put_object(Bucket=bucket, Key="versioned", Body=b"1", Tagging="v=1")["VersionId"]
second = s3.put_object(Bucket=bucket, Key="versioned", Body=b"2", Tagging="v=2")["VersionId"]
assert tags(Bucket=bucket, Key="versioned") == [("v", "2")]
assert tags(Bucket=bucket, Key="versioned", VersionId=first) == [("v", "1")]
answer = s3.put_object_tagging(Bucket=bucket, Key="versioned", VersionId=first, Tagging=tag_set([("v", "one")]))
assert answer["VersionId"] == first
assert tags(Bucket=bucket, Key="versioned", VersionId=first) == [("v", "one")]
assert tags(Bucket=bucket, Key="versioned", VersionId=second) == [("v", "2")]
assert s3.get_object_tagging(Bucket=bucket, Key="versioned")["VersionId"] == second
s3.delete_object_tagging(Bucket=bucket, Key="versioned", VersionId=second)
assert tags(Bucket=bucket, Key="versioned", VersionId=second) == []
assert tags(Bucket=bucket, Key="versioned", VersionId=first) == [("v", "one")]
# A delete marker has no tags: 405 by id, 404 as the current version.
marker = s3.delete_object(Bucket=bucket, Key="versioned")["VersionId"]
assert failure(lambda: s3.get_object_tagging(Bucket=bucket, Key="versioned", VersionId=marker)) == ("MethodNotAllowed", 405)
assert failure(lambda: s3.get_object_tagging(Bucket=bucket, Key="versioned"))[1] == 404

# Multipart: the upload's x-amz-tagging lands on the completed object.
upload = s3.create_multipart_upload(Bucket=bucket, Key="multi", Tagging="kind=multipart")
part = s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload["UploadId"], PartNumber=1, Body=b"m" * 1024)
s3.complete_multipart_upload(
    Bucket=bucket, Key="multi", UploadId=upload["UploadId"],
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
)
assert tags(Bucket=bucket, Key="multi") == [("kind", "multipart")]

# CopyObject: COPY (default) keeps the source's tags, REPLACE takes the request's.
s3.copy_object(Bucket=bucket, Key="copy-default", CopySource={"Bucket": bucket, "Key": "tagged"})
assert tags(Bucket=bucket, Key="copy-default") == [("project", "cairn"), ("team", "storage core")]
s3.copy_object(Bucket=bucket, Key="copy-replace", CopySource={"Bucket": bucket, "Key": "tagged"},
               TaggingDirective="REPLACE", Tagging="new=tag")
assert tags(Bucket=bucket, Key="copy-replace") == [("new", "tag")]
s3.copy_object(Bucket=bucket, Key="copy-none", CopySource={"Bucket": bucket, "Key": "tagged"}, TaggingDirective="REPLACE")
assert tags(Bucket=bucket, Key="copy-none") == []
assert failure(lambda: s3.copy_object(Bucket=bucket, Key="copy-bad", CopySource={"Bucket": bucket, "Key": "tagged"},
                                      TaggingDirective="MERGE")) == ("InvalidArgument", 400)

# Bucket tagging: NoSuchTagSet until set, up to 50 tags, deleted again.
assert failure(lambda: s3.get_bucket_tagging(Bucket=bucket)) == ("NoSuchTagSet", 404)
fifty = [(f"key-{i}", f"value-{i}") for i in range(50)]
s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set(fifty))
assert [(tag["Key"], tag["Value"]) for tag in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]] == fifty
fifty_one = tag_set(fifty + [("one-more", "v")])
assert failure(lambda: s3.put_bucket_tagging(Bucket=bucket, Tagging=fifty_one)) == ("InvalidTag", 400)
assert failure(lambda: s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set([("aws:x", "v")]))) == ("InvalidTag", 400)
assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50
s3.delete_bucket_tagging(Bucket=bucket)
assert failure(lambda: s3.get_bucket_tagging(Bucket=bucket)) == ("NoSuchTagSet", 404)
assert failure(lambda: s3.get_bucket_tagging(Bucket="py-no-such-bucket")) == ("NoSuchBucket", 404)
print("tagging: ok")
