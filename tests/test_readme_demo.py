"""The README's first command: `disco-ray run` with no arguments prints what the README shows,
each number within one unit of its last digit (the README allows the last digit to differ on
another CPU)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"[-+]?\d+(?:\.(\d+))?")


def readme_demo_output() -> str:
    """The output block that follows "It prints:" in the README's first-run section."""
    text = (ROOT / "README.md").read_text()
    return text.split("It prints:\n\n```\n", 1)[1].split("```", 1)[0]


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
def test_disco_ray_run_prints_the_readmes_demo_output(tmp_path: Path):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    run = subprocess.run([sys.executable, "-m", "disco_ray", "run"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    shown = readme_demo_output().splitlines()
    printed = run.stdout.strip("\n").splitlines()
    assert len(printed) == len(shown), run.stdout
    differing = [(want, got) for want, got in zip(shown, printed)
                 if not same_within_last_digit(want, got)]
    assert not differing, ("`disco-ray run` no longer prints what README.md shows; update its "
                           f"block after 'It prints:'. README / printed: {differing}")
    assert (tmp_path / "runs" / "demo" / "report.html").is_file()


def test_last_digit_comparison_allows_one_unit_and_no_more():
    assert same_within_last_digit("a 41.4% [36.5, 46.2] +7.4", "a 41.5% [36.5, 46.1] +7.4")
    assert not same_within_last_digit("a 41.4%", "a 41.6%")
    assert not same_within_last_digit("a 41.4% AT FRONTIER", "a 41.4%")
    assert same_within_last_digit("accuracy 0.960", "accuracy 0.961")
    assert not same_within_last_digit("accuracy 0.960", "accuracy 0.962")
    assert not same_within_last_digit("10/11 inside", "9/11 inside")
    assert same_within_last_digit("error -0.0", "error +0.0")
