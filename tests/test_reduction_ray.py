"""The Ray Data reduction over Parquet parts equals the in-memory `DisagreementState.of`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("ray")

from disco_ray.disagreement import DisagreementState  # noqa: E402
from disco_ray.distributed.reduction import block_state, ray_disagreement_state  # noqa: E402
from disco_ray.io.parquet import META_KEY, outputs_table, write_parquet  # noqa: E402
from disco_ray.outputs import ModelOutputs, OutputsError  # noqa: E402
from helpers import synthetic_population  # noqa: E402

pytestmark = pytest.mark.ray


def write_parts(outputs: ModelOutputs, folder: Path, sizes: list[int]) -> Path:
    """Write `outputs` as consecutive parts of `sizes` models each."""
    assert sum(sizes) == outputs.n_models
    start = 0
    for i, size in enumerate(sizes):
        part = outputs.take_models(range(start, start + size))
        write_parquet(part, folder / f"part-{i}.parquet")
        start += size
    return folder


def assert_same_state(got: DisagreementState, expected: DisagreementState) -> None:
    assert got.n_models == expected.n_models
    for kind in ("pds", "jsd"):
        np.testing.assert_allclose(got.scores(kind), expected.scores(kind), rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.prob_sum, expected.prob_sum, rtol=0, atol=1e-9)


def test_block_state_equals_of_including_zeros_and_empty_blocks():
    probs = synthetic_population(9, 30).probs
    probs[0, :5] = [1, 0, 0, 0]
    assert_same_state(block_state(probs), DisagreementState.of(probs))
    empty = block_state(probs[:0])
    assert empty.n_models == 0 and not empty.prob_max.any() and not empty.entropy_sum.any()


@pytest.mark.parametrize("parts_per_task", [1, 2, None])
def test_probabilities_over_parts_equal_in_memory(ray_session, tmp_path, parts_per_task):
    outputs = synthetic_population(23, 70, seed=1)
    folder = write_parts(outputs, tmp_path, [1, 5, 8, 2, 7])
    state = ray_disagreement_state(folder, parts_per_task=parts_per_task)
    assert_same_state(state, DisagreementState.of(outputs.probs))


def test_correctness_only_parts_use_two_class_outcomes(ray_session, tmp_path):
    outputs = synthetic_population(15, 40, with_probs=False, seed=2)
    correct = outputs.correct.copy()
    correct[3, :4] = np.nan  # missing counts as wrong
    outputs = ModelOutputs(outputs.model_ids, outputs.sample_ids, correct)
    folder = write_parts(outputs, tmp_path, [4, 4, 7])
    state = ray_disagreement_state(sorted(folder.glob("*.parquet")), parts_per_task=2)
    assert_same_state(state, DisagreementState.of(outputs.distributions()))


def test_guiding_subset_reduces_only_those_models(ray_session, tmp_path):
    outputs = synthetic_population(20, 50, seed=3)
    folder = write_parts(outputs, tmp_path, [6, 6, 8])
    chosen = [2, 3, 19]  # none in the middle part
    state = ray_disagreement_state(folder, [outputs.model_ids[i] for i in chosen],
                                   parts_per_task=1)
    assert_same_state(state, DisagreementState.of(outputs.probs[chosen]))


def test_unknown_guiding_model_is_named(ray_session, tmp_path):
    folder = write_parts(synthetic_population(6, 20), tmp_path, [3, 3])
    with pytest.raises(OutputsError, match="guiding models not found.*no-such-model"):
        ray_disagreement_state(folder, ["model-001", "no-such-model"])


def test_model_in_two_parts_is_named(ray_session, tmp_path):
    outputs = synthetic_population(6, 20)
    write_parts(outputs, tmp_path, [3, 3])
    write_parquet(outputs.take_models([4]), tmp_path / "part-9.parquet")
    with pytest.raises(OutputsError, match="more than one part.*model-004"):
        ray_disagreement_state(tmp_path)


def test_part_with_short_probability_lists_is_named(tmp_path):
    write_parts(synthetic_population(4, 10), tmp_path, [2, 2])
    table = pq.read_table(tmp_path / "part-1.parquet")
    short = pa.array([row[:-1] for row in table["probs"].to_pylist()], pa.list_(pa.float32()))
    bad = tmp_path / "part-1.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("probs"), "probs", short), bad)
    with pytest.raises(OutputsError, match=f"{bad}: field 'probs' does not hold 40 values"):
        ray_disagreement_state(tmp_path)


def test_part_with_other_sample_ids_is_named(tmp_path):
    outputs = synthetic_population(6, 20)
    write_parts(outputs, tmp_path, [3, 3])
    table = outputs_table(outputs.take_models([5]))
    meta = json.loads(table.schema.metadata[META_KEY])
    meta["sample_ids"][0] = "other-sample"
    bad = tmp_path / "part-5.parquet"
    pq.write_table(table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}), bad)
    with pytest.raises(OutputsError, match=f"{bad}: field 'sample_ids' differs"):
        ray_disagreement_state(tmp_path)
