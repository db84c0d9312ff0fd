"""One bucket of an S3-compatible service, through boto3.

boto3 signs every request (SigV4), retries what may pass (5xx, SlowDown,
time-outs) a few times with backoff, and splits large uploads into parts;
no signing or retrying is written here. What is: the checks an
administrator needs at start, uploads that carry their SHA-256 so the
service refuses bytes that differ from it, the object's stored checksum
read back, streaming reads through the hash in bounded memory, and every
failure as one sentence (`errors.py`).

Credentials: the connection's key pair, or boto3's own chain without one.
When the service refuses them, `credentials_source` (if given) is asked
for the connection again, so a key rotated in the configuration is taken
up by a running site without a restart.
"""
from __future__ import annotations

import base64
import datetime as dt
import errno
import hashlib
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from backend.config import ObjectStoreConfig, ObjectStoreConnection
from backend.framework.checksum import file_checksum
from backend.object_store.errors import ObjectStoreError, describe

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20
MiB = 1 << 20
# Up to `multipart_threshold_mb` (64 MiB by default) an object is one PUT
# carrying its whole SHA-256: the service checks it and keeps it, so
# verifying the object later is one HEAD. Larger ones go up in parts of up
# to PART_SIZE, each with its own SHA-256 (the service checks each part);
# their stored checksum is then a checksum of the parts' checksums, so
# verifying them reads the object through the hash.
PART_SIZE = 16 * MiB
ATTEMPTS = 3  # botocore's standard retry mode: the first try and two retries
PRESIGNED_LIFETIME = 300  # seconds, as GitLab's direct downloads


def hex_to_base64(checksum: str) -> str:
    return base64.b64encode(bytes.fromhex(checksum)).decode()


