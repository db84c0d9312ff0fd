"""Counting the blob downloads the primary served, from its access log."""
from __future__ import annotations

import collections
import logging


class RetrieveLog(logging.Handler):
    """Successful `/retrieve/` answers by model id and by peer."""

    def __init__(self):
        super().__init__()
        self.hits = collections.Counter()
        self.peers = collections.Counter()

    def emit(self, record):
        method, path, status, peer = record.getMessage().split(" ")
        if "/retrieve/" in path and status == "200":
            self.hits[int(path.rsplit("/", 1)[1])] += 1
            self.peers[peer] += 1
