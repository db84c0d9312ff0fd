"""Prometheus exposition: the status gauges GitLab's MetricsUpdateService
sets (geo_<type>..., labelled with the site), next to the engine's own
counters and histograms, each site in a registry of its own."""
from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

# field (without the type prefix) -> help text; "X" is the type's plural title.
GAUGES = {
    "count": "Number of X on the primary",
    "checksum_total_count": "Number of X available to checksum on primary",
    "checksummed_count": "Number of X checksummed on the primary",
    "checksum_failed_count": "Number of X failed to checksum on primary",
    "synced_count": "Number of X in the registry",
    "failed_count": "Number of X failed on secondary",
    "registry_count": "Number of X synced to sync on secondary",
    "verification_total_count": "Number of X available to verify on secondary",
    "verified_count": "Number of X verified on the secondary",
    "verification_failed_count": "Number of X failed to verify on secondary",
    # Geo Console's own: object storage (file_store 2).
    "object_storage_count": "Number of X in object storage (primary: records; secondary: "
                            "registries)",
    "object_storage_synced_count": "Number of X in object storage synced on secondary",
}

# Site-wide gauges: status field -> (metric, help text).
SITE_GAUGES = {
    "event_log_gap_count": ("geo_event_log_gaps",
                            "Number of event log ids the secondary's cursor passed without "
                            "seeing them, still looked for"),
}

# Causes of a secondary's syncs waiting (status field `sync_holds`), as the
# `reason` label of geo_sync_paused.
SYNC_HOLD_CAUSES = ("primary_unreachable", "low_disk")


def metric_name(plural_name: str, field: str) -> str:
    """geo_ + field minus one trailing _count or _total (GitLab's rule)."""
    name = f"{plural_name}_{field}"
    for suffix in ("_count", "_total"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return f"geo_{name}"


class StatusGauges:
    """A collector reading the statuses a site knows at scrape time:
    `statuses()` returns [(site name, status dict), ...]. Like GitLab, both
    labels, `name` and `url`, carry the site name."""

    def __init__(self, replicators, statuses) -> None:
        self.replicators = replicators
        self.statuses = statuses

    def collect(self):
        statuses = self.statuses()
        for field, (name, help_text) in SITE_GAUGES.items():
            family = GaugeMetricFamily(name, help_text, labels=["name", "url"])
            for site, status in statuses:
                value = status.get(field)
                if isinstance(value, int) and not isinstance(value, bool):
                    family.add_metric([site, site], value)
            yield family
        paused = GaugeMetricFamily(
            "geo_sync_paused", "1 while the secondary starts no sync, by reason: the primary "
            "cannot be reached, or free disk space is below the reserve",
            labels=["name", "url", "reason"])
        for site, status in statuses:
            holds = status.get("sync_holds")
            if isinstance(holds, dict):
                for cause in SYNC_HOLD_CAUSES:
                    paused.add_metric([site, site, cause], 1 if cause in holds else 0)
        yield paused
        for replicator in self.replicators:
            for field, help_text in GAUGES.items():
                family = GaugeMetricFamily(
                    metric_name(replicator.plural_name, field),
                    help_text.replace("X", replicator.title_plural), labels=["name", "url"])
                for name, status in statuses:
                    value = status.get(f"{replicator.plural_name}_{field}")
                    if isinstance(value, int) and not isinstance(value, bool):
                        family.add_metric([name, name], value)
                yield family


def site_registry(replicators, statuses, base: CollectorRegistry | None = None):
    registry = base or CollectorRegistry()
    registry.register(StatusGauges(replicators, statuses))
    return registry
