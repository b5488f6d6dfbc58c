"""The incremental-sync store: what it skips, what it forgets, and how it survives bad files and races."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_provider_crm.bulk import sync_file
from airflow_provider_crm.bulk.ledger import CREATED, NOT_ATTEMPTED, OK, REJECTED, RETRY, SKIPPED, UPDATED, Outcome
from airflow_provider_crm.bulk.sync_file import ConcurrentSyncError, SyncStoreError
from airflow_provider_crm.bulk.sync_settings import parse_every
from airflow_provider_crm.bulk.sync_state import SyncState, fingerprint
from tests.airflow_versions import AIRFLOW_VERSION

SCOPE = "KustomerBulkUpsertKObjectsOperator:order"
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def body(key: str, total: int) -> dict[str, object]:
    return {"externalId": key, "custom": {"totalNum": total}}


def run(
    path: Path,
    records: dict[str, int],
    *,
    refused: frozenset[str] = frozenset(),
    now: datetime = T0,
    **options: object,
) -> tuple[SyncState, list[str]]:
    """One run over ``records`` (key → total): returns the state and the keys it sent, confirming the others."""
    state = SyncState(str(path), SCOPE, now=lambda: now, **options)  # type: ignore[arg-type]
    sent = []
    for index, (key, total) in enumerate(records.items()):
        skip, _ = state.unchanged(index, key, body(key, total))
        if skip:
            continue
        sent.append(key)
        action, status = (REJECTED, RETRY) if key in refused else (CREATED, OK)
        state.settled(Outcome(index, key, action, remote_id=f"id-{key}" if status == OK else None, status=status))
    state.save(completed=True)
    return state, sent


def test_second_run_sends_nothing_and_a_change_sends_only_that_record(tmp_path: Path) -> None:
    store = tmp_path / "orders.sync"
    records = {f"ext-{n}": n for n in range(50)}
    assert run(store, records)[1] == list(records)
    state, sent = run(store, records)
    assert sent == [] and not state.pending, "all 50 skipped, none noted as sent"
    assert run(store, {**records, "ext-7": 700, "ext-new": 1})[1] == ["ext-7", "ext-new"]
    assert run(store, {**records, "ext-7": 700, "ext-new": 1})[1] == []
    before = len(store.read_bytes())
    assert run(store, {**records, "ext-7": 7000, "ext-new": 1})[1] == ["ext-7"]  # updated in place
    assert run(store, {**records, "ext-7": 7000, "ext-new": 1})[1] == []
    assert len(store.read_bytes()) == before
    assert SyncState(str(store), SCOPE).remote_id("ext-7") == "id-ext-7"


def test_a_refused_record_is_sent_again_next_run_even_when_it_reverts(tmp_path: Path) -> None:
    store = tmp_path / "s"
    run(store, {"a": 1, "b": 1})
    assert run(store, {"a": 2, "b": 1}, refused=frozenset({"a"}))[1] == ["a"]
    assert run(store, {"a": 2, "b": 1})[1] == ["a"]  # changed, and its last send was not confirmed
    run(store, {"a": 3, "b": 1}, refused=frozenset({"a"}))
    assert run(store, {"a": 2, "b": 1})[1] == ["a"]  # back to the confirmed body, still sent: the store forgot it


def test_an_unsettled_record_is_forgotten(tmp_path: Path) -> None:
    store = tmp_path / "s"
    run(store, {"a": 1})
    state = SyncState(str(store), SCOPE)
    assert state.unchanged(0, "a", body("a", 2)) == (False, "id-a")
    state.settled(Outcome(0, "a", NOT_ATTEMPTED, status=SKIPPED))
    state.save(completed=False)
    assert run(store, {"a": 1})[1] == ["a"]


def test_a_key_sent_in_this_run_is_never_skipped_later_in_it(tmp_path: Path) -> None:
    store = tmp_path / "s"
    run(store, {"a": 1})
    state = SyncState(str(store), SCOPE)
    assert state.unchanged(0, "a", body("a", 2))[0] is False  # changed: sent
    state.settled(Outcome(0, "a", UPDATED, remote_id="id-a"))
    # The same key again with the old body: the vendor now holds 2, so 1 must be sent.
    assert state.unchanged(1, "a", body("a", 1))[0] is False
    assert state.matches(2, "a", body("a", 1)) is False


def test_positional_keys_are_always_sent(tmp_path: Path) -> None:
    store = tmp_path / "s"
    state = SyncState(str(store), SCOPE)
    assert state.unchanged(3, "#3", {"title": "x"}) == (False, None)
    state.settled(Outcome(3, "#3", CREATED, remote_id="r"))
    state.save(completed=True)
    assert SyncState(str(store), SCOPE).unchanged(3, "#3", {"title": "x"}) == (False, None)


def test_fingerprint_covers_key_and_every_field() -> None:
    assert fingerprint("a", body("a", 1)) == fingerprint("a", {"custom": {"totalNum": 1}, "externalId": "a"})
    assert fingerprint("a", body("a", 1)) != fingerprint("b", body("a", 1))
    assert fingerprint("a", body("a", 1)) != fingerprint("a", body("a", 1.5))
    assert fingerprint("a", {"tags": ["x", "y"]}) != fingerprint("a", {"tags": ["y", "x"]})


def test_full_sync_every_and_skip_off_send_everything(tmp_path: Path) -> None:
    store = tmp_path / "s"
    records = {"a": 1, "b": 2}
    run(store, records, now=T0)
    assert run(store, records, now=T0 + timedelta(days=6), full_sync_every=timedelta(days=7))[1] == []
    state, sent = run(store, records, now=T0 + timedelta(days=7), full_sync_every=timedelta(days=7))
    assert sent == ["a", "b"] and "last full sync" in str(state.reason)
    # That run dated the store: a week from it, not from the first.
    assert run(store, records, now=T0 + timedelta(days=8), full_sync_every=timedelta(days=7))[1] == []
    assert run(store, records, now=T0 + timedelta(days=8), skip=False)[1] == ["a", "b"]


def test_parse_every() -> None:
    assert parse_every("7d") == timedelta(days=7)
    assert parse_every("12h") == timedelta(hours=12)
    assert parse_every(" 30m ") == timedelta(minutes=30)
    assert parse_every("0s") == timedelta(0)
    assert parse_every(90) == timedelta(seconds=90)
    assert parse_every(None) is None
    with pytest.raises(ValueError, match="full_sync_every"):
        parse_every("weekly")


def test_a_damaged_store_fails_unless_full_sync_is_asked_for(tmp_path: Path) -> None:
    store = tmp_path / "s"
    run(store, {f"k{n}": n for n in range(100)})
    data = store.read_bytes()
    store.write_bytes(data[:-40])
    with pytest.raises(SyncStoreError, match=r"cut short|digest"):
        SyncState(str(store), SCOPE)
    store.write_bytes(data[:-100] + bytes([data[-100] ^ 1]) + data[-99:])
    with pytest.raises(SyncStoreError, match=r"digest.*on_state_error='full_sync'"):
        SyncState(str(store), SCOPE)
    state, sent = run(store, {"k1": 1, "k2": 2}, on_state_error="full_sync")
    assert sent == ["k1", "k2"] and state.full
    assert run(store, {"k1": 1, "k2": 2})[1] == []  # a new, readable store replaced the damaged one


def test_another_tasks_store_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "s"
    run(store, {"a": 1})
    with pytest.raises(SyncStoreError, match="belongs to"):
        SyncState(str(store), "HubSpotBulkUpdateOrdersOperator:")
    with pytest.raises(SyncStoreError, match="give each task its own state_path"):
        SyncState(str(store), "HubSpotBulkUpdateOrdersOperator:", on_state_error="full_sync")


def test_a_concurrent_writer_is_detected_and_its_store_kept(tmp_path: Path) -> None:
    store = tmp_path / "s"
    run(store, {"a": 1})
    slow = SyncState(str(store), SCOPE)
    slow.unchanged(0, "b", body("b", 1))
    slow.settled(Outcome(0, "b", CREATED, remote_id="id-b"))
    run(store, {"a": 1, "c": 1})  # another run saves first
    with pytest.raises(ConcurrentSyncError, match="max_active_runs=1"):
        slow.save(completed=True)
    assert run(store, {"a": 1, "c": 1, "b": 1})[1] == ["b"]  # the other run's confirmations are intact


def test_a_killed_save_leaves_the_previous_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "s"
    run(store, {"a": 1, "b": 1})
    before = store.read_bytes()

    def die(*_: object) -> None:
        raise KeyboardInterrupt  # stands for the process dying mid-write

    monkeypatch.setattr(sync_file, "_write", die)
    with pytest.raises(KeyboardInterrupt):
        run(store, {"a": 2, "b": 2})
    monkeypatch.undo()
    assert store.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temporary file left behind
    assert run(store, {"a": 2, "b": 1})[1] == ["a"]


@pytest.mark.skipif(
    AIRFLOW_VERSION.release[:2] < (3, 1),
    reason=f"Airflow 3.0's ObjectStoragePath refuses fsspec's memory protocol, which stands in for object "
    f"storage here (running {AIRFLOW_VERSION})",
)
def test_object_storage_store(tmp_path: Path) -> None:
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    from airflow_provider_crm._compat import ObjectStoragePath

    attach("memory", fs=MemoryFileSystem())
    url = "memory://bucket/sync/orders.sync"
    records = {f"o{n}": n for n in range(20)}
    assert len(run(url, records)[1]) == 20  # type: ignore[arg-type]
    assert run(url, {**records, "o3": 33})[1] == ["o3"]  # type: ignore[arg-type]
    leftovers = [p.name for p in ObjectStoragePath("memory://bucket/sync/").iterdir()]
    assert leftovers == ["orders.sync"]


def test_merge_keeps_every_key_and_the_latest_word(tmp_path: Path) -> None:
    store = tmp_path / "s"
    first = {f"k{n}": n for n in range(0, 1000, 2)}
    run(store, first)
    second = {f"k{n}": (n + 1 if n % 10 == 0 else n) for n in range(1000)}
    _, sent = run(store, second)
    assert sorted(sent) == sorted(k for k in second if k not in first or first[k] != second[k])
    header, arrays = sync_file.load(str(store))  # type: ignore[misc]
    assert header.count == 1000 and list(arrays.keys) == sorted(arrays.keys)
    state = SyncState(str(store), SCOPE)
    assert all(state.remote_id(key) == f"id-{key}" for key in second)
    assert run(store, second)[1] == []


def test_spellings_the_vendor_takes_for_one_record_share_an_entry(tmp_path: Path) -> None:
    """HubSpot takes "ABC" and "abc" for one order: one entry holds the last write, so an input with both
    spellings sends both every night, in order, and HubSpot always ends with the input's last word."""
    store = tmp_path / "s"

    def night(values: dict[str, int]) -> list[str]:
        state = SyncState(str(store), SCOPE)
        sent = []
        for index, (key, value) in enumerate(values.items()):
            if not state.unchanged(index, key, body(key, value), same_as=key.lower())[0]:
                sent.append(key)
                state.settled(Outcome(index, key, UPDATED, remote_id="order-1"))
        state.save(completed=True)
        return sent

    assert night({"ABC": 1, "abc": 2}) == ["ABC", "abc"]
    assert night({"ABC": 1, "abc": 2}) == ["ABC", "abc"]  # "ABC" differs from the entry ("abc"'s write)
    assert night({"abc": 2}) == []
    assert night({"ABC": 3}) == ["ABC"]
    assert night({"abc": 2}) == ["abc"]  # with keys compared exactly, "abc" would be skipped: HubSpot holds 3


