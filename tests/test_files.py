"""files.file_lock: the lock that keeps two varec processes from writing the same thing at once."""

from __future__ import annotations

import shutil
import sys
import threading

import pytest

from varec_cli.errors import VarecError
from varec_cli.files import file_lock

only_where_open_files_can_be_deleted = pytest.mark.skipif(sys.platform == "win32", reason="Windows deletes no open file")


class Busy(Exception):
    pass


def _refuse() -> None:
    raise Busy


def _cannot(reason: str) -> VarecError:
    return VarecError(reason)


@only_where_open_files_can_be_deleted
def test_a_lock_whose_holder_deletes_it_on_the_way_out_is_still_one_lock(tmp_path):
    """A training run deletes its checkpoint folder, lock file and all, when it finishes. A run that
    was waiting on that lock must then hold the lock at that path, not a deleted file's: else a third
    run would take a new lock file there and the two would write the same folder."""
    folder = tmp_path / "run.checkpoints"
    lock = folder / ".lock"
    waiting, holding, done = threading.Event(), threading.Event(), threading.Event()

    def second_run() -> None:
        with file_lock(lock, cannot_lock=_cannot, on_busy=waiting.set):
            holding.set()
            done.wait(10)

    with file_lock(lock, cannot_lock=_cannot, on_busy=_refuse):
        waiter = threading.Thread(target=second_run)
        waiter.start()
        assert waiting.wait(10)
        shutil.rmtree(folder)  # the first run is done
    try:
        assert holding.wait(10)
        with pytest.raises(Busy):  # a third run is refused while the second holds it
            with file_lock(lock, cannot_lock=_cannot, on_busy=_refuse):
                pass
    finally:
        done.set()
        waiter.join(10)
    with file_lock(lock, cannot_lock=_cannot, on_busy=_refuse):  # and free once the second is done
        pass


def test_a_lock_file_that_cannot_be_made_is_the_callers_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(VarecError, match="Not a directory|File exists"):
        with file_lock(blocker / "x.lock", cannot_lock=_cannot):
            pass


@only_where_open_files_can_be_deleted
def test_a_lock_whose_folder_comes_and_goes_is_taken_not_failed(tmp_path):
    """A run deletes its checkpoint folder, lock and all, as it ends: another taking the lock meanwhile
    found the folder gone between making it and opening the lock file, and failed with `No such file`."""
    folder = tmp_path / "run.checkpoints"
    lock = folder / ".lock"
    stop = threading.Event()

    def finishing_runs() -> None:
        while not stop.is_set():
            with file_lock(lock, cannot_lock=_cannot, on_busy=None):
                (folder / "state.json").write_text("{}")
                shutil.rmtree(folder, ignore_errors=True)

    runner = threading.Thread(target=finishing_runs)
    runner.start()
    outcomes = {"ran": 0, "busy": 0}
    try:
        for _ in range(2000):
            try:
                with file_lock(lock, cannot_lock=_cannot, on_busy=_refuse):
                    outcomes["ran"] += 1
            except Busy:
                outcomes["busy"] += 1
    finally:
        stop.set()
        runner.join(10)
    assert outcomes["ran"] + outcomes["busy"] == 2000  # never a failure to make the lock file
