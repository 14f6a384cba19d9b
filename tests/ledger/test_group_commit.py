"""Group commit: concurrent calls share a transaction, each gets its own answer only after it."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from connector.ledger.group_commit import GroupCommit, WriterLock


class Recorder:
    """A `write` that blocks its first transaction until released, recording every batch."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.committed: list[str] = []
        self.first_started = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def write(self, batch: Sequence[str]) -> list[str]:
        self.batches.append(list(batch))
        if len(self.batches) == 1:
            self.first_started.set()
            assert self.release.wait(10)
        if self.fail_on in batch:
            raise RuntimeError(f"cannot store {self.fail_on}")
        self.committed.extend(batch)
        return [f"stored {item}" for item in batch]


def run_concurrently(
    group: GroupCommit[str, str], recorder: Recorder, items: list[str]
) -> dict[str, object]:
    answers: dict[str, object] = {}

    def call(item: str) -> None:
        try:
            answers[item] = group.run(item)
        except Exception as exc:  # the caller's own error
            answers[item] = exc

    first = threading.Thread(target=call, args=(items[0],))
    first.start()
    assert recorder.first_started.wait(10)
    others = [threading.Thread(target=call, args=(item,)) for item in items[1:]]
    for thread in others:
        thread.start()
    while group.waiting < len(others):  # every other call is queued behind the first commit
        threading.Event().wait(0.005)
    recorder.release.set()
    for thread in [first, *others]:
        thread.join(10)
    return answers


def test_callers_waiting_for_a_commit_share_the_next_transaction() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.write)
    items = [f"call-{i}" for i in range(6)]
    answers = run_concurrently(group, recorder, items)
    assert recorder.batches == [["call-0"], items[1:]]
    assert answers == {item: f"stored {item}" for item in items}


def test_a_failing_item_fails_only_its_own_caller() -> None:
    recorder = Recorder(fail_on="call-3")
    group = GroupCommit(recorder.write)
    items = [f"call-{i}" for i in range(5)]
    answers = run_concurrently(group, recorder, items)
    # The shared transaction failed, so each of its items was tried alone.
    assert recorder.batches[1] == items[1:]
    assert recorder.batches[2:] == [[item] for item in items[1:]]
    failure = answers.pop("call-3")
    assert isinstance(failure, RuntimeError) and "call-3" in str(failure)
    assert answers == {item: f"stored {item}" for item in items if item != "call-3"}
    assert sorted(recorder.committed) == sorted(answers)


def test_max_batch_bounds_one_transaction() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.write, max_batch=2)
    items = [f"call-{i}" for i in range(6)]
    answers = run_concurrently(group, recorder, items)
    assert all(len(batch) <= 2 for batch in recorder.batches)
    assert sorted(recorder.committed) == sorted(items)
    assert set(answers) == set(items)


def test_an_interrupted_commit_releases_every_waiting_caller() -> None:
    def write(batch: Sequence[str]) -> list[str]:
        raise KeyboardInterrupt

    group: GroupCommit[str, str] = GroupCommit(write)
    with pytest.raises(KeyboardInterrupt):
        group.run("call-1")
    assert group.waiting == 0


def test_the_lock_is_held_around_every_transaction(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "ledger.db.writer")
    held: list[bool] = []

    def write(batch: Sequence[str]) -> list[str]:
        with (tmp_path / "ledger.db.writer").open("ab") as probe:
            try:
                fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held.append(True)
            else:
                held.append(False)
        return list(batch)

    group = GroupCommit(write, lock=lock.held)
    assert group.run("call-1") == "call-1"
    assert held == [True]


def test_the_writer_lock_excludes_other_processes(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "ledger.db.writer")
    with lock.held():  # opened in this process before the fork, as gunicorn's master would
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # the child's own attempt must not get the lock the parent holds
            os.close(read)
            with (tmp_path / "ledger.db.writer").open("ab") as probe:
                try:
                    fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    os.write(write, b"got")
                except BlockingIOError:
                    os.write(write, b"blocked")
            os._exit(0)
        os.close(write)
        answer = os.read(read, 16)
        os.waitpid(child, 0)
    assert answer == b"blocked"


def test_an_unwritable_lock_folder_leaves_locking_to_the_database(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "missing" / "ledger.db.writer")
    group = GroupCommit(lambda batch: list(batch), lock=lock.held)
    assert group.run("call-1") == "call-1"
