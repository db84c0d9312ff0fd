"""The moto S3 server of tests/support/s3_server.py does what tests need of it."""
from __future__ import annotations

import base64
import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from tests.support.s3_server import (S3Server, s3_auth_server, s3_bucket,  # noqa: F401 (fixtures)
                                     s3_server)


def error_of(exc_info) -> tuple[str, int]:
    response = exc_info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_bucket_is_fresh_and_objects_round_trip(s3_server, s3_bucket):
    s3 = s3_server.client()
    assert s3_server.endpoint.startswith("http://127.0.0.1:")
    assert s3.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0

    body = os.urandom(100_000)
    s3.put_object(Bucket=s3_bucket, Key="dir/file name+plus%.bin", Body=body,
                  ChecksumAlgorithm="SHA256")
    assert s3.get_object(Bucket=s3_bucket, Key="dir/file name+plus%.bin")["Body"].read() == body
    head = s3.head_object(Bucket=s3_bucket, Key="dir/file name+plus%.bin", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()


def test_each_bucket_is_new(s3_server, s3_bucket):
    assert s3_server.make_bucket() != s3_bucket
    with pytest.raises(ClientError) as exc_info:
        s3_server.client().head_object(Bucket=s3_bucket, Key="missing")
    assert error_of(exc_info) == ("404", 404)


def test_server_and_clients_ignore_the_callers_aws_environment(monkeypatch):
    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "0")  # would make moto check keys
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")  # botocore: ProfileNotFound
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    with S3Server() as server:
        bucket = server.make_bucket()
        s3 = server.client()
        s3.put_object(Bucket=bucket, Key="k", Body=b"v")
        # botocore's default (a CRC32 on every upload), not the variable's
        assert "ChecksumCRC32" in s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert server._process is None


def test_a_deleted_key_is_refused_and_a_new_one_accepted(s3_auth_server):
    bucket = s3_auth_server.make_bucket()
    key_a = s3_auth_server.create_access_key("uploader")
    s3_a = s3_auth_server.client(*key_a)
    s3_a.put_object(Bucket=bucket, Key="k", Body=b"v")

    # An unknown key and a wrong secret are refused even on a live server.
    with pytest.raises(ClientError) as exc_info:
        s3_auth_server.client("AKIANOSUCHKEY0000000", "x").get_object(Bucket=bucket, Key="k")
    assert error_of(exc_info) == ("InvalidAccessKeyId", 403)
    with pytest.raises(ClientError) as exc_info:
        s3_auth_server.client(key_a[0], "wrong-secret").get_object(Bucket=bucket, Key="k")
    assert error_of(exc_info) == ("SignatureDoesNotMatch", 403)

    s3_auth_server.delete_access_key("uploader", key_a[0])
    with pytest.raises(ClientError) as exc_info:
        s3_a.get_object(Bucket=bucket, Key="k")
    assert error_of(exc_info) == ("InvalidAccessKeyId", 403)

    key_b = s3_auth_server.create_access_key("uploader")
    assert s3_auth_server.client(*key_b).get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"


def test_a_key_without_s3_permission_is_denied(s3_auth_server):
    bucket = s3_auth_server.make_bucket()
    iam = s3_auth_server.client(service="iam")
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    with pytest.raises(ClientError) as exc_info:
        s3_auth_server.client(key["AccessKeyId"], key["SecretAccessKey"]).list_objects_v2(
            Bucket=bucket)
    assert error_of(exc_info) == ("AccessDenied", 403)


def test_stop_ends_the_subprocess():
    server = S3Server().start()
    process = server._process
    server.close()
    assert process.poll() is not None
    assert not server.log_path.exists()