def base64_to_hex(checksum: str) -> str | None:
    try:
        raw = base64.b64decode(checksum, validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == hashlib.sha256().digest_size else None


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    # The object's whole SHA-256 (hex) as the service stored it, or None
    # (uploaded without one, or in parts).
    sha256: str | None


@dataclass(frozen=True)
class PendingUpload:
    """A multipart upload begun and never completed or aborted."""
    key: str
    upload_id: str
    initiated: dt.datetime


class Bucket:
    def __init__(self, config: ObjectStoreConfig, *, timeout: float = 60.0,
                 max_connections: int = 10,
                 credentials_source: Callable[[], ObjectStoreConnection] | None = None) -> None:
        self.name = config.bucket
        self.connection = config.connection
        self.single_put_limit = config.multipart_threshold_mb * MiB
        self.part_size = min(PART_SIZE, self.single_put_limit)
        self.timeout = timeout
        self.max_connections = max_connections
        self.credentials_source = credentials_source
        where = config.connection.endpoint or f"AWS S3 ({config.connection.region})"
        self.described = f"bucket {config.bucket} at {where}"
        self._lock = threading.Lock()
        self._client = self._make_client(config.connection)

    def _make_client(self, connection: ObjectStoreConnection):
        options = BotoConfig(
            region_name=connection.region, signature_version="s3v4",
            # Not SigV4's hash of every body as well: uploads carry their
            # SHA-256 in a signed header, which the service checks, so a
            # second pass over each body (botocore does it over http)
            # adds nothing but a core's time.
            s3={"addressing_style": "path" if connection.path_style else "auto",
                "payload_signing_enabled": False},
            retries={"max_attempts": ATTEMPTS, "mode": "standard"},
            connect_timeout=self.timeout, read_timeout=self.timeout,
            max_pool_connections=max(10, self.max_connections),
            # Checksums only where asked for: a service that knows no
            # flexible checksums (older MinIO, Ceph) then still takes PUTs.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required")
        keys = {}
        if connection.aws_access_key_id:
            keys = {"aws_access_key_id": connection.aws_access_key_id,
                    "aws_secret_access_key": connection.aws_secret_access_key}
        session = boto3.session.Session()
        return session.client("s3", endpoint_url=connection.endpoint or None, config=options,
                              **keys)

    @property
    def client(self):
        return self._client

    def _call(self, action: Callable, key: str | None = None):
        """Run `action(client)`; a refusal of the credentials asks the
        source for them again and, if they changed, tries once more."""
        if key is not None:
            checked_key(key, self.described)
        client = self._client
        try:
            return action(client)
        except (ClientError, BotoCoreError, OSError) as exc:
            failure = describe(exc, self.described, key)
        if failure.credentials and self._refresh_credentials(client):
            try:
                return action(self._client)
            except (ClientError, BotoCoreError, OSError) as exc:
                failure = describe(exc, self.described, key)
        raise failure

    def _refresh_credentials(self, failed_client) -> bool:
        if self.credentials_source is None:
            return False
        with self._lock:
            if self._client is not failed_client:
                return True  # another thread has just changed them
            try:
                connection = self.credentials_source()
            except Exception as exc:  # a configuration being edited: keep the old one
                log.warning("could not read the object store's connection again: %s", exc)
                return False
            if connection == self.connection:
                return False
            log.info("the object store's credentials changed; using the new ones")
            self.connection = connection
            self._client = self._make_client(connection)
            return True

    # --- checks ---------------------------------------------------------------

    def check(self) -> None:
        """The bucket exists and these credentials may use it; raises
        ObjectStoreError with the reason otherwise. Writes nothing."""
        self._call(lambda client: client.head_bucket(Bucket=self.name))

    # --- writing ----------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes, sha256: str) -> None:
        """One PUT carrying `sha256` (hex): the service refuses the object
        (BadDigest) unless its bytes hash to it, so nothing else ever
        appears under `key`."""
        self._call(lambda client: client.put_object(
            Bucket=self.name, Key=key, Body=data, ChecksumAlgorithm="SHA256",
            ChecksumSHA256=hex_to_base64(sha256)), key)

    def upload_file(self, key: str, path: str, sha256: str | None, size: int) -> None:
        """A file under `key`. Up to the multipart threshold one PUT carrying
        its SHA-256 (hex; computed here when None); larger, a multipart
        upload whose parts each carry theirs, which makes the object appear
        only once every part has been accepted."""
        if size <= self.single_put_limit:
            if sha256 is None:
                sha256 = file_checksum(path)

            def put(client):
                with open(path, "rb") as body:
                    client.put_object(Bucket=self.name, Key=key, Body=body,
                                      ChecksumAlgorithm="SHA256",
                                      ChecksumSHA256=hex_to_base64(sha256))
            self._call(put, key)
            return
        transfer = TransferConfig(multipart_threshold=self.single_put_limit,
                                  multipart_chunksize=self.part_size, max_concurrency=4,
                                  use_threads=True)
        self._call(lambda client: client.upload_file(
            path, self.name, key, ExtraArgs={"ChecksumAlgorithm": "SHA256"},
            Config=transfer), key)

    def delete(self, key: str) -> None:
        """Remove `key`; a missing object is no error (S3 says 204 either way)."""
        self._call(lambda client: client.delete_object(Bucket=self.name, Key=key), key)

    # --- reading ----------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo:
        """The object's size and stored SHA-256; ObjectStoreError (ENOENT)
        when it does not exist."""
        answer = self._call(lambda client: client.head_object(
            Bucket=self.name, Key=key, ChecksumMode="ENABLED"), key)
        return ObjectInfo(int(answer["ContentLength"]), _whole_sha256(answer))

    def sha256(self, key: str) -> tuple[str, int]:
        """(hex SHA-256, size) of the object: the stored checksum when the
        service has the whole object's, else the object read through the hash."""
        info = self.head(key)
        if info.sha256 is not None:
            return info.sha256, info.size
        return self.read_sha256(key)

    def read_sha256(self, key: str) -> tuple[str, int]:
        """Read the object through SHA-256, READ_SIZE at a time."""
        digest = hashlib.sha256()
        size = 0
        for chunk in self.read(key):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size

    def read(self, key: str) -> Iterator[bytes]:
        """The object's bytes in pieces of up to READ_SIZE; ObjectStoreError
        if the read fails on the way."""
        return self.open_read(key)[1]

    def open_read(self, key: str) -> tuple[int, Iterator[bytes]]:
        """(size, its bytes in pieces) of an object, asked for now: a missing
        object or a refusal raises here, before any byte."""
        answer = self._call(lambda client: client.get_object(Bucket=self.name, Key=key), key)
        return int(answer["ContentLength"]), self._pieces(answer["Body"], key)

    def _pieces(self, body, key: str) -> Iterator[bytes]:
        try:
            while True:
                try:
                    chunk = body.read(READ_SIZE)
                except (BotoCoreError, OSError) as exc:
                    raise describe(exc, self.described, key) from None
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    def presigned_url(self, key: str, lifetime: int = PRESIGNED_LIFETIME) -> str:
        """A GET URL for `key` that works without credentials for `lifetime`
        seconds; its query is signed, so it must be fetched byte for byte."""
        return self._call(lambda client: client.generate_presigned_url(
            "get_object", Params={"Bucket": self.name, "Key": key}, ExpiresIn=lifetime), key)

    # --- abandoned uploads ------------------------------------------------------

    def pending_uploads(self, prefix: str = "") -> list[PendingUpload]:
        found: list[PendingUpload] = []

        def walk(client):
            for page in client.get_paginator("list_multipart_uploads").paginate(
                    Bucket=self.name, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    found.append(PendingUpload(upload["Key"], upload["UploadId"],
                                               upload["Initiated"]))
        self._call(walk)
        return found

    def abort_upload(self, upload: PendingUpload) -> None:
        self._call(lambda client: client.abort_multipart_upload(
            Bucket=self.name, Key=upload.key, UploadId=upload.upload_id), upload.key)


def checked_key(key: str, store: str) -> str:
    """A key as the sites make them (`cool_widgets/ab/<uuid>/name`), or
    ObjectStoreError (ENOENT). Refused: empty, `.` and `..` segments, which
    URLs resolve (`a/../../other-bucket/key` would be signed for another
    bucket), a leading slash, control characters and backslashes."""
    segments = key.split("/")
    if (not key or len(key.encode("utf-8", "surrogatepass")) > 1024
            or any(segment in ("", ".", "..") for segment in segments)
            or any(ord(char) < 0x20 or char in "\\\x7f" for char in key)):
        raise ObjectStoreError(f"{key[:100]!r} is not a valid key in the {store}", errno.ENOENT)
    return key


def _whole_sha256(answer: dict) -> str | None:
    """The whole object's SHA-256 from a HEAD, or None. An object uploaded
    in parts has a checksum of its parts' checksums instead, which services
    mark in different ways (S3: ChecksumType COMPOSITE and a "-N" suffix;
    moto: neither on HEAD); all of them give it an ETag ending in "-N"."""
    value = answer.get("ChecksumSHA256")
    if (not value or answer.get("ChecksumType") == "COMPOSITE" or "-" in value
            or "-" in answer.get("ETag", "")):
        return None
    return base64_to_hex(value)


def open_bucket(config: ObjectStoreConfig, **options) -> Bucket | None:
    """The bucket of an enabled object store, None when it is not enabled."""
    if not config.enabled:
        return None
    return Bucket(config, **options)
