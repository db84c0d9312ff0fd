"""What an S3-compatible service's refusals and failures mean, in one line.

Every failure of the object store becomes an `ObjectStoreError`, an OSError
whose `strerror` is the sentence a registry, a log line or the console
shows; the credentials never appear in it. Being an OSError, it takes the
paths a full disk or a missing file takes: a failed sync or verification
with its reason, a replica removal retried later.
"""
from __future__ import annotations

import errno
from http import HTTPStatus

from botocore.exceptions import (BotoCoreError, ClientError, ConnectionClosedError,
                                 ConnectTimeoutError, EndpointConnectionError,
                                 NoCredentialsError, ParamValidationError, ReadTimeoutError)

# Error codes by what they mean to an administrator.
CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied",
                    "ExpiredToken", "InvalidToken", "InvalidClientTokenId",
                    "AuthorizationHeaderMalformed", "InvalidSecurity"}
MISSING_CODES = {"NoSuchKey", "NotFound", "404"}
DIGEST_CODES = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch",
                "InvalidChecksum"}


class ObjectStoreError(OSError):
    """One readable sentence; `errno` ENOENT for a missing object,
    `credentials` when the service refused who we are, `transient` for
    what may pass by itself (5xx, SlowDown, a broken connection)."""

    def __init__(self, message: str, number: int = errno.EIO, *, credentials: bool = False,
                 transient: bool = False) -> None:
        super().__init__(number, message)
        self.credentials = credentials
        self.transient = transient

    def __str__(self) -> str:
        return self.strerror


def describe(exc: BaseException, store: str, key: str | None = None) -> ObjectStoreError:
    """The ObjectStoreError for a botocore exception; `store` names the bucket
    and service ("bucket geo-blobs at http://127.0.0.1:9000")."""
    if isinstance(exc, ObjectStoreError):
        return exc
    what = f"{key} in {store}" if key else store
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        said = (error.get("Message") or "").strip().splitlines()
        said = f": {said[0][:200]}" if said else ""
        if not code or code == str(status):  # no S3 error document: the HTTP reason
            code = _phrase(status)
        if said == f": {code}":
            said = ""
        if code == "NoSuchBucket" or (status == 404 and key is None):
            return ObjectStoreError(f"the {store} does not exist", errno.ENOENT)
        if code in MISSING_CODES or status == 404:
            return ObjectStoreError(f"object {what} does not exist", errno.ENOENT)
        if code in CREDENTIAL_CODES or status == 403:
            return ObjectStoreError(f"the object store refused the credentials for the "
                                    f"{store} ({code or status}{said})", errno.EACCES,
                                    credentials=True)
        if code in DIGEST_CODES:
            return ObjectStoreError(f"the object store refused {what}: its bytes did not "
                                    f"match the checksum sent with them ({code})")
        if code == "SlowDown" or status == 503:
            return ObjectStoreError(f"the object store is overloaded ({status or 503} "
                                    f"{code}) at {what}", transient=True)
        if status and status >= 500:
            return ObjectStoreError(f"the object store failed ({status} {code}) at {what}",
                                    transient=True)
        return ObjectStoreError(f"the object store answered {status} {code}{said} for {what}")
    if isinstance(exc, ParamValidationError):  # an empty or overlong key: no such object
        return ObjectStoreError(f"{key!r} is not a valid key in the {store}", errno.ENOENT)
    if isinstance(exc, NoCredentialsError):
        return ObjectStoreError(f"no credentials for the {store}: set aws_access_key_id and "
                                "aws_secret_access_key in its connection", errno.EACCES,
                                credentials=True)
    if isinstance(exc, EndpointConnectionError):
        return ObjectStoreError(f"cannot reach the {store}: no answer at its endpoint",
                                errno.ECONNREFUSED, transient=True)
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
        return ObjectStoreError(f"the {store} did not answer in time", errno.ETIMEDOUT,
                                transient=True)
    if isinstance(exc, ConnectionClosedError) or isinstance(exc, ConnectionError):
        return ObjectStoreError(f"the {store} closed the connection", errno.ECONNRESET,
                                transient=True)
    if isinstance(exc, BotoCoreError):
        text = str(exc).strip().splitlines()
        return ObjectStoreError(f"the {store} failed: {text[0][:200] if text else 'error'}",
                                transient=True)
    if isinstance(exc, OSError):
        return ObjectStoreError(f"the {store} failed: {exc.strerror or exc}",
                                exc.errno or errno.EIO, transient=True)
    raise exc


def _phrase(status) -> str:
    try:
        return HTTPStatus(int(status)).phrase
    except (TypeError, ValueError):
        return "error"
