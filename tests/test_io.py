"""Readers and writers: shared .npz, own Parquet, lm-eval --log_samples logs."""

import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest

from disco_ray.io import read_outputs, write_outputs
from disco_ray.io.atomic import atomic_directory, atomic_path
from disco_ray.outputs import OutputsError
from helpers import synthetic_population

FIXTURES = Path(__file__).parent / "fixtures"


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_npz_in_the_shared_format(tmp_path):
    path = _write_npz(tmp_path / "b.npz", model_ids=np.array(["m1", "m2"]),
                      sample_ids=np.array(["s1", "s2", "s3"]),
                      correct=np.array([[1, 0, np.nan], [0, 1, 1]], dtype=np.float32),
                      full_score=np.array([0.4, 0.6], dtype=np.float32),
                      pred_choice=np.array([[2, 0, -1], [1, 3, 0]], dtype=np.int16),
                      gold=np.array([2, 3, 0], dtype=np.int16),
                      meta=np.array(json.dumps({"name": "b"})))
    outputs = read_outputs(path)
    assert outputs.model_ids.tolist() == ["m1", "m2"]
    np.testing.assert_allclose(outputs.full_score, [0.4, 0.6], rtol=1e-6)
    # chosen letters become one-hot distributions; an unparsed answer is uniform
    np.testing.assert_allclose(outputs.probs[0, 0], [0, 0, 1, 0])
    np.testing.assert_allclose(outputs.probs[0, 2], [0.25] * 4)
    assert outputs.meta["name"] == "b"


