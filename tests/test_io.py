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
from disco_ray.outputs import ModelOutputs, OutputsError
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


def _broken(table, change: str):
    """`table` (written by write_outputs) with one thing broken, as hand-made files are."""
    import pyarrow as pa

    meta = json.loads(table.schema.metadata[b"disco_ray"])
    if change == "no correct column":
        return table.drop_columns(["correct"])
    if change == "meta not JSON":
        return table.replace_schema_metadata({b"disco_ray": b"{oops"})
    if change == "meta without n_samples":
        del meta["n_samples"]
        return table.replace_schema_metadata({b"disco_ray": json.dumps(meta).encode()})
    scores = table.column("full_score").to_pylist()
    return table.set_column(3, "full_score", pa.array([None] + scores[1:], pa.float64()))


@pytest.mark.parametrize("change, message", [
    ("no correct column", r"t.parquet: column\(s\) correct missing \(it has model_id, probs, "
                          r"full_score\). Fix: write the file with disco_ray.io.write_outputs"),
    ("meta not JSON", r"t.parquet: schema metadata 'disco_ray': invalid JSON"),
    ("meta without n_samples", r"t.parquet: schema metadata 'disco_ray' lacks field\(s\) "
                               r"n_samples"),
    ("one score null", r"t.parquet: field 'full_score' is null for 1 of 4 models. Fix: give "
                       r"every model's full-benchmark score, or none"),
])
def test_a_hand_made_parquet_file_gets_a_clear_error(tmp_path, change, message):
    import pyarrow.parquet as pq

    from disco_ray.io.parquet import outputs_table

    outputs = synthetic_population(4, 10)
    outputs = ModelOutputs(outputs.model_ids, outputs.sample_ids, outputs.correct,
                           full_score=[0.1, 0.2, 0.3, 0.4])
    pq.write_table(_broken(outputs_table(outputs), change), tmp_path / "t.parquet")
    with pytest.raises(OutputsError, match=message):
        read_outputs(tmp_path / "t.parquet")


def test_parquet_parts_directory_and_mismatched_samples(tmp_path):
    outputs = synthetic_population(4, 10)
    for i in range(4):
        write_outputs(outputs.take_models([i]), tmp_path / "parts" / f"m{i}.parquet")
    back = read_outputs(tmp_path / "parts")
    assert sorted(back.model_ids) == sorted(outputs.model_ids)
    write_outputs(synthetic_population(1, 9), tmp_path / "parts" / "z.parquet")
    with pytest.raises(OutputsError, match=r"z.parquet: field\(s\) gold, groups, n_samples, "
                                           r"sample_ids differ from m0.parquet's"):
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
    # every continuation is " X": lm-eval divides by len("X") = 1, not by 2 with the space
    loglik = np.array([-2.1, -0.4, -3.0, -2.7]) / 1
    np.testing.assert_allclose(norm.probs[0, 0], np.exp(loglik) / np.exp(loglik).sum(),
                               rtol=1e-6)
    assert acc.n_samples == norm.n_samples == 3


def _lm_eval_rows(n: int) -> list[dict]:
    """`n` two-choice docs where the model prefers choice 0, the target."""
    return [{"doc_id": i, "target": 0, "filtered_resps": [["-1", "True"], ["-2", "False"]],
             "acc": 1.0} for i in range(n)]


def _write_log(folder: Path, rows: list, task: str = "t") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"samples_{task}_2024-01-01T00-00-00.jsonl"
    file.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows))
    return file


def test_lm_eval_models_with_different_docs_are_rejected(tmp_path):
    for model, n in (("a", 2), ("b", 3)):
        _write_log(tmp_path / model, _lm_eval_rows(n))
    with pytest.raises(OutputsError, match="'doc_id' differs between models a and b"):
        read_outputs(tmp_path)


def test_lm_eval_docs_logged_in_another_order_are_matched_by_id(tmp_path):
    """lm-eval on several GPUs logs each rank's docs in turn: the order is not the doc order."""
    rows = _lm_eval_rows(3)
    rows[1] = {**rows[1], "target": 1, "acc": 0.0}
    _write_log(tmp_path / "a", rows)
    _write_log(tmp_path / "b", [rows[2], rows[0], rows[1]])
    outputs = read_outputs(tmp_path)
    np.testing.assert_array_equal(outputs.correct, [[1, 0, 1], [1, 0, 1]])
    np.testing.assert_array_equal(outputs.probs[0], outputs.probs[1])


@pytest.mark.parametrize("line, message", [
    ('{"doc_id": 1, "target": 0, "filtered_re', r"t_2024-01-01T00-00-00.jsonl:2: invalid JSON"),
    ({"doc_id": 1, "target": "the answer", "filtered_resps": [["-1", "True"], ["-2", "False"]]},
     r"jsonl:2: field 'target' is 'the answer', neither the index nor the text of one of the 2 "
     r"choices"),
    ({"doc_id": 1, "target": 2, "filtered_resps": [["-1", "True"], ["-2", "False"]]},
     r"jsonl:2: field 'target' is '2', neither the index"),
    ({"doc_id": 0, "target": 0, "filtered_resps": [["-1", "True"], ["-2", "False"]]},
     r"jsonl:2: field 'doc_id': t/0 is logged twice"),
])
def test_a_bad_lm_eval_line_is_named_by_file_and_line(tmp_path, line, message):
    _write_log(tmp_path / "a", [_lm_eval_rows(1)[0], line])
    with pytest.raises(OutputsError, match=message):
        read_outputs(tmp_path)


def test_a_task_logged_twice_in_one_folder_reads_the_later_run(tmp_path, caplog):
    """lm_eval run again with the same --output_path adds a file with a later timestamp."""
    rows = _lm_eval_rows(2)
    _write_log(tmp_path / "a", rows)
    later = {**rows[1], "target": 1, "acc": 0.0}
    (tmp_path / "a" / "samples_t_2024-02-01T00-00-00.jsonl").write_text(
        "\n".join(json.dumps(r) for r in (rows[0], later)))
    with caplog.at_level("WARNING"):
        outputs = read_outputs(tmp_path)
    assert outputs.correct.tolist() == [[1.0, 0.0]]
    assert "task t was logged again; reading the later run samples_t_2024-02-01" in caplog.text


def test_two_runs_of_one_model_name_are_not_merged(tmp_path):
    """Folder names are model ids: two folders of one name would silently become one model."""
    _write_log(tmp_path / "run1" / "org__model", _lm_eval_rows(2))
    _write_log(tmp_path / "run2" / "org__model", _lm_eval_rows(2))
    with pytest.raises(OutputsError, match=r"folders .*run1/org__model and .*run2/org__model "
                                           r"both hold lm-eval runs of model 'org__model'"):
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


def test_a_replacement_interrupted_between_its_renames_loses_neither_result(tmp_path,
                                                                           monkeypatch):
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


def test_the_readme_example_of_writing_outputs_runs(tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    [block] = [b for b in blocks if "write_outputs(outputs" in b]
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    back = read_outputs(tmp_path / "refs.parquet")
    assert back.model_ids.tolist() == ["ckpt-1", "ckpt-2"]
    np.testing.assert_allclose(back.scores(), [0.61, 0.74])
