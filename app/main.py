"""Starting the console: the embedded demo by default, a configured
secondary (--config, or the settings), or a remote secondary."""
from __future__ import annotations

import logging
import os
import pathlib
import sys

log = logging.getLogger(__name__)


def has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def open_source(workspace: pathlib.Path | None, config_path: str | None):
    """(data source, stop function): blocking; runs on a worker thread."""
    from app.settings import load_settings
    from app.sources import LocalSource, RemoteSource
    from backend.config import load_config, parse_config
    from backend.sites.secondary import SecondarySite
    if config_path:
        site = SecondarySite.from_config(load_config(config_path)).start()
        return LocalSource(site), site.stop
    settings = load_settings()
    if settings.get("mode") == "remote":
        from app.site_client import SiteClient
        remote = settings.get("remote", {})
        client = SiteClient(remote.get("url", ""), remote.get("api_token"))
        if remote.get("through"):  # another secondary, through this one's proxy
            client = client.through(int(remote["through"]))
        try:
            source = RemoteSource(client)  # fails now, with one clear message, if it must
            return source, source.close
        except BaseException:
            client.close()
            raise
    if settings.get("mode") == "gitlab_db":
        from app.gitlab_db_source import GitLabDatabaseSource
        from app.settings import gitlab_database_url
        source = GitLabDatabaseSource(gitlab_database_url(settings.get("gitlab_db", {})))
        return source, source.close
    if settings.get("mode") == "local":
        config = parse_config({"secondary": settings.get("secondary", {}),
                               "feature_flags": settings.get("feature_flags", {})},
                              "console settings")
        site = SecondarySite.from_config(config).start()
        return LocalSource(site), site.stop
    from backend.demo import Demo
    demo = Demo(demo_settings(settings, workspace)).start()
    return LocalSource(demo.site, demo.primary), demo.stop


def demo_settings(settings: dict, workspace: pathlib.Path | None):
    """The demo's DemoSettings from the console's settings: its workspace
    (the user data folder's by default) and its optional object storage."""
    from app.object_store_settings import demo_object_stores
    from backend.demo import DemoSettings
    from backend.workspace import demo_dir
    primary_store, secondary_store = demo_object_stores(settings, "console settings")
    return DemoSettings(pathlib.Path(workspace) if workspace else demo_dir(),
                        primary_object_store=primary_store,
                        secondary_object_store=secondary_store)


def ask_for_missing_token(ask=None) -> bool:
    """Before a remote site is opened: where no token is kept for it (no
    keyring on this machine, none in GEO_CONSOLE_GITLAB_TOKEN), ask for one,
    for this run. `ask(url) -> str | None` is the question (a password
    dialog by default). True if a token was given."""
    from app import token_store
    from app.settings import load_settings
    settings = load_settings()
    remote = settings.get("remote") or {}
    if settings.get("mode") != "remote" or not remote.get("url") or remote.get("api_token"):
        return False
    token = (ask or _ask_token)(remote["url"])
    if not token:
        return False
    token_store.store_token(remote["url"], token.strip())
    return True


def _ask_token(url: str) -> str | None:
    from PySide6.QtWidgets import QInputDialog, QLineEdit
    token, given = QInputDialog.getText(
        None, "Access token", f"The access token for {url} (a personal access token of a "
        "GitLab administrator: read_api to watch, api to act). It is kept until the "
        "console closes:", QLineEdit.Password)
    return token if given else None


def target_of(config_path: str | None) -> str:
    """What the console connects to, in words, for its banner."""
    if config_path:
        return f"the secondary of {config_path}"
    from app.settings import load_settings
    settings = load_settings()
    if settings.get("mode") == "remote":
        return f"the secondary at {settings.get('remote', {}).get('url', '')}"
    if settings.get("mode") == "local":
        return "the secondary this console runs"
    if settings.get("mode") == "gitlab_db":
        return f"the GitLab tracking database {settings.get('gitlab_db', {}).get('url', '')}"
    from app.object_store_settings import demo_store
    if demo_store(settings).get("primary_bucket"):
        return "the demo with object storage"
    return "the demo"


def run_console(workspace: pathlib.Path | None = None, config_path: str | None = None) -> int:
    if not has_display():
        print("geo-console: error: no display found; run `python main.py demo --headless` "
              "for the demo without a window", file=sys.stderr)
        return 1
    if config_path:
        from backend.config import ConfigError, load_config
        try:
            load_config(config_path).require_secondary()
        except ConfigError as exc:  # before any window: one line, as the CLI does
            print(f"geo-console: error: {exc}", file=sys.stderr)
            return 1
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    import resources
    from app.main_window import MainWindow

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Geo Console")
    app.setOrganizationName("geo-console")
    app.setStyle("Fusion")
    # The desktop entry (resources/geo-console.desktop) and its icon.
    app.setDesktopFileName("geo-console")
    app.setWindowIcon(QIcon(str(resources.icon(resources.APP_ICON))))
    # The window opens at once; the site is opened behind it, and a site
    # that cannot be reached is a banner with Retry and Settings, not an exit.
    if not config_path:
        ask_for_missing_token()
    window = MainWindow(opener=lambda: open_source(workspace, config_path),
                        target=target_of(config_path))
    window.show()
    window.start()
    code = app.exec()
    if window.closing is not None:  # the engine stopping; the window is gone already
        window.closing.join(timeout=120)
    return code
