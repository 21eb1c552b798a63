"""The run directory and the input files against damage, as an unfriendly user would try it:
damaged cached parts, a full disk, two runs into one directory, an edited condensed benchmark,
absurd or mistyped fields, Ctrl-C, and Ray missing. Each case ends in a one-line error naming
the file and the fix, or in a correct result with a warning saying what was replaced."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from disco_ray import cli
from disco_ray.io import read_npz, read_parquet, write_outputs
from disco_ray.io.benchmark import REFERENCES_FILE, read_benchmark, write_benchmark
from disco_ray.io.lock import LOCK_FILE
from disco_ray.methods import method_settings
from disco_ray.outputs import ModelOutputs, OutputsError
from disco_ray.search import condense

from helpers import cli_env, synthetic_population

TESTS = Path(__file__).resolve().parent
REAL_WRITE_TABLE = pq.write_table


def replay_run(tmp_path: Path, n_refs: int = 8, n_targets: int = 2) -> Path:
    """A config replaying a synthetic population (8 references, 2 targets, 60 samples)."""
    population = synthetic_population(n_models=n_refs + n_targets, n_samples=60, seed=2)
    write_outputs(population, tmp_path / "population.parquet")
    with open(tmp_path / "task.jsonl", "w") as f:
        for sid, gold in zip(population.sample_ids, population.gold):
            f.write(json.dumps({"id": sid, "context": f"Q{sid}", "choices": list("ABCD"),
                                "gold": int(gold)}) + "\n")
    entry = {"backend": "replay", "path": str(tmp_path / "population.parquet")}
    names = population.model_ids.tolist()
    config = {"name": "replay", "task": {"path": str(tmp_path / "task.jsonl")},
              "references": {"models": [{"name": n} for n in names[:n_refs]], "defaults": entry},
              "targets": {"models": [{"name": n} for n in names[n_refs:]], "defaults": entry},
              "condense": {"k": 10, "method": "pds_rf"},
              "resources": {"cpus_per_model": 0.25, "batch_size": 30}, "report": False}
    path = tmp_path / "run.yaml"
    path.write_text(json.dumps(config))
    return path


def write_to_full_disk(table, where, **kwargs):
    """`pq.write_table` on a full disk: half the file is written, then the write fails as
    the operating system's does (ENOSPC)."""
    sink = pa.BufferOutputStream()
    REAL_WRITE_TABLE(table, sink, **kwargs)
    data = sink.getvalue().to_pybytes()
    Path(where).write_bytes(data[:len(data) // 2])
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# -- damaged cached parts ---------------------------------------------------------------------
DAMAGE = {"truncated": lambda b: b[:len(b) // 2], "empty": lambda b: b"",
          "garbage": lambda b: os.urandom(len(b))}


@pytest.mark.ray
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_cached_part_is_computed_again_and_named(ray_session, tmp_path, caplog,
                                                           damage):
    config = replay_run(tmp_path)
    out = tmp_path / "out"
    assert cli.main(["run", str(config), "--output", str(out), "-q"]) == 0
    first = json.loads((out / "predictions.json").read_text())
    part = out / "outputs" / "references" / "model-003.parquet"
    part.write_bytes(DAMAGE[damage](part.read_bytes()))
    with caplog.at_level(logging.WARNING, logger="disco_ray"):
        assert cli.main(["run", str(config), "--output", str(out), "-q"]) == 0
    assert f"{part}: damaged" in caplog.text and "the file is replaced" in caplog.text
    models = json.loads((out / "run.json").read_text())["models"]
    assert [n for n, m in models.items() if not m["cached"]] == ["model-003"]
    assert json.loads((out / "predictions.json").read_text()) == first
    np.testing.assert_array_equal(read_parquet(part).probs,
                                  read_parquet(tmp_path / "population.parquet").probs[3:4])


# -- a full disk ------------------------------------------------------------------------------
@pytest.mark.ray
def test_a_full_disk_stops_a_run_with_one_line_naming_the_file(ray_session, tmp_path, capsys,
                                                               caplog, monkeypatch):
    config = replay_run(tmp_path)
    out = tmp_path / "out"
    monkeypatch.setattr("disco_ray.distributed.cache.pq.write_table", write_to_full_disk)
    assert cli.main(["run", str(config), "--output", str(out), "-q"]) == 2
    err = one_line_error(capsys)
    assert err.startswith(f"disco-ray run: error: {out / 'outputs' / 'references'}/model-")
    assert "No space left on device. Fix: free space on the disk of" in err
    assert not [r for r in caplog.records if r.exc_info]            # no traceback logged
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("*.parquet"))
    assert not (out / LOCK_FILE).exists()


def test_a_full_disk_stops_condense_with_one_line_naming_the_directory(tmp_path, capsys,
                                                                       monkeypatch):
    write_outputs(synthetic_population(n_models=12, n_samples=50), tmp_path / "refs.parquet")
    monkeypatch.setattr("disco_ray.io.parquet.pq.write_table", write_to_full_disk)
    bench = tmp_path / "bench"
    code = cli.main(["condense", "--data", str(tmp_path / "refs.parquet"), "--k", "10",
                     "--method", "random_direct", "--output", str(bench), "-q"])
    assert code == 2
    err = one_line_error(capsys)
    assert err.startswith(f"disco-ray condense: error: {bench}: cannot write it: No space left "
                          "on device. Fix: free space")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["refs.parquet"]   # nothing half-written


# -- two runs, one directory; Ctrl-C ------------------------------------------------------------
def slow_run_config(tmp_path: Path, trace: Path) -> Path:
    """Slow classifiers (tests/cluster_models.py) that leave a trace file while they score."""
    entry = {"backend": "classifier", "path": "cluster_models:classifier"}
    models = [{"name": f"ref{i}", "options": {"seed": i, "delay": 5.0, "trace": str(trace)}}
              for i in range(4)]
    config = {"name": "slow", "task": {"factory": "cluster_models:task"},
              "references": {"models": models, "defaults": entry},
              "targets": {"models": [{"name": "t0", "options": {"seed": 9}}], "defaults": entry},
              "condense": {"k": 10, "method": "random_direct"},
              "resources": {"cpus_per_model": 1, "batch_size": 30}, "ray": {"num_cpus": 2},
              "report": False}
    path = tmp_path / "slow.yaml"
    path.write_text(json.dumps(config))
    return path


def start_slow_run(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    """`python -m disco_ray run` of `slow_run_config` in its own process group (as a terminal
    runs it), once one of its models is scoring; the process, its config and its output."""
    trace, out = tmp_path / "trace", tmp_path / "out"
    trace.mkdir()
    config = slow_run_config(tmp_path, trace)
    env = {**cli_env(),
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    # A shell without job control starts a background job (CI, say) with SIGINT ignored, and a
    # child inherits that. A Python handler at fork is reset to the default at exec instead: the
    # run gets Ctrl-C as a terminal's foreground job does.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        run = subprocess.Popen([sys.executable, "-m", "disco_ray", "run", str(config),
                                "--output", str(out)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 240
    while not list(trace.glob("*.scoring")):
        if run.poll() is not None or time.monotonic() > deadline:
            stop(run)
            raise AssertionError(f"no model started scoring: {run.communicate()[1][-3000:]}")
        time.sleep(0.2)
    return run, config, out


def stop(run: subprocess.Popen) -> None:
    if run.poll() is None:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()


@pytest.mark.slow
def test_a_second_run_into_a_directory_in_use_is_refused_naming_the_pid(tmp_path, capsys):
    first, config, out = start_slow_run(tmp_path)
    try:
        sys.path.insert(0, str(TESTS))   # the second run reads the same config
        assert cli.main(["run", str(config), "--output", str(out), "-q"]) == 2
    finally:
        sys.path.remove(str(TESTS))
        stop(first)
    assert one_line_error(capsys) == (
        f"disco-ray run: error: {out}: in use by pid {first.pid} (another disco-ray run "
        "writes there). Fix: wait for it to finish, or give another --output")


@pytest.mark.slow
def test_ctrl_c_ends_a_run_with_one_line_saying_a_rerun_resumes(tmp_path):
    run, _, out = start_slow_run(tmp_path)
    try:
        os.killpg(run.pid, signal.SIGINT)   # Ctrl-C reaches the terminal's process group
        _, stderr = run.communicate(timeout=120)
    finally:
        stop(run)
    assert run.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == (
        "disco-ray run: interrupted. Every model that finished is kept in the output directory "
        "(outputs/); run the same command again to resume from them.")
    assert not (out / LOCK_FILE).exists()


# -- an edited condensed benchmark --------------------------------------------------------------
def test_an_edited_condensed_file_is_refused_and_not_reused(tmp_path):
    from disco_ray.stages.condense import _saved_benchmark

    references = synthetic_population(n_models=20, n_samples=60)
    settings = method_settings("random_direct", 10)
    write_benchmark(condense(references, settings), tmp_path / "bench")
    edited = ModelOutputs.from_probs(references.model_ids, references.sample_ids,
                                     np.roll(references.probs, 1, axis=2), references.gold)
    write_outputs(edited, tmp_path / "bench" / REFERENCES_FILE)   # every prediction moves
    with pytest.raises(OutputsError, match=f"{tmp_path / 'bench' / REFERENCES_FILE}: changed "
                                           "since it was condensed .*Fix: condense the "
                                           "benchmark again"):
        read_benchmark(tmp_path / "bench")
    assert _saved_benchmark(tmp_path / "bench", references, settings) is None


# -- absurd or mistyped fields --------------------------------------------------------------------
def test_an_npz_claiming_a_billion_choices_is_refused_without_allocating(tmp_path):
    path = tmp_path / "huge.npz"
    pred = np.zeros((3, 4), dtype=np.int64)
    pred[0, 0] = 10**9
    np.savez(path, model_ids=np.array(["a", "b", "c"]), sample_ids=np.array(list("wxyz")),
             correct=np.zeros((3, 4)), gold=np.zeros(4, dtype=np.int64), pred_choice=pred)
    with pytest.raises(OutputsError, match=f"{path}: field 'pred_choice' holds choice index "
                                           "1000000000; at most 1023 is read"):
        read_npz(path)


def test_a_parquet_n_samples_stored_as_text_is_refused(tmp_path):
    path = write_outputs(synthetic_population(n_models=3, n_samples=10), tmp_path / "o.parquet")
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"disco_ray"])
    meta["n_samples"] = "10"
    pq.write_table(table.replace_schema_metadata({b"disco_ray": json.dumps(meta).encode()}), path)
    with pytest.raises(OutputsError, match=f"{path}: schema metadata 'disco_ray' field "
                                           "'n_samples' is '10' \\(str\\), not a whole number"):
        read_parquet(path)


def test_a_model_whose_outcomes_are_all_missing_is_refused(tmp_path):
    path = tmp_path / "nan.npz"
    correct = np.ones((2, 5))
    correct[1] = np.nan
    np.savez(path, model_ids=np.array(["ok", "empty"]), sample_ids=np.array(list("abcde")),
             correct=correct)
    with pytest.raises(OutputsError, match=f"{path}: field 'correct': is NaN \\(missing\\) on "
                                           "every sample for 1 model\\(s\\), e.g. 'empty'"):
        read_npz(path)


# -- Ray missing ------------------------------------------------------------------------------
def test_run_without_ray_says_how_to_install_it_before_any_work(tmp_path):
    config = replay_run(tmp_path)
    hide_ray = ("import sys; sys.modules['ray'] = None; from disco_ray.cli import main; "
                f"sys.exit(main(['run', {str(config)!r}, '--output', {str(tmp_path / 'out')!r}]))")
    result = subprocess.run([sys.executable, "-c", hide_ray], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip() == ("disco-ray run: error: `disco-ray run` runs the models on "
                                     "Ray, which is not installed. Fix: pip install "
                                     "'disco-ray[ray]'")
    assert not (tmp_path / "out").exists()
