"""Swapping a finished image into place."""

import threading

import pytest

from goship_ctl.image import atomic
from goship_ctl.image.errors import BuildError


def test_replace_dir_into_empty_place(tmp_path):
    new = tmp_path / "new"
    new.mkdir()
    (new / "f").write_text("new")
    atomic.replace_dir(new, tmp_path / "image")
    assert (tmp_path / "image" / "f").read_text() == "new" and not new.exists()


def test_replace_dir_exchanges_with_previous(tmp_path):
    image, new = tmp_path / "image", tmp_path / "new"
    image.mkdir()
    (image / "f").write_text("old")
    new.mkdir()
    (new / "f").write_text("new")
    atomic.replace_dir(new, image)
    assert (image / "f").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image"]


def test_work_dir_is_removed_on_failure_and_stale_ones_are_cleaned(tmp_path):
    output = tmp_path / "default"
    with pytest.raises(RuntimeError):
        with atomic.work_dir(output) as work:
            (work / "partial").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    stale = tmp_path / ".default.build-dead"
    stale.mkdir()
    atomic.remove_stale_work_dirs(output)
    assert not stale.exists()


def test_second_builder_waits_then_gives_up(tmp_path):
    output = tmp_path / "default"
    held, release = threading.Event(), threading.Event()

    def holder():
        with atomic.build_lock(output):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(5)
        with pytest.raises(BuildError, match="still holds its lock"):
            with atomic.build_lock(output, wait_seconds=0.6):
                pass
    finally:
        release.set()
        thread.join(5)
    with atomic.build_lock(output, wait_seconds=1):
        pass
