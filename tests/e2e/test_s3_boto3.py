"""S3 operations through boto3, acting as `user/admin` with a static key."""

import datetime
import hashlib
import json
import os
import urllib.parse

import pytest
import requests

from keyless_client import empty_and_delete_bucket, s3_error, unique_name

MIB = 1024 * 1024


def md5_etag(data):
    return f'"{hashlib.md5(data).hexdigest()}"'


def multipart_etag(parts):
    digests = b"".join(hashlib.md5(part).digest() for part in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


# Buckets


def test_bucket_lifecycle(s3):
    name = unique_name()

    s3.create_bucket(Bucket=name)
    s3.head_bucket(Bucket=name)
    names = [entry["Name"] for entry in s3.list_buckets()["Buckets"]]
    assert name in names
    location = s3.get_bucket_location(Bucket=name)["LocationConstraint"]
    assert location in (None, "us-east-1")

    s3.delete_bucket(Bucket=name)

    assert s3_error(s3.head_bucket, Bucket=name) == ("404", 404)
    names = [entry["Name"] for entry in s3.list_buckets()["Buckets"]]
    assert name not in names


def test_delete_missing_bucket_fails(s3):
    assert s3_error(s3.delete_bucket, Bucket=unique_name()) == ("NoSuchBucket", 404)


def test_object_in_missing_bucket_fails(s3):
    assert s3_error(s3.get_object, Bucket=unique_name(), Key="k") == ("NoSuchBucket", 404)


def test_delete_nonempty_bucket_fails(s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")

    assert s3_error(s3.delete_bucket, Bucket=bucket) == ("BucketNotEmpty", 409)
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"x"


def test_create_existing_bucket_changes_nothing(s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")

    # AWS answers BucketAlreadyOwnedByYou, except in us-east-1, where it
    # answers 200 for legacy compatibility (BucketAlreadyOwnedByYou in the
    # S3 API model). Either is compatible.
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass

    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"x"


# Objects


def test_put_get_head_delete_object(s3, bucket):
    data = os.urandom(1000)

    put = s3.put_object(Bucket=bucket, Key="model.bin", Body=data)
    assert put["ETag"] == md5_etag(data)

    got = s3.get_object(Bucket=bucket, Key="model.bin")
    assert got["Body"].read() == data
    assert got["ETag"] == md5_etag(data)
    assert got["ContentLength"] == 1000

    head = s3.head_object(Bucket=bucket, Key="model.bin")
    assert head["ContentLength"] == 1000
    assert head["ETag"] == md5_etag(data)
    assert isinstance(head["LastModified"], datetime.datetime)

    s3.delete_object(Bucket=bucket, Key="model.bin")
    assert s3_error(s3.get_object, Bucket=bucket, Key="model.bin") == ("NoSuchKey", 404)
    assert s3_error(s3.head_object, Bucket=bucket, Key="model.bin") == ("404", 404)


def test_delete_missing_object_succeeds(s3, bucket):
    response = s3.delete_object(Bucket=bucket, Key="never-written")

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_empty_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")

    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ContentLength"] == 0
    assert got["ETag"] == md5_etag(b"")


def test_overwrite_replaces_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first version")
    s3.put_object(Bucket=bucket, Key="k", Body=b"second")

    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second"


@pytest.mark.parametrize(
    "key",
    [
        "dir/with space/file.txt",
        "plus+and%percent&amp=eq",
        "unicode-ünïcödé-数据.bin",
        "a//double/slash",
        "trailing/",
        "question?mark#hash",
        "tilde~star*paren(1)",
    ],
)
def test_special_character_keys_round_trip(s3, bucket, key):
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())

    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    listed = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == [key]


def test_user_metadata_and_standard_headers(s3, bucket):
    expires = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    s3.put_object(
        Bucket=bucket,
        Key="described",
        Body=b"{}",
        ContentType="application/json",
        CacheControl="max-age=60",
        ContentDisposition='attachment; filename="weights.json"',
        ContentEncoding="identity",
        ContentLanguage="en",
        Expires=expires,
        Metadata={"Purpose": "training", "shard-index": "7"},
    )

    for response in (
        s3.head_object(Bucket=bucket, Key="described"),
        s3.get_object(Bucket=bucket, Key="described"),
    ):
        assert response["ContentType"] == "application/json"
        assert response["CacheControl"] == "max-age=60"
        assert response["ContentDisposition"] == 'attachment; filename="weights.json"'
        assert response["ContentEncoding"] == "identity"
        assert response["ContentLanguage"] == "en"
        assert response["Expires"] == expires
        assert response["Metadata"] == {"purpose": "training", "shard-index": "7"}


def test_checksum_sha256_accepted(s3, bucket):
    response = s3.put_object(
        Bucket=bucket, Key="checked", Body=b"checked bytes", ChecksumAlgorithm="SHA256"
    )

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_object(Bucket=bucket, Key="checked")["Body"].read() == b"checked bytes"


# Ranges and conditional requests


@pytest.fixture
def ten_bytes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="digits", Body=b"0123456789")
    return "digits"


@pytest.mark.parametrize(
    ("range_header", "body", "content_range"),
    [
        ("bytes=0-4", b"01234", "bytes 0-4/10"),
        ("bytes=5-", b"56789", "bytes 5-9/10"),
        ("bytes=-3", b"789", "bytes 7-9/10"),
        ("bytes=8-100", b"89", "bytes 8-9/10"),
        ("bytes=3-3", b"3", "bytes 3-3/10"),
    ],
)
def test_range_get(s3, bucket, ten_bytes, range_header, body, content_range):
    response = s3.get_object(Bucket=bucket, Key=ten_bytes, Range=range_header)

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert response["Body"].read() == body
    assert response["ContentRange"] == content_range
    assert response["ContentLength"] == len(body)


def test_range_head_describes_the_ranged_get(s3, bucket, ten_bytes):
    response = s3.head_object(Bucket=bucket, Key=ten_bytes, Range="bytes=2-5")

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert response["ContentRange"] == "bytes 2-5/10"
    assert response["ContentLength"] == 4


def test_range_beyond_end_fails(s3, bucket, ten_bytes):
    error = s3_error(s3.get_object, Bucket=bucket, Key=ten_bytes, Range="bytes=10-20")

    assert error == ("InvalidRange", 416)


def test_conditional_get(s3, bucket, ten_bytes):
    head = s3.head_object(Bucket=bucket, Key=ten_bytes)
    etag = head["ETag"]
    modified = head["LastModified"]
    hour = datetime.timedelta(hours=1)

    assert s3_error(s3.get_object, Bucket=bucket, Key=ten_bytes, IfNoneMatch=etag) == ("304", 304)
    assert s3_error(s3.get_object, Bucket=bucket, Key=ten_bytes, IfModifiedSince=modified) == (
        "304",
        304,
    )
    assert s3_error(s3.get_object, Bucket=bucket, Key=ten_bytes, IfMatch='"0000"') == (
        "PreconditionFailed",
        412,
    )
    assert s3_error(
        s3.get_object, Bucket=bucket, Key=ten_bytes, IfUnmodifiedSince=modified - hour
    ) == ("PreconditionFailed", 412)
    assert s3_error(s3.head_object, Bucket=bucket, Key=ten_bytes, IfNoneMatch=etag) == (
        "304",
        304,
    )

    matched = s3.get_object(Bucket=bucket, Key=ten_bytes, IfMatch=etag)
    assert matched["Body"].read() == b"0123456789"
    changed = s3.get_object(Bucket=bucket, Key=ten_bytes, IfModifiedSince=modified - hour)
    assert changed["Body"].read() == b"0123456789"
    other = s3.get_object(Bucket=bucket, Key=ten_bytes, IfNoneMatch='"0000"')
    assert other["Body"].read() == b"0123456789"


# Copy


def test_copy_object_keeps_metadata(s3, bucket):
    s3.put_object(
        Bucket=bucket, Key="src", Body=b"payload", ContentType="text/plain", Metadata={"a": "1"}
    )

    response = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})

    assert response["CopyObjectResult"]["ETag"] == md5_etag(b"payload")
    copied = s3.get_object(Bucket=bucket, Key="dst")
    assert copied["Body"].read() == b"payload"
    assert copied["ContentType"] == "text/plain"
    assert copied["Metadata"] == {"a": "1"}


