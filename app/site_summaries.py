"""What the Sites view says about each site, from the statuses of the
primary's `GET /api/v4/geo_sites/status` (GitLab's field names): health,
last status check, event lag and, per data type, synchronization and
verification (the primary: its checksums), as plain texts for
`widgets.site_card`; nothing here asks anything of a site.

Percentages are rounded down, as GitLab's Sites page does: 100 % only when
every record is there. A secondary whose last status check is older than
OUTDATED_AFTER is shown unhealthy and out of date, whatever it last said;
when the list itself is not current (the primary did not answer), no site
is shown healthy: only what it was last known to be, and when.
"""
from __future__ import annotations

import datetime as dt

from backend.framework.status_fields import OUTDATED_AFTER
from backend.secondary.status import percentage
from widgets.site_card import SiteCardData

SECONDARY_COLUMNS = ("Data type", "Synced", "Verified", "Sync failed", "Verification failed")
PRIMARY_COLUMNS = ("Data type", "Records", "Checksummed", "Checksum failed")
NOT_REPORTED = "not reported"


def duration(seconds: float) -> str:
    """34 s, 5 min 4 s, 3 h 12 min, 2 days 4 h."""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    day_word = "day" if days == 1 else "days"
    return f"{days} {day_word} {hours} h" if hours else f"{days} {day_word}"


def local_time(at: dt.datetime) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def moment(timestamp: float | None, now: dt.datetime) -> str:
    """"2 min 5 s ago (2026-06-01 13:31:08)", for a Unix time."""
    if timestamp is None:
        return "never"
    at = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
    age = (now - at).total_seconds()
    relative = "just now" if age < 1 else f"{duration(age)} ago"
    return f"{relative} ({local_time(at)})"


def event_lag(status: dict) -> str:
    """Events between the primary's newest and the secondary's cursor, and
    seconds between their times; "unknown" where a time is null."""
    last, cursor = status.get("last_event_id"), status.get("cursor_last_event_id")
    if last is None:
        return "unknown (no event seen yet)"
    if cursor is None:
        return "unknown (no event processed yet)"
    behind = max(last - cursor, 0)
    events = "1 event" if behind == 1 else f"{behind:,} events"
    if behind == 0:
        return "0 events, 0 s (up to date)"
    last_at, cursor_at = status.get("last_event_timestamp"), \
        status.get("cursor_last_event_timestamp")
    if last_at is None or cursor_at is None:
        return f"{events} behind, time behind unknown"
    seconds = max(int(last_at - cursor_at), 0)
    return f"{events}, {seconds:,} s behind" + (f" ({duration(seconds)})" if seconds >= 60
                                                else "")


def fraction(part: int | None, whole: int | None) -> str:
    """"22 / 30 (73.33%)", rounded down; "0 / 0" when there is nothing."""
    if part is None or whole is None:
        return NOT_REPORTED
    if whole == 0:
        return "0 / 0"
    return f"{part:,} / {whole:,} ({percentage(part, whole)})"


def count(value: int | None) -> str:
    return NOT_REPORTED if value is None else f"{value:,}"


def type_rows(status: dict, types: list, primary: bool) -> list[tuple[str, ...]]:
    rows = []
    for kind in types:
        p = kind.plural_name
        if primary:
            if status.get(f"{p}_count") is None:
                rows.append((kind.title_plural, "replication off", "", ""))
                continue
            rows.append((kind.title_plural, count(status.get(f"{p}_count")),
                         fraction(status.get(f"{p}_checksummed_count"),
                                  status.get(f"{p}_checksum_total_count")),
                         count(status.get(f"{p}_checksum_failed_count"))))
            continue
        registries = status.get(f"{p}_registry_count")
        if registries is None:
            rows.append((kind.title_plural, "replication off", "", "", ""))
            continue
        rows.append((kind.title_plural,
                     fraction(status.get(f"{p}_synced_count"), registries),
                     # of every registry, as `_verified_in_percentage` and the
                     # Overview count: 100 % only when every record is verified
                     fraction(status.get(f"{p}_verified_count"), registries),
                     count(status.get(f"{p}_failed_count")),
                     count(status.get(f"{p}_verification_failed_count"))))
    return rows


def _problems(status: dict) -> list[str]:
    """The site's reported problems, without the primary's own "no status
    report" verdict (the console judges the age itself, against its clock)."""
    health = status.get("health") or ""
    if status.get("healthy") or health == "Healthy":
        return []
    return [part for part in health.split("; ")
            if part and not part.startswith("No status report for")]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def card(status: dict, types: list, now: dt.datetime, *, current: bool = True,
         this_site: str | None = None) -> SiteCardData:
    """A site's card. `current`: the list is the primary's latest answer
    (else it is shown as last known); `this_site`: the name of the
    secondary this console shows."""
    primary = bool(status.get("primary"))
    name = status.get("name") or "unnamed site"
    checked = status.get("last_successful_status_check_timestamp")
    age = None if checked is None else (now.timestamp() - checked)
    outdated = not primary and (age is None or age > OUTDATED_AFTER)
    problems = _problems(status)
    healthy = not outdated and not problems and status.get("healthy") is not False
    health, tone = ("Healthy", "good") if healthy else ("Unhealthy", "bad")
    note, note_tone = "", "warn"
    if outdated:
        note = (f"Out of date: no status report for {duration(age)}, since "
                f"{local_time(dt.datetime.fromtimestamp(checked, dt.timezone.utc))}. A status "
                f"older than {OUTDATED_AFTER // 60} min is out of date: this site may have "
                "stopped, or cannot reach the primary." if checked is not None else
                "Out of date: the primary has no status report from this site.")
        note_tone = "bad"
    if not current:
        health, tone = f"Last known: {health}", "unknown"
    facts = [("Last status check", moment(checked, now))]
    if primary:
        last_at = status.get("last_event_timestamp")
        last_id = status.get("last_event_id")
        facts.append(("Newest event", "none yet" if last_id is None else
                      f"{last_id:,}, {moment(last_at, now)}" if last_at else f"{last_id:,}"))
    else:
        facts.append(("Event lag", event_lag(status)))
        engine = status.get("engine_state") or status.get("engine")
        if engine:
            facts.append(("Engine", {"running": "Running", "paused": "Paused",
                                     "stopped": "Stopped"}.get(engine, engine)
                          + (" (as last reported)" if outdated else "")))
        if status.get("sync_settings"):
            facts.append(("Sync settings", status["sync_settings"]))
    marks = ["This console"] if not primary and this_site and name == this_site else []
    return SiteCardData(
        name=name, url=status.get("url") or "", badge="Primary" if primary else "Secondary",
        health=health, tone=tone, reason=_sentence("; ".join(problems)), marks=marks,
        facts=facts,
        note=note, note_tone=note_tone,
        columns=PRIMARY_COLUMNS if primary else SECONDARY_COLUMNS,
        rows=type_rows(status, types, primary))


def cards(statuses: list[dict], types: list, now: dt.datetime, *, current: bool = True,
          this_site: str | None = None) -> list[SiteCardData]:
    """The primary first, then the secondaries by name."""
    ordered = sorted(statuses, key=lambda s: (not s.get("primary"), s.get("name") or ""))
    return [card(status, types, now, current=current, this_site=this_site)
            for status in ordered if isinstance(status, dict)]
