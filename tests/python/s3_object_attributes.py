"""boto3 against a running Cairn: GetObjectAttributes (ETag, Checksum, ObjectParts,
StorageClass, ObjectSize; by version; parts paging), ListObjectsV2 FetchOwner, and
x-amz-request-payer accepted and ignored.

Usage: s3_object_attributes.py ENDPOINT ACCESS_KEY SECRET_KEY. Exits non-zero on the first failed check.
"""
import sys


import s3client
from s3client import failure

endpoint, access_key, secret_key = sys.argv[1:4]
s3 = s3client.client(endpoint, access_key, secret_key, retries={"total_max_attempts": 1})
bucket = "py-attributes"
ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


s3.create_bucket(Bucket=bucket)
s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
first = s3.put_object(Bucket=bucket, Key="single", Body=b"a" * 1000, ChecksumAlgorithm="SHA256")
second = s3.put_object(Bucket=bucket, Key="single", Body=b"b" * 10)
attributes = s3.get_object_attributes(Bucket=bucket, Key="single", ObjectAttributes=ALL)
assert attributes["ObjectSize"] == 10 and attributes["StorageClass"] == "STANDARD", attributes
assert '"' + attributes["ETag"] + '"' == second["ETag"], (attributes["ETag"], second["ETag"])
assert attributes["VersionId"] == second["VersionId"]
assert "ObjectParts" not in attributes, "a single PUT has no parts"
older = s3.get_object_attributes(Bucket=bucket, Key="single", VersionId=first["VersionId"], ObjectAttributes=["ObjectSize", "Checksum"])
assert older["ObjectSize"] == 1000 and older["Checksum"]["ChecksumSHA256"] == first["ChecksumSHA256"], older
assert "ETag" not in older and "StorageClass" not in older

# Multipart: ObjectParts, paged.
upload = s3.create_multipart_upload(Bucket=bucket, Key="multi")
parts = []
for number, size in [(1, 5 * 1024 * 1024), (2, 5 * 1024 * 1024), (3, 1234)]:
    answer = s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload["UploadId"], PartNumber=number, Body=b"m" * size)
    parts.append({"PartNumber": number, "ETag": answer["ETag"]})
s3.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts})
attributes = s3.get_object_attributes(Bucket=bucket, Key="multi", ObjectAttributes=["ObjectParts", "ObjectSize"], MaxParts=2)
object_parts = attributes["ObjectParts"]
assert object_parts["TotalPartsCount"] == 3 and object_parts["IsTruncated"] is True, object_parts
assert [(part["PartNumber"], part["Size"]) for part in object_parts["Parts"]] == [(1, 5242880), (2, 5242880)], object_parts
assert object_parts["NextPartNumberMarker"] == 2
rest = s3.get_object_attributes(Bucket=bucket, Key="multi", ObjectAttributes=["ObjectParts"], PartNumberMarker=2)["ObjectParts"]
assert [(part["PartNumber"], part["Size"]) for part in rest["Parts"]] == [(3, 1234)] and rest["IsTruncated"] is False, rest
assert attributes["ObjectSize"] == 2 * 5242880 + 1234

# Errors.
assert failure(lambda: s3.get_object_attributes(Bucket=bucket, Key="absent", ObjectAttributes=["ETag"])) == ("NoSuchKey", 404)
assert failure(lambda: s3.get_object_attributes(Bucket=bucket, Key="single", ObjectAttributes=["Colour"])) == ("InvalidArgument", 400)

# FetchOwner and RequestPayer.
listed = s3.list_objects_v2(Bucket=bucket, FetchOwner=True, RequestPayer="requester")
assert all(entry["Owner"]["ID"] for entry in listed["Contents"]), listed["Contents"]
assert all("Owner" not in entry for entry in s3.list_objects_v2(Bucket=bucket)["Contents"])
assert s3.get_object(Bucket=bucket, Key="single", RequestPayer="requester")["Body"].read() == b"b" * 10

for version in s3.list_object_versions(Bucket=bucket)["Versions"]:
    s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
s3.delete_bucket(Bucket=bucket)
print("object attributes: ok")
