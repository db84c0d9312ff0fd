"""A site's bulk actions in the background, as GitLab's bulk mutation
schedules a worker: the GraphQL API starts one and answers at once; each
runs on a thread of its own, in batches (`bulk_actions.py`), its progress
listed in the site's status; the site's stop ends them after their batch.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field

from backend.secondary.bulk_actions import BulkAction
from backend.secondary.errors import describe
from backend.secondary.registry_selection import RegistrySelection

log = logging.getLogger(__name__)
KEEP_FINISHED = 20  # finished jobs still listed, the newest


@dataclass
class BulkJob:
    id: int
    replicable_name: str
    action: str
    started_at: float = field(default_factory=time.time)
    done: int = 0
    total: int | None = None
    changed: int = 0
    state: str = "running"  # running, finished, cancelled, failed
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    counted: threading.Event = field(default_factory=threading.Event, repr=False)
    ended: threading.Event = field(default_factory=threading.Event, repr=False)

    def summary(self) -> dict:
        return {"id": self.id, "type": self.replicable_name, "action": self.action,
                "state": self.state, "done": self.done, "total": self.total,
                "changed": self.changed, "started_at": self.started_at, "error": self.error}


class BulkJobs:
    def __init__(self, engine, on_progress=lambda: None) -> None:
        self.engine = engine
        self.on_progress = on_progress  # after each batch: the registries changed
        self._jobs: list[BulkJob] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def start(self, replicator, action: str, selection: RegistrySelection) -> BulkJob:
        """Start a job and return once it has counted what it will change.
        What stops it before that is raised here: BulkActionRefused while
        another job holds the table, or the database's error."""
        job = BulkJob(next(self._ids), replicator.replicable_name, action)
        refused: list[BaseException] = []  # before it counted: raised to the caller

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total
            job.counted.set()
            if done:
                self.on_progress()

        def run() -> None:
            try:
                result = BulkAction(self.engine, replicator).run(
                    action, selection, progress=progress, cancelled=job.cancel.is_set)
                job.changed = result.changed
                job.state = "cancelled" if result.cancelled else "finished"
            except Exception as exc:
                if not job.counted.is_set():  # refused, or the database failed at once
                    refused.append(exc)
                    return
                # The database went away meanwhile: said in the job's summary.
                job.state, job.error = "failed", describe(exc)
                log.warning("bulk %s of %s failed: %s", action, replicator.title_plural,
                            job.error)
            finally:
                job.counted.set()
                job.ended.set()

        thread = threading.Thread(target=run, name=f"geo-bulk-{job.id}", daemon=True)
        thread.start()
        job.counted.wait()
        if refused:
            raise refused[0]
        with self._lock:
            self._jobs.append(job)
            finished = [j for j in self._jobs if j.state != "running"]
            for old in finished[:-KEEP_FINISHED]:
                self._jobs.remove(old)
        return job

    def stop(self) -> None:
        """The site stops: running jobs end after their batch."""
        with self._lock:
            for job in self._jobs:
                job.cancel.set()

    def summaries(self) -> list[dict]:
        with self._lock:
            return [job.summary() for job in self._jobs]
