"""Periodic jobs: each at its own interval, each with its own error handling.

A `Schedule` is driven by one thread calling `run_due(now, lease_held)`:
every job whose time has come runs, unless it needs the lease and the
caller does not hold it. A job that fails is reported and tried again
after `retry_after` (or its interval, if shorter); the other jobs run as
if nothing happened. A job that returns True has more to do and runs again
on the next call. Time is whatever clock the caller passes (monotonic
seconds), so a test can drive a schedule without waiting.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Job:
    name: str
    interval: float
    run: Callable[[], object]
    needs_lease: bool = False
    first_delay: float = 0.0  # after the schedule starts; 0: at once
    next_at: float | None = field(default=None, repr=False)
    runs: int = 0
    failures: int = 0


class Schedule:
    def __init__(self, jobs: list[Job], on_error: Callable[[str, Exception], None],
                 retry_after: float) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique: {names}")
        self.jobs = {job.name: job for job in jobs}
        self.on_error = on_error
        self.retry_after = retry_after

    def start(self, now: float) -> None:
        for job in self.jobs.values():
            job.next_at = now + job.first_delay

    def run_soon(self, name: str) -> None:
        """Make the job due now: it runs on the next call (any thread may ask)."""
        self.jobs[name].next_at = float("-inf")

    def run_due(self, now: float, lease_held: bool) -> tuple[bool, bool]:
        """Run the jobs that are due. Returns (more, failed): a job has more
        to do at once; a job failed."""
        more = failed = False
        for job in self.jobs.values():
            if job.next_at is None:
                job.next_at = now + job.first_delay
            if now < job.next_at or (job.needs_lease and not lease_held):
                continue
            job.runs += 1
            try:
                again = job.run() is True
            except Exception as exc:
                job.failures += 1
                failed = True
                self.on_error(job.name, exc)
                job.next_at = now + min(job.interval, self.retry_after)
                continue
            more = more or again
            job.next_at = now if again else now + job.interval
        return more, failed

    def seconds_until_due(self, now: float, lease_held: bool) -> float:
        """Until the next job that may run is due (0 when one is)."""
        waits = [job.next_at - now for job in self.jobs.values()
                 if job.next_at is not None and (lease_held or not job.needs_lease)]
        return max(0.0, min(waits)) if waits else float("inf")