def test_copy_object_replaces_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", Metadata={"a": "1"})

    s3.copy_object(
        Bucket=bucket,
        Key="dst",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE",
        Metadata={"b": "2"},
        ContentType="application/x-replaced",
    )

    copied = s3.head_object(Bucket=bucket, Key="dst")
    assert copied["Metadata"] == {"b": "2"}
    assert copied["ContentType"] == "application/x-replaced"
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"a": "1"}


def test_copy_object_across_buckets(s3, bucket):
    target = unique_name()
    s3.create_bucket(Bucket=target)
    try:
        s3.put_object(Bucket=bucket, Key="src", Body=b"across")
        s3.copy_object(Bucket=target, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
        assert s3.get_object(Bucket=target, Key="dst")["Body"].read() == b"across"
    finally:
        empty_and_delete_bucket(s3, target)


def test_copy_object_failures(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload")

    missing = s3_error(
        s3.copy_object, Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "nope"}
    )
    assert missing == ("NoSuchKey", 404)
    precondition = s3_error(
        s3.copy_object,
        Bucket=bucket,
        Key="dst",
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceIfMatch='"0000"',
    )
    assert precondition == ("PreconditionFailed", 412)
    assert s3_error(s3.head_object, Bucket=bucket, Key="dst") == ("404", 404)


# DeleteObjects


def test_delete_objects_batch(s3, bucket):
    for key in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")

    response = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "missing"}]}
    )

    assert sorted(item["Key"] for item in response["Deleted"]) == ["a", "b", "missing"]
    assert response.get("Errors", []) == []
    remaining = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert remaining == ["c"]


