"""A real S3-protocol server on loopback: moto's standalone server, run as a
subprocess of its own.

    with S3Server() as server:
        s3 = server.client()
        bucket = server.make_bucket()
        s3.put_object(Bucket=bucket, Key="k", Body=b"v")

The server speaks HTTP on 127.0.0.1; clients use path-style addressing
(http://127.0.0.1:PORT/bucket/key), region us-east-1.

Signatures and permissions
--------------------------
By default moto checks neither: any access key, any signature (even a
tampered one) is accepted. `S3Server(enforce_auth=True)` makes it check
both, the way moto does it:

* moto reads INITIAL_NO_AUTH_ACTION_COUNT from the environment once, at
  import, into `moto.settings` (default: infinity). A process-wide counter
  (`ActionAuthenticatorMixin.request_count`, shared by all services) lets
  that many auth-checked requests through unchecked; every later one must
  carry an access key of an IAM user of the server (else
  InvalidAccessKeyId), a valid SigV4 signature for it (else
  SignatureDoesNotMatch) and an IAM policy allowing the action (else
  AccessDenied). `POST /moto-api/reset-auth` with a number as the body sets
  the limit at runtime and resets the counter to 0.
* The key's status is NOT checked: an access key made Inactive through
  UpdateAccessKey is still accepted. Delete a key to revoke it.
* Only requests with an `Authorization` header can be checked: a presigned
  URL (signature in the query string) makes moto fail with a 500.

This server starts with the limit at 0 (everything checked from the first
request), opens it just long enough to create an administrator (an IAM user
allowed `*` on `*`), then closes it again for good. `client()` signs with
the administrator's key, so `make_bucket()` and the IAM helpers keep
working; `create_access_key()` gives an ordinary user allowed `s3:*`.

pytest fixtures below: `s3_server` (session), `s3_auth_server` (session,
enforce_auth=True) and `s3_bucket` (function, a fresh bucket on `s3_server`).
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import NoReturn

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.configprovider import ConstantProvider

REGION = "us-east-1"
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing-secret-key-0123456789"
ADMIN_USER = "s3-server-admin"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0

S3_ALL_POLICY = {"Version": "2012-10-17",
                 "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
ADMIN_POLICY = {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


# urllib without the caller's HTTP(S)_PROXY: the server is on loopback.
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class S3ServerError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_environment(enforce_auth: bool) -> dict[str, str]:
    """The caller's environment without anything that would change moto's
    behaviour behind our back (AWS_*, MOTO_*, the auth switch)."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_", "MOTO_")) and name != "INITIAL_NO_AUTH_ACTION_COUNT"}
    env["AWS_DEFAULT_REGION"] = REGION
    env["PYTHONUNBUFFERED"] = "1"  # so the log file is current when we read it
    if enforce_auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    return env


