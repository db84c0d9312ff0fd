"""Counting the blob downloads the primary served, from its access log."""
from __future__ import annotations

import collections
import logging
import time


class RetrieveLog(logging.Handler):
    """Successful `/retrieve/` answers by model id and by peer, and how many
    requests for the primary's checksums (`/states`) were answered.

    With `delay` set, the primary's request thread sleeps that long on each
    retrieve it logs: downloads then take long enough that several engines
    are all at work before the blobs run out."""

    def __init__(self):
        super().__init__()
        self.hits = collections.Counter()
        self.peers = collections.Counter()
        self.states_requests = 0  # answered requests for the primary's checksums
        self.delay = 0.0

    def emit(self, record):
        method, path, status, peer = record.getMessage().split(" ")
        if path.endswith("/states") and status == "200":
            self.states_requests += 1
        if "/retrieve/" in path and status == "200":
            self.hits[int(path.rsplit("/", 1)[1])] += 1
            self.peers[peer] += 1
            if self.delay:
                time.sleep(self.delay)