def test_delete_objects_quiet(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"x")

    response = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}], "Quiet": True})

    assert response.get("Deleted", []) == []
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


# Listing

LISTING_KEYS = [
    "a.txt",
    "logs/2024/01.log",
    "logs/2024/02.log",
    "logs/2025/01.log",
    "models/v1/weights.bin",
    "models/v2/weights.bin",
    "z.txt",
]


@pytest.fixture
def listing_bucket(s3, bucket):
    for key in LISTING_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    return bucket


def test_list_v2_all_keys_sorted(s3, listing_bucket):
    response = s3.list_objects_v2(Bucket=listing_bucket)

    assert [item["Key"] for item in response["Contents"]] == LISTING_KEYS
    assert response["KeyCount"] == len(LISTING_KEYS)
    assert response["IsTruncated"] is False
    assert all(item["Size"] == 1 for item in response["Contents"])
    assert all(item["ETag"] == md5_etag(b"x") for item in response["Contents"])


def test_list_v2_prefix_and_delimiter(s3, listing_bucket):
    top = s3.list_objects_v2(Bucket=listing_bucket, Delimiter="/")
    assert [item["Key"] for item in top["Contents"]] == ["a.txt", "z.txt"]
    assert [entry["Prefix"] for entry in top["CommonPrefixes"]] == ["logs/", "models/"]
    assert top["KeyCount"] == 4

    logs = s3.list_objects_v2(Bucket=listing_bucket, Prefix="logs/", Delimiter="/")
    assert "Contents" not in logs
    assert [entry["Prefix"] for entry in logs["CommonPrefixes"]] == ["logs/2024/", "logs/2025/"]

    year = s3.list_objects_v2(Bucket=listing_bucket, Prefix="logs/2024/")
    assert [item["Key"] for item in year["Contents"]] == ["logs/2024/01.log", "logs/2024/02.log"]

    none = s3.list_objects_v2(Bucket=listing_bucket, Prefix="nothing/")
    assert none["KeyCount"] == 0
    assert "Contents" not in none