class S3Server:
    """moto's server in a subprocess on a free loopback port."""

    def __init__(self, enforce_auth: bool = False) -> None:
        self.enforce_auth = enforce_auth
        self.port = 0
        self._process: subprocess.Popen | None = None
        self._log_dir = Path(tempfile.mkdtemp(prefix="s3-server-"))
        self.log_path = self._log_dir / "moto.log"
        self._admin_credentials: tuple[str, str] | None = None
        self._default_client = None  # for make_bucket(); boto3 clients are thread-safe

    # --- life cycle ---------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "S3Server":
        if self._process is not None:
            return self
        # The port is free when we look but could be taken before moto binds
        # it: if the server dies at once, try another one.
        for _attempt in range(3):
            self.port = _free_port()
            self._spawn()
            if self._wait_until_ready():
                break
        else:
            self._raise_start_failure("exited at start-up three times")
        # Should the caller never stop us (a crashed test run), do not leave
        # the server running after this interpreter exits.
        atexit.register(self.stop)
        if self.enforce_auth:
            try:
                self._create_admin()
            except BaseException:
                self.stop()
                raise
        return self

    def _spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=_server_environment(self.enforce_auth), cwd=self._log_dir)

    def _wait_until_ready(self) -> bool:
        """True once the server answers; False if it exited (port taken?)."""
        # /moto-api/config is answered by moto itself, never auth-checked,
        # so polling it does not use up INITIAL_NO_AUTH_ACTION_COUNT.
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            try:
                with _LOOPBACK.open(f"{self.endpoint}/moto-api/config", timeout=0.5):
                    return True
            except urllib.error.HTTPError:
                return True  # an answer all the same
            except OSError:  # not listening yet (URLError is an OSError)
                time.sleep(0.05)
        self.stop()
        self._raise_start_failure(f"did not answer within {START_TIMEOUT:.0f} s")

    def _raise_start_failure(self, what: str) -> NoReturn:
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        raise S3ServerError(f"moto server on port {self.port} {what}; its output:\n{log[-4000:]}")

    def stop(self) -> None:
        atexit.unregister(self.stop)
        self._default_client = None  # a restarted server has another port
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        """Stop the server and remove its log."""
        self.stop()
        shutil.rmtree(self._log_dir, ignore_errors=True)

    def __enter__(self) -> "S3Server":
        try:
            return self.start()
        except BaseException:
            self.close()  # the error message carries the server's output
            raise

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def admin_credentials(self) -> tuple[str, str] | None:
        """(key id, secret) of the administrator of an auth-enforcing
        server; None on one that checks nothing."""
        return self._admin_credentials

    # --- clients ------------------------------------------------------------

    def client(self, access_key_id: str | None = None, secret_access_key: str | None = None,
               service: str = "s3", **config_options):
        """A boto3 client of this server. Without credentials: the dummy
        ones, or on an auth-enforcing server the administrator's.
        `config_options` are botocore Config options (e.g. retries,
        request_checksum_calculation) on top of path-style addressing."""
        if access_key_id is None:
            access_key_id, secret_access_key = self._admin_credentials or (
                DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY)
        # botocore's defaults, spelt out so AWS_REQUEST_CHECKSUM_CALCULATION &c.
        # of the caller's environment do not apply.
        options = {"signature_version": "s3v4", "s3": {"addressing_style": "path"},
                   "request_checksum_calculation": "when_supported",
                   "response_checksum_validation": "when_supported"}
        options.update(config_options)
        # Nor the caller's profile or config files (AWS_PROFILE, ~/.aws/...);
        # credentials, region and endpoint are given explicitly.
        core = botocore.session.Session()
        core.get_component("config_store").set_config_provider("profile", ConstantProvider(None))
        core.set_config_variable("config_file", os.devnull)
        core.set_config_variable("credentials_file", os.devnull)
        session = boto3.session.Session(aws_access_key_id=access_key_id,
                                        aws_secret_access_key=secret_access_key,
                                        region_name=REGION, botocore_session=core)
        return session.client(service, endpoint_url=self.endpoint, config=Config(**options))

    def make_bucket(self, name: str | None = None) -> str:
        name = name or f"test-{uuid.uuid4().hex[:20]}"
        if self._default_client is None:
            self._default_client = self.client()
        self._default_client.create_bucket(Bucket=name)
        return name

    # --- access keys (meaningful with enforce_auth=True) --------------------

    def create_access_key(self, user_name: str) -> tuple[str, str]:
        """A new access key of IAM user `user_name` (created on first use,
        with a policy allowing s3:* on everything): (key id, secret)."""
        iam = self.client(service="iam")
        try:
            iam.create_user(UserName=user_name)
            iam.put_user_policy(UserName=user_name, PolicyName="s3-all",
                                PolicyDocument=json.dumps(S3_ALL_POLICY))
        except iam.exceptions.EntityAlreadyExistsException:
            pass
        key = iam.create_access_key(UserName=user_name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def delete_access_key(self, user_name: str, access_key_id: str) -> None:
        """Revoke a key. (Making it Inactive would not do: moto still
        accepts inactive keys.)"""
        self.client(service="iam").delete_access_key(UserName=user_name,
                                                     AccessKeyId=access_key_id)

    def _create_admin(self) -> None:
        # Open the gate, create the administrator, close the gate.
        self._set_auth_limit("inf")
        try:
            self._admin_credentials = None
            iam = self.client(service="iam")
            iam.create_user(UserName=ADMIN_USER)
            iam.put_user_policy(UserName=ADMIN_USER, PolicyName="admin",
                                PolicyDocument=json.dumps(ADMIN_POLICY))
            key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
            self._admin_credentials = (key["AccessKeyId"], key["SecretAccessKey"])
        finally:
            self._set_auth_limit("0")

    def _set_auth_limit(self, limit: str) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset-auth",
                                         data=limit.encode(), method="POST",
                                         # moto reads the raw body: not a form
                                         headers={"Content-Type": "text/plain"})
        with _LOOPBACK.open(request, timeout=5) as response:
            response.read()


# --- pytest fixtures ----------------------------------------------------------

@pytest.fixture(scope="session")
def s3_server():
    """One moto S3 server (no auth checks) for the whole test session."""
    with S3Server() as server:
        yield server


@pytest.fixture(scope="session")
def s3_auth_server():
    """One auth-enforcing moto server for the session (started on first use)."""
    with S3Server(enforce_auth=True) as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A fresh, empty bucket on the session's S3 server."""
    return s3_server.make_bucket()
