"""Atomic writes (disco_ray.io.atomic): a result gets the permissions of a plain write, a
directory of the user's files is never replaced, an interrupted replacement loses neither
result, and an unwritable target is named in the error, not its temporary file."""

import os
import stat
from pathlib import Path

import pytest

from disco_ray.io.atomic import atomic_directory, atomic_path


def test_atomic_writes_get_the_permissions_of_a_plain_write(tmp_path):
    """tempfile makes 0600 files and 0700 directories; what replaces the target must not keep
    them (a result on a shared disk would be unreadable to the rest of the team)."""
    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "table.csv") as tmp:
            tmp.write_text("a,b\n")
        with atomic_directory(tmp_path / "bench", "manifest.json") as tmp:
            (tmp / "manifest.json").write_text("{}")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "table.csv").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "bench").stat().st_mode) == 0o755
    assert (tmp_path / "bench" / "manifest.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench", "table.csv"]


def test_a_directory_of_the_users_files_is_never_replaced(tmp_path):
    """Only an empty directory or an earlier result (holding the marker) may be replaced."""
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="results: the directory is not empty and holds no "
                                              "manifest.json.*Fix: choose a new or empty"):
        with atomic_directory(folder, "manifest.json") as tmp:
            (tmp / "manifest.json").write_text("{}")
    assert (folder / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]   # no temporary left
    (folder / "notes.txt").unlink()
    for content in ("{}", '{"again": 1}'):   # empty, then an earlier result: replaced
        with atomic_directory(folder, "manifest.json") as tmp:
            (tmp / "manifest.json").write_text(content)
        assert (folder / "manifest.json").read_text() == content


def test_an_earlier_result_holding_the_users_files_is_not_replaced(tmp_path):
    """A benchmark directory the user also put notes in keeps them: replacing is refused."""
    folder = tmp_path / "bench"
    with atomic_directory(folder, "manifest.json", ["data.npz"]) as tmp:
        (tmp / "manifest.json").write_text("{}")
        (tmp / "data.npz").write_text("old")
    (folder / "anchors.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"bench: holds anchors.txt besides an earlier "
                                              r"result.*Fix: move them out"):
        with atomic_directory(folder, "manifest.json", ["data.npz"]) as tmp:
            (tmp / "manifest.json").write_text('{"new": 1}')
    assert sorted(p.name for p in folder.iterdir()) == ["anchors.txt", "data.npz",
                                                        "manifest.json"]
    assert (folder / "manifest.json").read_text() == "{}"


def test_a_replacement_interrupted_between_its_renames_loses_neither_result(
        tmp_path, monkeypatch):
    """The old result is renamed aside whole, never deleted file by file before the new one is
    in place: if renaming the new one in fails, the old one is put back."""
    folder = tmp_path / "bench"
    with atomic_directory(folder, "manifest.json", ["data.npz"]) as tmp:
        (tmp / "manifest.json").write_text("old")
        (tmp / "data.npz").write_text("old")
    rename = Path.rename

    def interrupted(self, target):
        if Path(target) == folder and self.name.startswith(".bench.") and ".old." not in self.name:
            raise KeyboardInterrupt
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(folder, "manifest.json", ["data.npz"]) as tmp:
            (tmp / "manifest.json").write_text("new")
    monkeypatch.undo()
    assert {p.name: p.read_text() for p in folder.iterdir()} == {"manifest.json": "old",
                                                                 "data.npz": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench"]   # no temporary left
    with atomic_directory(folder, "manifest.json", ["data.npz"]) as tmp:
        (tmp / "manifest.json").write_text("new")
    assert {p.name: p.read_text() for p in folder.iterdir()} == {"manifest.json": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench"]

    def busy(self, target):   # e.g. `bench` is a mount point: it cannot be renamed aside
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(Path, "replace", busy)
    with pytest.raises(OSError, match="bench: cannot write it \\(Device or resource busy\\)"):
        with atomic_directory(folder, "manifest.json", ["data.npz"]) as tmp:
            (tmp / "manifest.json").write_text("newer")
    monkeypatch.undo()
    assert {p.name: p.read_text() for p in folder.iterdir()} == {"manifest.json": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench"]


def test_an_unwritable_target_is_named_not_its_temporary_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match=r"file/table.csv: cannot write it .*Fix: choose a location"):
        with atomic_path(blocker / "table.csv"):
            pass
    (tmp_path / "adir").mkdir()
    with pytest.raises(OSError, match=r"adir: cannot write it .*Fix: choose a location"):
        with atomic_path(tmp_path / "adir") as tmp:
            tmp.write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "file"]