# Paging loops stop after this many pages, so a server that repeats a page
# fails the test instead of hanging it.
MAX_PAGES = 20


def test_list_v2_continuation(s3, listing_bucket):
    keys = []
    token = None
    pages = 0
    while pages < MAX_PAGES:
        options = {"Bucket": listing_bucket, "MaxKeys": 2}
        if token:
            options["ContinuationToken"] = token
        page = s3.list_objects_v2(**options)
        pages += 1
        keys += [item["Key"] for item in page["Contents"]]
        assert page["MaxKeys"] == 2
        assert len(page["Contents"]) <= 2
        if not page["IsTruncated"]:
            assert "NextContinuationToken" not in page
            break
        token = page["NextContinuationToken"]

    assert keys == LISTING_KEYS
    assert pages == 4


def test_list_v2_continuation_with_delimiter(s3, listing_bucket):
    entries = []
    token = None
    for _ in range(MAX_PAGES):
        options = {"Bucket": listing_bucket, "MaxKeys": 1, "Delimiter": "/"}
        if token:
            options["ContinuationToken"] = token
        page = s3.list_objects_v2(**options)
        entries += [item["Key"] for item in page.get("Contents", [])]
        entries += [entry["Prefix"] for entry in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]

    assert entries == ["a.txt", "logs/", "models/", "z.txt"]


def test_list_v2_start_after(s3, listing_bucket):
    response = s3.list_objects_v2(Bucket=listing_bucket, StartAfter="logs/2025/01.log")

    assert [item["Key"] for item in response["Contents"]] == LISTING_KEYS[4:]
    assert response["StartAfter"] == "logs/2025/01.log"


def test_list_v2_encoding_type_url(s3, bucket):
    keys = ["plain", "with space", "plus+sign", "ünï/cödé", "percent%25"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")

    # botocore decodes keys only when it chose the encoding itself, so here
    # the keys arrive exactly as the server encoded them.
    response = s3.list_objects_v2(Bucket=bucket, EncodingType="url")

    assert response["EncodingType"] == "url"
    raw_keys = [item["Key"] for item in response["Contents"]]
    assert "with space" not in raw_keys
    assert sorted(urllib.parse.unquote_plus(key) for key in raw_keys) == sorted(keys)


def test_list_v1_marker_paging(s3, listing_bucket):
    keys = []
    marker = ""
    for _ in range(MAX_PAGES):
        page = s3.list_objects(Bucket=listing_bucket, MaxKeys=3, Marker=marker)
        page_keys = [item["Key"] for item in page["Contents"]]
        keys += page_keys
        if not page["IsTruncated"]:
            break
        marker = page.get("NextMarker", page_keys[-1])

    assert keys == LISTING_KEYS


def test_list_v1_prefix_delimiter(s3, listing_bucket):
    response = s3.list_objects(Bucket=listing_bucket, Prefix="models/", Delimiter="/")

    assert [entry["Prefix"] for entry in response["CommonPrefixes"]] == ["models/v1/", "models/v2/"]
    assert response["Prefix"] == "models/"
    assert response["Delimiter"] == "/"


def test_list_v1_next_marker_with_delimiter(s3, listing_bucket):
    page = s3.list_objects(Bucket=listing_bucket, Delimiter="/", MaxKeys=2)

    assert page["IsTruncated"] is True
    assert page["NextMarker"] == "logs/"
    rest = s3.list_objects(Bucket=listing_bucket, Delimiter="/", Marker=page["NextMarker"])
    assert [entry["Prefix"] for entry in rest["CommonPrefixes"]] == ["models/"]
    assert [item["Key"] for item in rest["Contents"]] == ["z.txt"]


# Multipart upload


def test_multipart_upload_complete(s3, bucket):
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), b"tail"]
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key="big", ContentType="application/x-tar", Metadata={"m": "1"}
    )
    upload_id = upload["UploadId"]

    completed = []
    for number, data in enumerate(parts, start=1):
        response = s3.upload_part(
            Bucket=bucket, Key="big", UploadId=upload_id, PartNumber=number, Body=data
        )
        assert response["ETag"] == md5_etag(data)
        completed.append({"PartNumber": number, "ETag": response["ETag"]})

    listed = s3.list_parts(Bucket=bucket, Key="big", UploadId=upload_id)
    assert [part["PartNumber"] for part in listed["Parts"]] == [1, 2, 3]
    assert [part["Size"] for part in listed["Parts"]] == [len(data) for data in parts]
    assert [part["ETag"] for part in listed["Parts"]] == [md5_etag(data) for data in parts]

    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(entry["Key"], entry["UploadId"]) for entry in uploads] == [("big", upload_id)]

    result = s3.complete_multipart_upload(
        Bucket=bucket, Key="big", UploadId=upload_id, MultipartUpload={"Parts": completed}
    )
    assert result["ETag"] == multipart_etag(parts)

    got = s3.get_object(Bucket=bucket, Key="big")
    assert got["Body"].read() == b"".join(parts)
    assert got["ETag"] == multipart_etag(parts)
    assert got["ContentType"] == "application/x-tar"
    assert got["Metadata"] == {"m": "1"}
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_multipart_list_parts_paging(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="paged")["UploadId"]
    for number in (1, 2, 3):
        s3.upload_part(Bucket=bucket, Key="paged", UploadId=upload_id, PartNumber=number, Body=b"p")

    first = s3.list_parts(Bucket=bucket, Key="paged", UploadId=upload_id, MaxParts=2)
    assert [part["PartNumber"] for part in first["Parts"]] == [1, 2]
    assert first["IsTruncated"] is True
    rest = s3.list_parts(
        Bucket=bucket,
        Key="paged",
        UploadId=upload_id,
        PartNumberMarker=first["NextPartNumberMarker"],
    )
    assert [part["PartNumber"] for part in rest["Parts"]] == [3]
    assert rest["IsTruncated"] is False


