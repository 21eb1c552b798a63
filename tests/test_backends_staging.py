"""Checkpoints on object storage are copied to local disk for loading, then removed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from disco_ray.backends.base import ModelSpec
from disco_ray.backends import staging
from disco_ray.backends.staging import STAGE_ENV, is_uri, local_checkpoint


def _spec(path: str, **options) -> ModelSpec:
    return ModelSpec("org/ckpt step 9", "hf", path, options=options)


def test_only_uris_are_staged():
    assert is_uri("s3://bucket/ckpts/step-9") and is_uri("gs://b/x") and is_uri("file:///x")
    assert not is_uri("meta-llama/Llama-3.1-8B") and not is_uri("/ckpts/step-9")
    for spec in (_spec("/ckpts/step-9"), _spec("s3://bucket/step-9", stage=False)):
        with local_checkpoint(spec) as local:
            assert local is spec


def test_a_directory_and_a_file_are_copied_under_the_root_then_removed(tmp_path, monkeypatch):
    source = tmp_path / "bucket" / "step-9"
    (source / "sub").mkdir(parents=True)
    (source / "config.json").write_text("{}")
    (source / "sub" / "weights.bin").write_bytes(b"\x00" * 1000)
    monkeypatch.setenv(STAGE_ENV, str(tmp_path / "stage"))
    with local_checkpoint(_spec(f"file://{source}")) as local:
        staged = Path(local.path)
        assert staged.parent.parent == tmp_path / "stage" and staged.name == "step-9"
        assert staged.parent.name.startswith("disco_ray-org_ckpt_step_9-")
        assert (staged / "config.json").read_text() == "{}"
        assert (staged / "sub" / "weights.bin").stat().st_size == 1000
        assert local.name == "org/ckpt step 9" and local.backend == "hf"
    assert list((tmp_path / "stage").iterdir()) == []
    with local_checkpoint(_spec(f"file://{source}/config.json",
                                stage_dir=str(tmp_path / "own"))) as local:
        assert Path(local.path).name == "config.json"
        assert Path(local.path).read_text() == "{}"
    assert list((tmp_path / "own").iterdir()) == []


def test_a_missing_or_unreadable_uri_names_the_model_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="model 'org/ckpt step 9': field 'path': "
                                                "file://.*/nothing does not exist. Fix"):
        with local_checkpoint(_spec(f"file://{tmp_path}/nothing", stage_dir=str(tmp_path))):
            pass
    with pytest.raises(OSError, match="cannot read nosuch://x/y .*Fix: check the URI"):
        with local_checkpoint(_spec("nosuch://x/y", stage_dir=str(tmp_path))):
            pass
    assert list(tmp_path.iterdir()) == []   # nothing left behind


def test_a_home_relative_stage_dir_is_expanded(tmp_path, monkeypatch):
    (tmp_path / "bucket").mkdir()
    (tmp_path / "bucket" / "w.bin").write_bytes(b"1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with local_checkpoint(_spec(f"file://{tmp_path}/bucket", stage_dir="~/nvme")) as local:
        assert Path(local.path).parent.parent == tmp_path / "home" / "nvme"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_copies_left_by_a_process_that_died_are_removed_by_the_next_staging(tmp_path, caplog):
    """An actor killed while loading leaves its copy; the next staging deletes it when it can
    tell the owner is gone (its pid is free, or taken by a later process), and nothing else:
    not a live process's copy, one from another PID namespace or boot, a folder that is no
    copy, or a symbolic link."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    me = staging._owner()
    owners = {"disco_ray-a-dead": {**me, "pid": int(dead.stdout)},
              "disco_ray-b-pid-reused": {**me, "started": me["started"] - 1},
              "disco_ray-c-alive": me,
              "disco_ray-d-other-namespace": {**me, "pid": int(dead.stdout),
                                              "pid_namespace": "pid:[1]"},
              "disco_ray-e-other-boot": {**me, "pid": int(dead.stdout), "boot": "other"},
              "disco_ray-f-no-proc": {"host": me["host"], "pid": int(dead.stdout)}}
    root = tmp_path / "stage"
    for name, owner in owners.items():
        (root / name / "step-1").mkdir(parents=True)
        (root / name / "owner.json").write_text(json.dumps(owner))
    (root / "disco_ray-g-no-owner").mkdir()
    (root / "users-data").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "owner.json").write_text(json.dumps(owners["disco_ray-a-dead"]))
    (root / "disco_ray-h-link").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "bucket").mkdir()
    (tmp_path / "bucket" / "w.bin").write_bytes(b"1")
    with caplog.at_level("WARNING"):
        with local_checkpoint(_spec(f"file://{tmp_path}/bucket", stage_dir=str(root))) as local:
            assert json.loads((Path(local.path).parent / "owner.json").read_text()) == me
    assert sorted(p.name for p in root.iterdir()) == [
        "disco_ray-c-alive", "disco_ray-d-other-namespace", "disco_ray-e-other-boot",
        "disco_ray-f-no-proc", "disco_ray-g-no-owner", "disco_ray-h-link", "users-data"]
    assert (tmp_path / "elsewhere" / "owner.json").exists()
    assert caplog.text.count("died while loading") == 2
