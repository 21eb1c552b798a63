"""The .npz reader (the shared format of published outputs): its fields, probability rows with
gaps, malformed fields named with a fix, pickled objects refused; and read_outputs' errors for a
file it cannot read (not an .npz archive, empty, of an unknown type)."""

import json

import numpy as np
import pytest

from disco_ray.io import read_outputs, write_outputs
from disco_ray.outputs import OutputsError
from helpers import synthetic_population


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


NPZ_OK = {"model_ids": np.array(["a", "b"]), "sample_ids": np.array(["s1", "s2"]),
          "correct": np.array([[1.0, 0.0], [0.0, 1.0]]), "gold": np.array([0, 2]),
          "pred_choice": np.array([[0, 1], [1, 2]])}


@pytest.mark.parametrize("change, message", [
    ({"pred_choice": np.array([[0.0, 1.5], [1.0, 2.0]])},
     r"field 'pred_choice' holds 4 value\(s\) of type float64, not all whole numbers. Fix: "
     r"store choice indices"),
    ({"gold": np.array([], dtype=np.int64)}, r"field 'gold' holds 0 value\(s\)"),
    ({"gold": np.array([1, 3]), "probs": np.full((2, 2, 3), 1 / 3)},
     r"field 'gold': holds 1..3, outside the choice indices 0..2. Fix: give the index of the "
     r"right choice, counted from 0"),
    ({"gold": np.array([-1, 2])}, r"field 'gold': holds -1..2, outside the choice indices"),
    ({"model_ids": np.array("a")}, r"field 'model_ids': has shape \(\), expected a list of ids"),
    ({"correct": np.array([["1", "x"], ["0", "1"]])}, r"field 'correct': is not numeric"),
    ({"meta": np.array("{oops")}, r"field 'meta': invalid JSON"),
])
def test_a_malformed_npz_field_is_named_with_a_fix(tmp_path, change, message):
    path = _write_npz(tmp_path / "bad.npz", **{**NPZ_OK, **change})
    with pytest.raises(OutputsError, match="bad.npz: " + message):
        read_outputs(path)


def test_the_valid_npz_behind_those_cases_reads(tmp_path):
    outputs = read_outputs(_write_npz(tmp_path / "ok.npz", **NPZ_OK))
    assert outputs.probs.shape == (2, 2, 3) and outputs.gold.tolist() == [0, 2]
    as_floats = {**NPZ_OK, "gold": NPZ_OK["gold"].astype(float)}   # whole numbers as floats
    again = read_outputs(_write_npz(tmp_path / "f.npz", **as_floats))
    np.testing.assert_array_equal(again.probs, outputs.probs)
    assert again.gold.tolist() == [0, 2]


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
