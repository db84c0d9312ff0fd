"""Is a secondary healthy, and has it registered every record the primary
has for it? What `status` and `check` ask from outside the engine, as
GitLab's geo:status and geo:check do: an engine is alive on the tracking
database (its heartbeat), and the primary answers with our credentials and
says how many records of each type are in our scope."""
from __future__ import annotations

from dataclasses import dataclass, field

import urllib3

from backend.secondary.errors import describe
from backend.secondary.geo_client import GeoApiError, GeoClient, PrimaryUnreachable
from backend.secondary.heartbeat import oldest_live_start

PRIMARY_TIMEOUT = 10.0  # seconds: an answer slower than that counts as none
NO_ENGINE = "no sync engine is running on this tracking database"


@dataclass
class Health:
    problems: list[str] = field(default_factory=list)
    primary_counts: dict[str, int] = field(default_factory=dict)  # type name -> records

    @property
    def healthy(self) -> bool:
        return not self.problems


def secondary_health(engine, config, types) -> Health:
    """`types`: the enabled types whose records the primary is asked to count."""
    health = Health()
    if oldest_live_start(engine) is None:
        health.problems.append(NO_ENGINE)
    client = GeoClient(config.primary_url, config.access_key, config.secret,
                       max_connections=1,
                       timeout=urllib3.Timeout(connect=PRIMARY_TIMEOUT, read=PRIMARY_TIMEOUT))
    try:
        for replicator in types:
            health.primary_counts[replicator.replicable_name] = client.count(
                replicator.replicable_name, config.scope.to_params())
    except (PrimaryUnreachable, GeoApiError) as exc:
        health.problems.append(describe(exc))
    finally:
        client.close()
    return health
