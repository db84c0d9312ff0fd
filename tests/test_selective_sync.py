"""Selective sync: exactly the in-scope records reach a secondary, and
records that leave the scope lose their registries and files."""
import pytest

from backend.framework.replicator import FileStore

from backend.replicables import replicator_for
from backend.framework.scope import ScopeError, SyncScope
from backend.primary.replicables_query import in_scope_ids, list_range
from tests.support.fixtures_e2e import all_synced_and_verified, registries
from tests.support.sites import object_store, secondary_config, start_engine, start_primary, wait_until

CoolWidgets = replicator_for("cool_widget")

# Namespace tree and shards of the fixture:
#   acme (1) ── platform ── api (default), workers (ssd)
#        └──── web ── site (default)
#   community ── plugins (ssd)
PROJECTS = {"api": ("acme/platform", "default"), "workers": ("acme/platform", "ssd"),
            "site": ("acme/web", "default"), "plugins": ("community", "ssd")}


@pytest.fixture
def world(primary_url, tmp_path, credentials, s3_server):
    """A primary with two widgets per project, one of them remote-stored in 'api'."""
    site = start_primary(primary_url, tmp_path / "primary", credentials,
                         object_store=object_store(s3_server))
    catalog = site.catalog()
    projects = {name: catalog.add_project(name, namespace, shard)
                for name, (namespace, shard) in PROJECTS.items()}
    widgets = {name: [catalog.add_bytes(f"{name}-{i}".encode(), "w", project_id=project_id)
                      for i in range(2)] for name, project_id in projects.items()}
    widgets["api-remote"] = [catalog.add_bytes(b"remote", "r", project_id=projects["api"],
                                               file_store=FileStore.REMOTE)]
    namespaces = {path: catalog.ensure_namespace_path(path)
                  for path in ("acme", "acme/platform", "acme/web", "community")}
    site.projects = projects
    yield site, widgets, namespaces
    site.stop()


CASES = [
    # (case id, scope factory, widget groups expected)
    ("full", lambda ns: SyncScope(), {"api", "workers", "site", "plugins"}),
    ("full with object storage", lambda ns: SyncScope(sync_object_storage=True),
     {"api", "workers", "site", "plugins", "api-remote"}),
    ("namespace and its descendants",
     lambda ns: SyncScope("namespaces", (ns["acme"],)), {"api", "workers", "site"}),
    ("leaf namespace", lambda ns: SyncScope("namespaces", (ns["acme/web"],)), {"site"}),
    ("two namespaces", lambda ns: SyncScope("namespaces", (ns["acme/web"], ns["community"])),
     {"site", "plugins"}),
    ("namespace with object storage",
     lambda ns: SyncScope("namespaces", (ns["acme/platform"],), sync_object_storage=True),
     {"api", "workers", "api-remote"}),
    ("one shard", lambda ns: SyncScope("shards", shards=("ssd",)), {"workers", "plugins"}),
    ("both shards", lambda ns: SyncScope("shards", shards=("ssd", "default")),
     {"api", "workers", "site", "plugins"}),
    ("unknown shard", lambda ns: SyncScope("shards", shards=("nvme",)), set()),
]


def expected_ids(widgets, groups):
    return sorted(i for group in groups for i in widgets[group])


@pytest.mark.parametrize("case,scope,groups", CASES, ids=[c[0] for c in CASES])
def test_scope_query(world, case, scope, groups):
    site, widgets, namespaces = world
    page = list_range(site.engine, CoolWidgets, scope(namespaces), after_id=0)
    assert [row["id"] for row in page["replicables"]] == expected_ids(widgets, groups)
    everything = [i for ids in widgets.values() for i in ids]
    assert in_scope_ids(site.engine, CoolWidgets, scope(namespaces), everything) == set(
        expected_ids(widgets, groups))


@pytest.mark.slow
@pytest.mark.parametrize("case,scope,groups", [CASES[2], CASES[6], CASES[5]],
                         ids=[CASES[2][0], CASES[6][0], CASES[5][0]])
def test_secondary_replicates_exactly_its_scope(world, tracking_url, tmp_path, credentials,
                                                case, scope, groups):
    site, widgets, namespaces = world
    chosen = scope(namespaces)
    config = secondary_config(site.url, tracking_url, tmp_path / "secondary", credentials,
                              selective_sync_type=chosen.selective_sync_type,
                              selective_sync_namespace_ids=chosen.namespace_ids,
                              selective_sync_shards=chosen.shards,
                              sync_object_storage=chosen.sync_object_storage)
    engine = start_engine(config)
    try:
        wanted = expected_ids(widgets, groups)
        wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, wanted), timeout=30,
                   message=f"{case}: in-scope widgets replicated")
        # A new widget outside the scope arrives by event and is ignored.
        outside = next(g for g in ("plugins", "site", "api") if g not in groups)
        inside = next(g for g in sorted(groups) if g in site.projects)
        extra = site.catalog().add_bytes(b"late", "late", project_id=site.projects[outside])
        inside = site.catalog().add_bytes(b"late-in", "late", project_id=site.projects[inside])
        wait_until(lambda: inside in registries(engine, CoolWidgets), timeout=15,
                   message="in-scope event handled")
        assert extra not in registries(engine, CoolWidgets)
    finally:
        engine.stop()


@pytest.mark.slow
def test_narrowing_the_scope_removes_registries_and_files(world, tracking_url, tmp_path,
                                                          credentials):
    site, widgets, namespaces = world
    storage = tmp_path / "secondary"
    everything = expected_ids(widgets, {"api", "workers", "site", "plugins"})
    engine = start_engine(secondary_config(site.url, tracking_url, storage, credentials))
    wait_until(lambda: all_synced_and_verified(engine, CoolWidgets, everything), timeout=30,
               message="full scope replicated")
    engine.stop()
    narrowed = start_engine(secondary_config(
        site.url, tracking_url, storage, credentials, selective_sync_type="shards",
        selective_sync_shards=("ssd",)))
    try:
        kept = expected_ids(widgets, {"workers", "plugins"})
        wait_until(lambda: sorted(registries(narrowed, CoolWidgets)) == kept, timeout=30,
                   message="out-of-scope registries removed")
        for model_id in set(everything) - set(kept):
            assert not narrowed.storage.path(CoolWidgets, model_id).exists()
        for model_id in kept:
            assert narrowed.storage.path(CoolWidgets, model_id).exists()
    finally:
        narrowed.stop()


def test_bad_scope_is_refused():
    with pytest.raises(ScopeError):
        SyncScope("organizations")
    with pytest.raises(ScopeError):
        SyncScope.from_params({"namespace_ids": "1,x"})