def test_multipart_upload_part_copy(s3, bucket):
    source = os.urandom(6 * MIB)
    s3.put_object(Bucket=bucket, Key="source", Body=source)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]

    first = s3.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload_id,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "source"},
        CopySourceRange=f"bytes=0-{5 * MIB - 1}",
    )
    second = s3.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload_id,
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "source"},
    )
    assert first["CopyPartResult"]["ETag"] == md5_etag(source[: 5 * MIB])
    assert second["CopyPartResult"]["ETag"] == md5_etag(source)

    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
                {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]},
            ]
        },
    )

    assembled = s3.get_object(Bucket=bucket, Key="assembled")["Body"].read()
    assert assembled == source[: 5 * MIB] + source


def test_multipart_abort(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="aborted")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="aborted", UploadId=upload_id, PartNumber=1, Body=b"x")

    s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=upload_id)

    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3_error(s3.list_parts, Bucket=bucket, Key="aborted", UploadId=upload_id) == (
        "NoSuchUpload",
        404,
    )
    assert s3_error(
        s3.upload_part, Bucket=bucket, Key="aborted", UploadId=upload_id, PartNumber=2, Body=b"y"
    ) == ("NoSuchUpload", 404)
    assert s3_error(s3.head_object, Bucket=bucket, Key="aborted") == ("404", 404)


def test_list_multipart_uploads_prefix(s3, bucket):
    kept = s3.create_multipart_upload(Bucket=bucket, Key="train/a")["UploadId"]
    s3.create_multipart_upload(Bucket=bucket, Key="eval/b")

    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix="train/")["Uploads"]

    assert [(entry["Key"], entry["UploadId"]) for entry in uploads] == [("train/a", kept)]


