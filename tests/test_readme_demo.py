"""The README's first command: `disco-ray run` with no arguments prints what the README shows,
each number within one unit of its last digit (the README allows the last digit to differ on
another CPU); then the commands and the Python example the README runs on the folder it leaves
behind; and the imports that go with its CLI / Python table."""
from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import README, cli_env, code_blocks, readme_python_block

NUMBER = re.compile(r"[-+]?\d+(?:\.(\d+))?")


def readme_demo_output() -> str:
    """The output block that follows "It prints:" in the README's first-run section."""
    return README.read_text().split("It prints:\n\n```\n", 1)[1].split("```", 1)[0]


def readme_commands_on_the_demo_folder() -> list[list[str]]:
    """The `disco-ray` commands of the README's block that runs on the demo's output folder."""
    after = README.read_text().split("The demo leaves such a folder behind", 1)[1]
    block = code_blocks(after, "bash")[0]
    return [shlex.split(line) for line in block.splitlines() if line.startswith("disco-ray ")]


def disco_ray(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`python -m disco_ray ARGS` in `cwd` on a local Ray of its own; fails with its stderr."""
    done = subprocess.run([sys.executable, "-m", "disco_ray", *args], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"disco-ray {' '.join(args)}: {done.stderr[-3000:]}"
    return done


def same_within_last_digit(shown: str, printed: str) -> bool:
    """Whether two lines have the same words, the same whole numbers (counts, names) and
    decimals that differ by at most one unit of the shown one's last digit."""
    if NUMBER.sub("#", shown) != NUMBER.sub("#", printed):
        return False
    for want, got in zip(NUMBER.finditer(shown), NUMBER.finditer(printed)):
        unit = 10.0 ** -len(want.group(1)) if want.group(1) else 0.0
        if abs(float(want.group()) - float(got.group())) > unit * 1.0001:
            return False
    return True


@pytest.mark.slow
@pytest.mark.ray
def test_disco_ray_run_prints_the_readmes_demo_output_and_its_commands_run_on_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run = disco_ray(["run"], tmp_path)
    shown = readme_demo_output().splitlines()
    printed = run.stdout.strip("\n").splitlines()
    assert len(printed) == len(shown), run.stdout
    differing = [(want, got) for want, got in zip(shown, printed)
                 if not same_within_last_digit(want, got)]
    assert not differing, ("`disco-ray run` no longer prints what README.md shows; update its "
                           f"block after 'It prints:'. README / printed: {differing}")
    assert (tmp_path / "runs" / "demo" / "report.html").is_file()

    condense, predict, evaluate = readme_commands_on_the_demo_folder()
    assert [c[:2] for c in (condense, predict, evaluate)] == [
        ["disco-ray", "condense"], ["disco-ray", "predict"], ["disco-ray", "evaluate"]]
    disco_ray(condense[1:], tmp_path)
    assert (tmp_path / "bench").is_dir()
    predicted = disco_ray(predict[1:], tmp_path).stdout
    targets = [line.split()[0] for line in shown[1:12]]
    assert sorted(line.split()[0] for line in predicted.splitlines()[1:12]) == sorted(targets)
    table = disco_ray(evaluate[1:], tmp_path).stdout.splitlines()
    rows = {(row.split()[1], row.split()[2]) for row in table[1:] if row.startswith("top ")}
    assert rows == {(k, method) for k in ("25", "50")
                    for method in ("random_direct", "jsd_rf", "disco")}

    printed = io.StringIO()
    monkeypatch.chdir(tmp_path)
    with contextlib.redirect_stdout(printed):
        exec(compile(readme_python_block("runs/demo/outputs/references"), "README.md", "exec"),
             {})
    assert sorted(line.split()[0] for line in printed.getvalue().splitlines()) == sorted(targets)


def test_last_digit_comparison_allows_one_unit_and_no_more():
    assert same_within_last_digit("a 41.4% [36.5, 46.2] +7.4", "a 41.5% [36.5, 46.1] +7.4")
    assert not same_within_last_digit("a 41.4%", "a 41.6%")
    assert not same_within_last_digit("a 41.4% AT FRONTIER", "a 41.4%")
    assert same_within_last_digit("accuracy 0.960", "accuracy 0.961")
    assert not same_within_last_digit("accuracy 0.960", "accuracy 0.962")
    assert not same_within_last_digit("10/11 inside", "9/11 inside")
    assert same_within_last_digit("error -0.0", "error +0.0")


def test_the_readme_api_tables_imports_hold_every_name_the_table_uses():
    names: dict = {}
    exec(compile(readme_python_block("import cell_runner"), "README.md", "exec"), names)
    table = README.read_text().split("| CLI | Python |", 1)[1].split("\n\n", 1)[0]
    for name in ("AnchorDesign", "cell_runner", "evaluation_table", "held_out_predictions",
                 "lm_eval_samples", "METHODS"):
        assert name in table and name in names, name
    assert callable(names["disco_ray"].pipeline.run_from_config)