def test_npz_probability_rows_all_nan_are_missing_outcomes(tmp_path, caplog):
    """A published matrix with gaps: a sample a model was not run on is NaN in every choice."""
    probs = np.array([[[0.7, 0.3, 0.0], [0.2, 0.5, 0.3]],
                      [[np.nan] * 3, [0.1, 0.1, 0.8]],
                      [[0.4, 0.6, 0.0], [np.nan] * 3]], dtype=np.float32)
    correct = np.array([[1, 0], [np.nan, 1], [0, np.nan]], dtype=np.float32)
    path = _write_npz(tmp_path / "gaps.npz", model_ids=np.array(["a", "b", "c"]),
                      sample_ids=np.array(["s1", "s2"]), correct=correct, probs=probs,
                      gold=np.array([0, 2]))
    with caplog.at_level("WARNING"):
        outputs = read_outputs(path)
    assert "gaps.npz: 2 (model, sample) probability rows are all NaN" in caplog.text
    # uniform over the sample's choices: s1 has two (its third is padding), s2 three
    np.testing.assert_allclose(outputs.probs[1, 0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(outputs.probs[2, 1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(outputs.probs[[0, 1, 2], [1, 1, 0]], probs[[0, 1, 2], [1, 1, 0]])
    assert np.isnan(outputs.correct[1, 0]) and np.isfinite(outputs.distributions()).all()
    np.testing.assert_allclose(outputs.scores(), [0.5, 0.5, 0.0])   # missing counts as wrong


def test_npz_probability_row_partly_nan_is_refused(tmp_path):
    probs = np.array([[[0.7, np.nan, 0.0]], [[0.2, 0.5, 0.3]]], dtype=np.float32)
    path = _write_npz(tmp_path / "partial.npz", model_ids=np.array(["a", "b"]),
                      sample_ids=np.array(["s1"]), correct=np.array([[1.0], [0.0]]),
                      probs=probs, gold=np.array([0]))
    with pytest.raises(OutputsError, match="partial.npz.*'probs'.*NaN.*NaN in every choice"):
        read_outputs(path)


def test_npz_missing_field_is_named(tmp_path):
    path = _write_npz(tmp_path / "bad.npz", model_ids=np.array(["m"]), correct=np.zeros((1, 1)))
    with pytest.raises(OutputsError, match="bad.npz: field 'sample_ids' is missing"):
        read_outputs(path)


def test_npz_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, model_ids=np.array([{"a": 1}], dtype=object),
             sample_ids=np.array(["s"]), correct=np.zeros((1, 1)))
    with pytest.raises(OutputsError, match="without pickled objects"):
        read_outputs(path)


def test_a_file_that_is_not_an_npz_archive_says_so(tmp_path):
    outputs = synthetic_population(3, 5)
    with pytest.raises(ValueError, match=r"refs.npz: write_outputs writes Parquet.*\.parquet"):
        write_outputs(outputs, tmp_path / "refs.npz")
    assert list(tmp_path.iterdir()) == []
    misnamed = tmp_path / "refs.npz"
    misnamed.write_bytes(write_outputs(outputs, tmp_path / "refs.parquet").read_bytes())
    with pytest.raises(OutputsError, match="refs.npz: not an .npz archive .*a .parquet name"):
        read_outputs(misnamed)


def test_empty_file_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(OutputsError, match="empty.npz"):
        read_outputs(path)


def test_unknown_file_type(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("a,b\n")
    with pytest.raises(OutputsError, match="unknown file type '.csv'.*Fix"):
        read_outputs(path)


@pytest.mark.parametrize("with_probs", [True, False])
def test_parquet_round_trip(tmp_path, with_probs):
    outputs = synthetic_population(7, 13, with_probs=with_probs)
    back = read_outputs(write_outputs(outputs, tmp_path / "out.parquet"))
    assert back.model_ids.tolist() == outputs.model_ids.tolist()
    np.testing.assert_array_equal(back.correct, outputs.correct)
    assert (back.probs is None) == (not with_probs)
    if with_probs:
        np.testing.assert_array_equal(back.probs, outputs.probs)
        np.testing.assert_array_equal(back.gold, outputs.gold)
    np.testing.assert_array_equal(back.groups, outputs.groups)


def test_parquet_parts_directory_and_mismatched_samples(tmp_path):
    outputs = synthetic_population(4, 10)
    for i in range(4):
        write_outputs(outputs.take_models([i]), tmp_path / "parts" / f"m{i}.parquet")
    back = read_outputs(tmp_path / "parts")
    assert sorted(back.model_ids) == sorted(outputs.model_ids)
    write_outputs(synthetic_population(1, 9), tmp_path / "parts" / "z.parquet")
    with pytest.raises(OutputsError, match="z.parquet: field 'sample_ids'.*differs"):
        read_outputs(tmp_path / "parts")


def test_lm_eval_log_samples_reader():
    outputs = read_outputs(FIXTURES / "lm_eval")
    assert outputs.model_ids.tolist() == ["org__model-a", "org__model-b"]
    assert outputs.sample_ids.tolist()[:2] == ["mmlu_anatomy/0", "mmlu_anatomy/1"]
    assert outputs.probs.shape == (2, 6, 4)
    loglik = np.array([-2.1, -0.4, -3.0, -2.7])
    expected = np.exp(loglik) / np.exp(loglik).sum()
    np.testing.assert_allclose(outputs.probs[0, 0], expected, rtol=1e-6)
    assert outputs.gold.tolist() == [1, 2, 2, 1, 1, 2]
    # model a: anatomy 3/3 right, astronomy 2/3 -> mean of subject accuracies
    np.testing.assert_allclose(outputs.scores()[0], (1.0 + 2 / 3) / 2)
    assert set(outputs.groups) == {"mmlu_anatomy", "mmlu_astronomy"}


def test_lm_eval_acc_norm_divides_by_continuation_length():
    acc = read_outputs(FIXTURES / "lm_eval", task="mmlu_anatomy", metric="acc")
    norm = read_outputs(FIXTURES / "lm_eval", task="mmlu_anatomy", metric="acc_norm")
    # every continuation is " X" (2 characters): probabilities of softmax(ll / 2)
    loglik = np.array([-2.1, -0.4, -3.0, -2.7]) / 2
    np.testing.assert_allclose(norm.probs[0, 0], np.exp(loglik) / np.exp(loglik).sum(),
                               rtol=1e-6)
    assert acc.n_samples == norm.n_samples == 3


def test_lm_eval_models_with_different_docs_are_rejected(tmp_path):
    for model, n in (("a", 2), ("b", 3)):
        folder = tmp_path / model
        folder.mkdir()
        rows = [{"doc_id": i, "target": 0, "filtered_resps": [["-1", "True"], ["-2", "False"]],
                 "acc": 1.0} for i in range(n)]
        (folder / "samples_t_2024-01-01T00-00-00.jsonl").write_text(
            "\n".join(json.dumps(r) for r in rows))
    with pytest.raises(OutputsError, match="'doc_id' differs between models a and b"):
        read_outputs(tmp_path)


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


def test_an_unwritable_target_is_named_not_its_temporary_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match=r"file/table.csv: cannot write it .*Fix: choose a location"):
        with atomic_path(blocker / "table.csv"):
            pass


def test_the_readme_example_of_writing_outputs_runs(tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    [block] = [b for b in blocks if "write_outputs(outputs" in b]
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    back = read_outputs(tmp_path / "refs.parquet")
    assert back.model_ids.tolist() == ["ckpt-1", "ckpt-2"]
    np.testing.assert_allclose(back.scores(), [0.61, 0.74])
