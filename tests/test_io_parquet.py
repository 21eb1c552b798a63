"""disco_ray's own Parquet files: the write_outputs / read_outputs round trip, hand-made files
refused with a clear error, a directory of per-model parts, and the README's example of
writing outputs."""

import json
from pathlib import Path

import numpy as np
import pytest

from disco_ray.io import read_npz, read_outputs, read_parquet, write_outputs, write_parquet
from disco_ray.outputs import ModelOutputs, OutputsError
from helpers import readme_python_block, synthetic_population


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


def test_the_readme_example_of_writing_outputs_runs(tmp_path, monkeypatch):
    block = readme_python_block("write_outputs(outputs")
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    back = read_outputs(tmp_path / "refs.parquet")
    assert back.model_ids.tolist() == ["ckpt-1", "ckpt-2"]
    np.testing.assert_allclose(back.scores(), [0.61, 0.74])


def test_the_public_readers_and_writers_take_string_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outputs = synthetic_population(3, 7)
    assert write_parquet(outputs, "o.parquet") == Path("o.parquet")
    assert read_parquet("o.parquet").model_ids.tolist() == outputs.model_ids.tolist()
    np.savez("o.npz", model_ids=outputs.model_ids, sample_ids=outputs.sample_ids,
             correct=outputs.correct)
    np.testing.assert_array_equal(read_npz("o.npz").correct, outputs.correct)
