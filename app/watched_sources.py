"""Sources of sites elsewhere, opened for the command line (`--site`,
`--gitlab-db`) as the console opens them. No Qt: the CLI runs headless."""
from __future__ import annotations

from app import token_store


def open_watched(kind: str, url: str, through: int | None = None):
    """A source with `close()`: a secondary's API (Geo Console's or
    GitLab's; the token the console keeps for the URL, else
    $GEO_CONSOLE_GITLAB_TOKEN; `through`: another secondary, by id, through
    the site's proxy), or a GitLab tracking database (libpq's password:
    $PGPASSWORD or ~/.pgpass)."""
    if kind == "gitlab_db":
        from app.gitlab_db_source import GitLabDatabaseSource
        return GitLabDatabaseSource(url)
    from app.site_client import SiteClient
    from app.sources import RemoteSource
    client = SiteClient(url, token_store.load_token(url))
    if through is not None:
        client = client.through(through)
    try:
        return RemoteSource(client)  # one clear message now if it cannot be reached
    except BaseException:
        client.close()
        raise