def test_merge_agrees_with_a_model_over_many_buckets_repeats_and_refusals(tmp_path: Path) -> None:
    """A run over 6,000 records (about 24 sort buckets) that repeats keys, refuses some and adds new ones:
    the next run skips exactly the keys whose last record in that run was confirmed, with its id."""
    import random

    store = tmp_path / "s"
    rng = random.Random(7)
    first = {f"k{n}": n for n in range(0, 8000, 2)}
    run(store, first)
    model: dict[str, tuple[int, str] | None] = {key: (total, f"id-{key}") for key, total in first.items()}
    state = SyncState(str(store), SCOPE)
    for index in range(6000):
        key = f"k{rng.randrange(8000)}"
        total = rng.randrange(3)
        if state.unchanged(index, key, body(key, total))[0]:
            continue
        confirmed = rng.random() < 0.8
        remote_id = f"id-{key}-{index}" if confirmed else None
        state.settled(Outcome(index, key, UPDATED, remote_id=remote_id, status=OK if confirmed else RETRY))
        model[key] = (total, remote_id) if confirmed and remote_id else None
    state.save(completed=True)

    header, arrays = sync_file.load(str(store))  # type: ignore[misc]
    held = {key: value for key, value in model.items() if value is not None}
    assert header.count == len(held) and list(arrays.keys) == sorted(set(arrays.keys))
    after = SyncState(str(store), SCOPE)
    for index, key in enumerate(f"k{n}" for n in range(8000)):
        expected = held.get(key)
        assert after.remote_id(key) == (expected[1] if expected else None), key
        for total in range(3):
            skip = expected is not None and expected[0] == total
            assert after.matches(index, key, body(key, total)) == skip, (key, total)
