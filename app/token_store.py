"""Where the console keeps a remote site's access token, and its other
secrets (a tracking database's password, an object store's secret access
key): never in its settings file.

In the operating system's keyring (the `keyring` library: Secret Service,
macOS Keychain, Windows Credential Locker) where this machine has one,
under the service name SERVICE and the site's URL. Where it has none, the
token lives only as long as the console runs: it is asked for at start, or
read from GEO_CONSOLE_GITLAB_TOKEN. A token is never logged, and a settings
file that still holds one from an older version has it moved out on load.
"""
from __future__ import annotations

import os

import keyring
from keyring.errors import KeyringError

SERVICE = "Geo Console"
ENVIRONMENT = "GEO_CONSOLE_GITLAB_TOKEN"
KEYRING, SESSION = "keyring", "session"

_session: dict[str, str] = {}  # url -> token, for this run only


def keyring_available() -> bool:
    """Whether a keyring backend that stores secrets is present."""
    try:
        return keyring.get_keyring().priority > 0
    except Exception:  # a backend that cannot even say what it is
        return False


def store_token(url: str, token: str) -> str:
    """Keep `token` for the site at `url`: KEYRING where there is one, else
    SESSION (until the console closes). An empty token forgets it."""
    url = _key(url)
    if not token:
        forget_token(url)
        return SESSION
    _session[url] = token
    if keyring_available():
        try:
            keyring.set_password(SERVICE, url, token)
            return KEYRING
        except KeyringError:
            pass  # a locked or refusing keyring: this run only
    return SESSION


def load_token(url: str, from_environment: bool = True) -> str | None:
    """The token for the site at `url`: this run's, the keyring's, else
    the environment's (unless `from_environment` is False: a secret that
    is not a site's token); None when there is none (ask for it)."""
    url = _key(url)
    if url in _session:
        return _session[url]
    if keyring_available():
        try:
            token = keyring.get_password(SERVICE, url)
        except KeyringError:
            token = None
        if token:
            _session[url] = token
            return token
    return (os.environ.get(ENVIRONMENT) or None) if from_environment else None


def forget_token(url: str) -> None:
    url = _key(url)
    _session.pop(url, None)
    if keyring_available():
        try:
            keyring.delete_password(SERVICE, url)
        except KeyringError:
            pass  # there was none


def move_out_of_settings(settings: dict) -> bool:
    """Take a token an older version wrote into the remote settings out of
    them, into the store; True if the settings changed (save them)."""
    remote = settings.get("remote") or {}
    token = remote.pop("api_token", None)
    if token is None:
        return False
    if remote.get("url"):
        store_token(remote["url"], token)
    return True


def _key(url: str) -> str:
    return url.strip().rstrip("/")
