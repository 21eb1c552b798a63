"""The run report: embedded figures that decode, the per-model table, the text summary, and a
headless-browser check (skipped without Chromium)."""

import base64
import io
import json
import re
import shutil
from dataclasses import asdict

import numpy as np
import pytest
from matplotlib.image import imread

from disco_ray.analysis import write_run_analysis
from disco_ray.search import condense
from disco_ray.io import write_outputs
from disco_ray.io.benchmark import write_benchmark
from disco_ray.io.run import RunDirectory
from disco_ray.methods import method_settings
from disco_ray.report import summary_table, write_report
from disco_ray.report.browser import check_in_browser, find_chromium
from disco_ray.report.plots import population_figure
from disco_ray.report.tables import model_rows
from helpers import synthetic_population

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
K = 12


def make_run_dir(out, with_true: bool = True, with_references: bool = True, curve_seeds: int = 1):
    """An output directory honoring configs/README.md, from a synthetic population, with the
    analysis the pipeline stores (without the references' full outputs: no curve and no
    reference points)."""
    population = synthetic_population(46, 60, seed=2)
    target_index = np.arange(5, 46, 8)
    refs = population.take_models(np.setdiff1d(np.arange(46), target_index))
    targets = population.take_models(target_index)
    for i, model_id in enumerate(refs.model_ids):
        write_outputs(refs.take_models([i]), out / "outputs" / "references" / f"{model_id}.parquet")
    bench = condense(refs, method_settings("pds_rf", K, 0))
    write_benchmark(bench, out / "condensed")
    write_run_analysis(RunDirectory(out), bench, refs if with_references else None, "pds_rf",
                       curve_seeds)
    truth = targets.scores() if with_true else [None] * targets.n_models
    predictions = [{**asdict(p), "true_score": None if t is None else float(t)}
                   for p, t in zip(bench.predict(targets), truth)]
    predictions[0].update(out_of_population=True, reason="anchor accuracy above the references'",
                          at_frontier=False)
    for p in predictions[1:]:
        p.update(out_of_population=False, reason="", at_frontier=False)
    predictions[1]["at_frontier"] = True
    (out / "predictions.json").write_text(json.dumps(predictions))
    run = {"name": "synthetic", "config": {"condense": {"k": K, "method": "pds_rf", "seed": 0}},
           "timings_s": {"evaluate_full": 3.5, "condense": 0.4}, "n_references": refs.n_models,
           "n_targets": targets.n_models, "n_samples": 60, "k": K, "cost_share": K / 60,
           "failed": {"broken-model": "RuntimeError: boom"}}
    (out / "run.json").write_text(json.dumps(run))
    return out, predictions


def embedded_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(data)
            for data in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out, predictions = make_run_dir(tmp_path_factory.mktemp("run"))
    path = write_report(out)
    return out, path, predictions


def test_report_embeds_four_decodable_figures(report):
    _, path, _ = report
    html = path.read_text()
    images = embedded_pngs(html)
    assert len(images) == 4
    for png in images:
        assert png.startswith(PNG_MAGIC)
        height, width = imread(io.BytesIO(png)).shape[:2]
        assert height > 100 and width > 100
    assert "<script" not in html and "http://" not in html and "https://" not in html


def test_report_table_and_files(report):
    out, path, predictions = report
    html = path.read_text()
    for p in predictions:
        assert f"<td class='name'>{p['model_id']}</td>" in html
    flagged = sum(p["out_of_population"] for p in predictions)
    assert flagged >= 1 and html.count("<tr class='ood'>") == flagged
    assert "anchor accuracy above the references&#x27;" in html
    assert html.count("<tr class='frontier'>") == 1 and "at the frontier: 90% interval" in html
    older = {k: v for k, v in predictions[1].items() if k != "at_frontier"}  # before the field
    assert model_rows([older])[0]["at_frontier"] is False
    assert "broken-model" in html and "cross-validated on the" in html.lower()
    saved = json.loads((out / "report.json").read_text())
    assert len(saved["models"]) == len(predictions) and saved["anchor_curve"]
    assert saved["facts"]["k"] == K and (out / "predictions.csv").is_file()


def test_summary_table(report):
    out, path, predictions = report
    lines = summary_table(out).splitlines()
    assert lines[0].split() == ["model", "predicted", "90%", "interval", "true", "error", "flag"]
    rows = {line.split()[0]: line for line in lines[1:len(predictions) + 1]}
    assert set(rows) == {p["model_id"] for p in predictions}
    for p in predictions:
        line = rows[p["model_id"]]
        assert f"{100 * p['score']:.1f}%" in line and f"{100 * p['true_score']:.1f}%" in line
        assert line.endswith("OUT OF POPULATION") == p["out_of_population"]
        assert line.endswith("AT FRONTIER") == p["at_frontier"]
    frontier = lines.index(next(line for line in lines if line.startswith("At the frontier")))
    assert lines[frontier + 2] == f"  {predictions[1]['model_id']}"   # the note takes 2 lines
    assert any(line.startswith("MAE ") for line in lines)
    assert f"Cost: {100 * K / 60:.1f}% of a full evaluation" in summary_table(out)
    assert lines[-1] == f"Report: {path}"


