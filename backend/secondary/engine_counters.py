"""What the engine did: running totals for the console, per-interval work
for the status history, and Prometheus counters and histograms."""
from __future__ import annotations

import threading
from collections import defaultdict

from prometheus_client import CollectorRegistry, Counter, Histogram

WORK = ("syncs_attempted", "syncs_succeeded", "syncs_failed", "bytes_downloaded",
        "verifications_attempted", "verifications_succeeded", "verifications_failed")
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
                    1800, 7200)


class EngineCounters:
    def __init__(self, site_name: str, registry: CollectorRegistry | None = None) -> None:
        self.site_name = site_name
        self.registry = registry or CollectorRegistry()
        self._lock = threading.Lock()
        self._totals = dict.fromkeys(WORK, 0)
        self._interval: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(WORK, 0))
        labels = ["name", "replicable"]
        self._counters = {
            "syncs_attempted": Counter("geo_engine_sync_attempts",
                                       "Syncs started by this engine", labels,
                                       registry=self.registry),
            "syncs_succeeded": Counter("geo_engine_syncs_succeeded",
                                       "Syncs that ended synced", labels,
                                       registry=self.registry),
            "syncs_failed": Counter("geo_engine_syncs_failed", "Syncs that failed", labels,
                                    registry=self.registry),
            "bytes_downloaded": Counter("geo_engine_downloaded_bytes",
                                        "Bytes of blobs downloaded", labels,
                                        registry=self.registry),
            "verifications_attempted": Counter("geo_engine_verification_attempts",
                                               "Verifications started", labels,
                                               registry=self.registry),
            "verifications_succeeded": Counter("geo_engine_verifications_succeeded",
                                               "Verifications that matched the primary",
                                               labels, registry=self.registry),
            "verifications_failed": Counter("geo_engine_verifications_failed",
                                            "Verifications that failed", labels,
                                            registry=self.registry),
        }
        self._sync_seconds = Histogram("geo_engine_sync_duration_seconds",
                                       "Time to sync one blob", labels,
                                       buckets=DURATION_BUCKETS, registry=self.registry)
        self._verify_seconds = Histogram("geo_engine_verification_duration_seconds",
                                         "Time to verify one batch of blobs", labels,
                                         buckets=DURATION_BUCKETS, registry=self.registry)
        self._labelled: dict[str, dict] = {}  # replicable -> its labelled metrics

    def _metrics(self, replicable: str) -> dict:
        """The labelled children, looked up once per type: `labels()` takes
        a lock and builds a key, and this runs for every blob."""
        metrics = self._labelled.get(replicable)
        if metrics is None:
            metrics = {name: counter.labels(self.site_name, replicable)
                       for name, counter in self._counters.items()}
            metrics["sync_seconds"] = self._sync_seconds.labels(self.site_name, replicable)
            metrics["verify_seconds"] = self._verify_seconds.labels(self.site_name, replicable)
            self._labelled[replicable] = metrics
        return metrics

    def _add(self, replicable: str, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                self._totals[name] += amount
                self._interval[replicable][name] += amount
        metrics = self._metrics(replicable)
        for name, amount in amounts.items():
            if amount:
                metrics[name].inc(amount)

    def sync_finished(self, replicable: str, success: bool, seconds: float,
                      size: int = 0) -> None:
        """Runs on the sync loop for every blob, so written out rather than
        through `_add` (its keyword dict and loops were 1% of the engine's
        GIL time on small blobs)."""
        outcome = "syncs_succeeded" if success else "syncs_failed"
        size = size if success else 0
        with self._lock:
            interval = self._interval[replicable]
            for counts in (self._totals, interval):
                counts["syncs_attempted"] += 1
                counts[outcome] += 1
                counts["bytes_downloaded"] += size
        metrics = self._metrics(replicable)
        metrics["syncs_attempted"].inc()
        metrics[outcome].inc()
        if size:
            metrics["bytes_downloaded"].inc(size)
        metrics["sync_seconds"].observe(seconds)

    def verified_on_write(self, replicable: str) -> None:
        """One blob verified by the hash that checked its download (no batch
        of its own, so no duration); written out like sync_finished, as it
        runs for nearly every blob."""
        with self._lock:
            interval = self._interval[replicable]
            for counts in (self._totals, interval):
                counts["verifications_attempted"] += 1
                counts["verifications_succeeded"] += 1
        metrics = self._metrics(replicable)
        metrics["verifications_attempted"].inc()
        metrics["verifications_succeeded"].inc()

    def verification_finished(self, replicable: str, attempted: int, succeeded: int,
                              failed: int, seconds: float) -> None:
        self._add(replicable, verifications_attempted=attempted,
                  verifications_succeeded=succeeded, verifications_failed=failed)
        self._metrics(replicable)["verify_seconds"].observe(seconds)

    def snapshot(self) -> dict[str, int]:
        """Totals since the engine started."""
        with self._lock:
            return dict(self._totals)

    def take_interval(self) -> dict[str, dict[str, int]]:
        """Work per type since the previous call."""
        with self._lock:
            interval, self._interval = self._interval, defaultdict(
                lambda: dict.fromkeys(WORK, 0))
        return {name: dict(values) for name, values in interval.items()}
