"""States, backoff and failure texts: the rules of research/geo-framework.md §1-3."""
import datetime as dt
import random

import pytest

from backend.framework import transitions as tr
from backend.framework.backoff import (DEFAULT_CAP, MISSING_ON_PRIMARY_CAP, delay_seconds,
                                       next_retry_time)
from backend.framework.failures import sync_failure_text, truncate_failure
from backend.replicables import registered, replicator_for
from backend.framework.states import (SyncState, VerificationState, parse_sync_state,
                                      parse_verification_state)

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def test_state_values_are_gitlabs():
    assert [s.value for s in SyncState] == [0, 1, 2, 3]
    assert [s.name for s in SyncState] == ["PENDING", "STARTED", "SYNCED", "FAILED"]
    assert [(s.name, s.value) for s in VerificationState] == [
        ("PENDING", 0), ("STARTED", 1), ("SUCCEEDED", 2), ("FAILED", 3), ("DISABLED", 4)]


@pytest.mark.parametrize("text,expected", [("failed", SyncState.FAILED),
                                           ("SYNCED", SyncState.SYNCED), ("0", SyncState.PENDING)])
def test_parse_sync_state(text, expected):
    assert parse_sync_state(text) is expected


@pytest.mark.parametrize("text", ["", "done", "9", "succeeded"])
def test_parse_sync_state_refuses_unknown_names(text):
    with pytest.raises(ValueError, match="expected one of: pending, started, synced, failed"):
        parse_sync_state(text)


def test_parse_verification_state_knows_disabled():
    assert parse_verification_state("disabled") is VerificationState.DISABLED


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8])
def test_delay_is_n_to_the_fourth_plus_15_plus_random_multiple(n):
    rng = random.Random(n)
    values = {delay_seconds(n, rng) for _ in range(300)}
    base = n ** 4 + 15
    assert min(values) == base
    assert max(values) == base + 29 * (n + 1)
    assert all((value - base) % (n + 1) == 0 for value in values)


@pytest.mark.parametrize("n,low,high", [(1, 16, 74), (2, 31, 118), (4, 271, 416)])
def test_next_retry_time_uses_the_delay_below_the_cap(n, low, high):
    for seed in range(50):
        retry = next_retry_time(n, now=NOW, rng=random.Random(seed))
        assert dt.timedelta(seconds=low) <= retry - NOW <= dt.timedelta(seconds=high)


@pytest.mark.parametrize("cap", [DEFAULT_CAP, MISSING_ON_PRIMARY_CAP])
def test_next_retry_time_is_capped(cap):
    for n in (12, 20, 1000):  # 12**4 s is past both caps
        retry = next_retry_time(n, cap, now=NOW, rng=random.Random(n))
        assert cap + dt.timedelta(seconds=16) <= retry - NOW <= cap + dt.timedelta(seconds=74)


def test_missing_on_primary_cap_is_four_hours():
    assert MISSING_ON_PRIMARY_CAP == dt.timedelta(hours=4)
    assert DEFAULT_CAP == dt.timedelta(hours=1)


def test_failure_text_is_truncated_to_255_with_ellipsis():
    text = truncate_failure("x" * 400)
    assert len(text) == 255 and text.endswith("...")
    assert truncate_failure("short") == "short"
    assert truncate_failure(None) is None


def test_sync_failure_text_appends_the_error():
    assert sync_failure_text("Error downloading file", "reset") == "Error downloading file: reset"
    assert sync_failure_text("Plain") == "Plain"
    assert len(sync_failure_text("m", "e" * 500)) == 255


def test_sync_failed_counts_and_schedules():
    values = tr.sync_failed(2, "boom", now=NOW)
    assert values["state"] == SyncState.FAILED and values["retry_count"] == 3
    assert values["retry_at"] > NOW and values["last_sync_failure"] == "boom"


def test_pending_resets_retries_and_disables_verification():
    assert tr.sync_pending() == {"state": SyncState.PENDING, "retry_at": None, "retry_count": 0,
                                 "verification_state": VerificationState.DISABLED}


def test_verification_pending_from_failed_keeps_counters():
    kept = tr.verification_pending(from_failed=True, registry=True)
    assert "verification_retry_count" not in kept and kept["verification_failure"] is None
    cleared = tr.verification_pending(from_failed=False, registry=True)
    assert cleared["verification_retry_count"] == 0 and cleared["checksum_mismatch"] is False


def test_registry_verification_failure_fails_the_sync_with_equal_counters():
    values = tr.registry_verification_failed(2, "mismatch", checksum="ab", now=NOW)
    assert values["verification_state"] == VerificationState.FAILED
    assert values["verification_retry_count"] == 3
    assert values["state"] == SyncState.FAILED and values["retry_count"] == 3
    assert values["last_sync_failure"] == "Verification failed with: mismatch"
    assert values["verified_at"] == NOW


def test_mismatch_failure_names_both_checksums_and_registry():
    text = tr.mismatch_failure("aa", "bb", 7)
    assert text == ("Checksum does not match the primary checksum "
                    "{checksum: aa, primary_checksum: bb, registry_id: 7}")
    assert len(tr.mismatch_failure("a" * 200, "b" * 200, 1)) == 255


def test_cool_widgets_are_declared_with_gitlab_names():
    replicator = replicator_for("cool_widget")
    assert replicator in registered()
    assert replicator.plural_name == "cool_widgets"
    assert replicator.title_plural == "Cool Widgets"
    assert replicator.registry_fk == "cool_widget_id"
    assert replicator.feature_flag == "geo_cool_widget_replication"
    assert replicator.registry_table().name == "cool_widget_registry"
    assert replicator.verification.separate  # template option 2: cool_widget_states


def test_unknown_replicable_is_refused():
    with pytest.raises(KeyError, match="unknown replicable type 'nope'"):
        replicator_for("nope")