def test_report_without_reference_outputs_or_true_scores(report, tmp_path):
    out, predictions = make_run_dir(tmp_path, with_true=False, with_references=False)
    shutil.rmtree(out / "outputs")
    html = write_report(out).read_text()
    # predicted intervals + disagreement; no curve, no targets-against-references figure
    assert len(embedded_pngs(html)) == 2
    assert "Predicted scores" in html and "not computed" in html
    assert "<th>true</th>" not in html and "<th>error (pp)</th>" not in html
    header, first_row = summary_table(out).splitlines()[:2]
    # without true scores the table has no true / error columns
    assert header.split() == ["model", "predicted", "90%", "interval", "flag"]
    assert first_row.split()[1] == f"{100 * predictions[0]['score']:.1f}%"


@pytest.mark.skipif(find_chromium() is None,
                    reason="no chromium executable (apt-get install chromium) to render the report")
def test_report_renders_in_headless_chromium(report, tmp_path):
    _, path, _ = report
    check = check_in_browser(path, screenshot=tmp_path / "report.png")
    assert check.ok and check.images_total == 4
    pixels = imread(check.screenshot)
    assert pixels.shape[0] > 500 and pixels[..., :3].std() > 0.05


def test_population_figure_places_references_and_targets():
    predictions = [
        {"model_id": "inside", "score": 0.5, "lower": 0.45, "upper": 0.55,
         "anchor_accuracy": 0.6, "out_of_population": False, "true_score": 0.52},
        {"model_id": "beyond", "score": 0.9, "lower": 0.7, "upper": 1.0,
         "anchor_accuracy": 0.95, "out_of_population": True, "true_score": None},
        {"model_id": "edge", "score": 0.66, "lower": 0.6, "upper": 0.72,
         "anchor_accuracy": 0.78, "out_of_population": False, "at_frontier": True,
         "true_score": None}]
    accuracy, scores = np.array([0.3, 0.5, 0.8]), np.array([0.25, 0.45, 0.7])
    ax = population_figure(predictions, accuracy, scores).axes[0]
    collections = {c.get_label(): c.get_offsets() for c in ax.collections
                   if c.get_label() in ("references (true score)", "target (true)")}
    assert np.allclose(collections["references (true score)"], np.column_stack(
        [100 * accuracy, 100 * scores]))
    assert np.allclose(collections["target (true)"][0], [60, 52])   # only the known true score
    markers = {c.get_label(): c.lines[0] for c in ax.containers}   # errorbar: label -> points
    assert np.allclose(markers["target"].get_xydata(), [[60, 50]])
    assert np.allclose(markers["out of population"].get_xydata(), [[95, 90]])
    assert np.allclose(markers["at the frontier"].get_xydata(), [[78, 66]])
    lines = {line.get_label(): line for line in ax.get_lines()}
    # two different references in general: each line says which extreme it marks
    assert np.allclose(lines["highest reference anchor accuracy"].get_xdata(), 80)
    assert np.allclose(lines["highest reference score"].get_ydata(), 70)


def test_the_anchor_curve_is_stored_by_the_evaluation_protocol_with_named_lines(report):
    """The run's own method is a line across k beside baselines named for what they are; a
    point of it is a benchmark condensed on 80% of the references and scored on the rest."""
    from disco_ray.io import read_outputs

    out, _, _ = report
    curve = json.loads((out / "analysis.json").read_text())["anchor_curve"]
    assert curve["labels"] == {"pds_rf": "pds_rf (this run's method)",
                               "random_rf": "random anchors + random forest",
                               "random_direct": "random anchors, plain mean"}
    rows = {(row["method"], row["k"]): row["mae_pp"] for row in curve["rows"]}
    assert set(rows) == {(m, k) for m in curve["labels"] for k in (10, 12, 25, 50)}
    refs = read_outputs(out / "outputs" / "references")
    order = np.random.default_rng(0).permutation(refs.n_models)
    n_out = round(0.2 * refs.n_models)
    held = refs.take_models(np.sort(order[:n_out]))
    bench = condense(refs.take_models(np.sort(order[n_out:])), method_settings("random_rf", 25))
    error = [abs(p.score - t) for p, t in zip(bench.predict(held), held.scores())]
    assert rows[("random_rf", 25)] == pytest.approx(100 * np.mean(error), abs=1e-9)
    saved = json.loads((out / "report.json").read_text())
    assert saved["anchor_curve"] == curve["rows"]