def test_multipart_small_part_rejected(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    parts = []
    for number in (1, 2):
        response = s3.upload_part(
            Bucket=bucket, Key="small", UploadId=upload_id, PartNumber=number, Body=b"tiny"
        )
        parts.append({"PartNumber": number, "ETag": response["ETag"]})

    error = s3_error(
        s3.complete_multipart_upload,
        Bucket=bucket,
        Key="small",
        UploadId=upload_id,
        MultipartUpload={"Parts": parts},
    )

    assert error == ("EntityTooSmall", 400)
    assert s3_error(s3.head_object, Bucket=bucket, Key="small") == ("404", 404)


def test_multipart_wrong_part_etag_rejected(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="wrong")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="wrong", UploadId=upload_id, PartNumber=1, Body=b"x")

    error = s3_error(
        s3.complete_multipart_upload,
        Bucket=bucket,
        Key="wrong",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": md5_etag(b"other")}]},
    )

    assert error == ("InvalidPart", 400)


def test_multipart_parts_out_of_order_rejected(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="order")["UploadId"]
    parts = []
    for number in (1, 2):
        data = os.urandom(5 * MIB)
        response = s3.upload_part(
            Bucket=bucket, Key="order", UploadId=upload_id, PartNumber=number, Body=data
        )
        parts.append({"PartNumber": number, "ETag": response["ETag"]})

    error = s3_error(
        s3.complete_multipart_upload,
        Bucket=bucket,
        Key="order",
        UploadId=upload_id,
        MultipartUpload={"Parts": list(reversed(parts))},
    )

    assert error == ("InvalidPartOrder", 400)


# Bucket policy


def read_only_policy(bucket):
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenySecrets",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/secret/*",
            },
            {
                "Sid": "AllowRest",
                "Effect": "Allow",
                "Principal": {"AWS": ["user/admin"]},
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            },
        ],
    }


def test_bucket_policy_put_get_delete(s3, bucket):
    assert s3_error(s3.get_bucket_policy, Bucket=bucket) == ("NoSuchBucketPolicy", 404)
    policy = read_only_policy(bucket)

    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))

    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy
    s3.delete_bucket_policy(Bucket=bucket)
    assert s3_error(s3.get_bucket_policy, Bucket=bucket) == ("NoSuchBucketPolicy", 404)


def test_bucket_policy_deny_applies_to_owner(s3, bucket):
    s3.put_object(Bucket=bucket, Key="secret/key.pem", Body=b"s")
    s3.put_object(Bucket=bucket, Key="public/readme", Body=b"r")

    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(read_only_policy(bucket)))

    assert s3_error(s3.get_object, Bucket=bucket, Key="secret/key.pem") == ("AccessDenied", 403)
    assert s3.get_object(Bucket=bucket, Key="public/readme")["Body"].read() == b"r"
    # PutBucketPolicy and DeleteBucketPolicy are decided by org policies alone,
    # so the owner can still remove the policy.
    s3.delete_bucket_policy(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="secret/key.pem")["Body"].read() == b"s"


def test_bucket_policy_unknown_operator_rejected(s3, bucket):
    policy = read_only_policy(bucket)
    policy["Statement"][1]["Condition"] = {"StringEqualsMaybe": {"s3:prefix": "x"}}

    error = s3_error(s3.put_bucket_policy, Bucket=bucket, Policy=json.dumps(policy))

    assert error == ("MalformedPolicy", 400)
    assert s3_error(s3.get_bucket_policy, Bucket=bucket) == ("NoSuchBucketPolicy", 404)


def test_bucket_policy_invalid_json_rejected(s3, bucket):
    error = s3_error(s3.put_bucket_policy, Bucket=bucket, Policy="{not json")

    assert error == ("MalformedPolicy", 400)


# Presigned URLs


def test_presigned_get_and_put(s3, bucket):
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "presigned"}, ExpiresIn=300
    )
    response = requests.put(put_url, data=b"uploaded without credentials", timeout=30)
    assert response.status_code == 200, response.text

    get_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "presigned"}, ExpiresIn=300
    )
    response = requests.get(get_url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.content == b"uploaded without credentials"


def test_presigned_url_rejects_changed_key(s3, bucket):
    s3.put_object(Bucket=bucket, Key="one", Body=b"1")
    s3.put_object(Bucket=bucket, Key="two", Body=b"2")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "one"}, ExpiresIn=300
    )

    response = requests.get(url.replace("/one?", "/two?"), timeout=30)

    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text
