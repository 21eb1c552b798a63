"""The README's Results and Limits sections agree with the kept tables: the development table
(`examples/benchmarks/dev_table/<data>.csv`) for every MAE in the Results table, the counts of the
cells where `disco` and `disco_frontier` are lowest and the coverage of `disco`'s and `gp_irt`'s
intervals (on the random and the `top` splits); the reserved check
(`examples/benchmarks/reserved_check/<data>.csv`) for its count of the random cells where `disco`
is lowest."""
import re
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from helpers import README, ROOT

DEV_TABLE = ROOT / "examples" / "benchmarks" / "dev_table"
RESERVED = ROOT / "examples" / "benchmarks" / "reserved_check"
COLUMNS = ("random_direct", "random_rf", "gp_irt", "jsd_rf", "disco")
ROW_SPLITS = {"random 20% held out": "random", "strongest 10% held out": "top",
              "leave-one-out": "random"}
DATA = ("openllm_mmlu", "openllm_arc", "mmlu_pro_29")


def readme_section(title: str) -> str:
    """The text of the README's section `## title`, up to the next section."""
    return README.read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def prose(section: str) -> str:
    """The section with every run of whitespace as one space, so that a reflow keeps it equal."""
    return " ".join(section.split())


@cache
def kept_table(folder: Path = DEV_TABLE) -> pd.DataFrame:
    """Every row of the kept tables in `folder`, read once per test session."""
    return pd.concat([pd.read_csv(path) for path in sorted(folder.glob("*.csv"))])


def cells_where_disco_is_lowest(table: pd.DataFrame) -> pd.Series:
    """Per (data, split, k): whether `disco` has the least MAE among all methods but its variant
    `disco_frontier`."""
    wide = table.pivot_table(index=["data", "split", "k"], columns="method", values="mae_pp")
    return wide.drop(columns="disco_frontier").idxmin(axis=1) == "disco"


def readme_rows() -> list[tuple[str, str, list[float]]]:
    """(data, split, MAE per column) for each row of the README's k = 100 table."""
    rows = []
    for line in readme_section("Results").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 1 + len(COLUMNS) or not cells[0].startswith(DATA):
            continue
        data, described = cells[0].split(", ", 1)
        rows.append((data, ROW_SPLITS[described], [float(cell) for cell in cells[1:]]))
    return rows


def test_the_readme_table_has_a_row_per_data_set_and_split():
    assert [(data, split) for data, split, _ in readme_rows()] == [
        ("openllm_mmlu", "random"), ("openllm_mmlu", "top"), ("openllm_arc", "random"),
        ("openllm_arc", "top"), ("mmlu_pro_29", "random")]


@pytest.mark.parametrize("data,split,maes", readme_rows())
def test_each_readme_mae_is_the_kept_tables_at_k_100(data: str, split: str, maes: list[float]):
    table = kept_table()
    cell = table[(table.data == data) & (table.split == split) & (table.k == 100)]
    kept = cell.set_index("method").loc[list(COLUMNS), "mae_pp"].round(2).tolist()
    assert kept == maes


def test_the_readme_counts_the_cells_where_disco_is_lowest():
    table = kept_table()
    wide = table.pivot_table(index=["data", "split", "k"], columns="method", values="mae_pp")
    lowest = int(cells_where_disco_is_lowest(table).sum())
    frontier_lower = int((wide.disco_frontier < wide.disco).sum())
    frontier_lowest = int((wide.idxmin(axis=1) == "disco_frontier").sum())
    text = prose(readme_section("Results"))
    claim = re.search(r"in (\d+) of the (\d+) \(data x split x k\) cells", text)
    assert claim, "README no longer states how many cells disco is lowest in"
    assert (lowest, len(wide)) == (int(claim[1]), int(claim[2]))
    assert (f"`disco_frontier` is lower than `disco` in {frontier_lower} of the {len(wide)} cells"
            in text)
    assert f"the lowest of all in {frontier_lowest}." in text


def test_the_readme_states_the_coverage_of_discos_intervals_on_the_large_random_splits():
    table = kept_table()
    coverage = table[(table.method == "disco") & (table.split == "random")
                     & table.data.isin(["openllm_mmlu", "openllm_arc"])].coverage90
    text = prose(readme_section("Results"))
    assert f"intervals cover {coverage.min():.3f}-{coverage.max():.3f} of held-out models" in text


def test_the_readme_counts_the_reserved_random_cells_where_disco_is_lowest():
    lowest = cells_where_disco_is_lowest(kept_table(RESERVED)).xs("random", level="split")
    per_data = lowest.groupby(level="data").agg(["sum", "size"])
    large = per_data.drop(index="alpacaeval_60").sum()
    text = prose(readme_section("Results"))
    assert (f"(Winogrande, GSM8K, TruthfulQA) `disco` is the lowest in all {large['size']} cells"
            in text) and large["sum"] == large["size"]
    small = per_data.loc["alpacaeval_60"]
    assert f"(AlpacaEval, 60 models) in {small['sum']} of {small['size']}." in text


def test_the_readme_limits_state_the_coverage_of_gp_irt_with_few_references():
    table = kept_table()
    few = table[(table.data == "mmlu_pro_29") & (table.split == "random")]
    coverage = few.groupby("method").coverage90.agg(["min", "max"]).round(2)
    text = prose(readme_section("Limits"))
    gp_irt, random_gp_irt = coverage.loc["gp_irt"], coverage.loc["random_gp_irt"]
    assert (f"cover {gp_irt['min']:.2f}-{gp_irt['max']:.2f} of held-out models "
            f"(`random_gp_irt`'s {random_gp_irt['min']:.2f}-{random_gp_irt['max']:.2f})") in text


def test_the_readme_limits_state_discos_coverage_beyond_the_references():
    table = kept_table()
    top = table[(table.method == "disco") & (table.split == "top") & (table.k <= 50)]
    coverage = top.groupby("data").coverage90.agg(["min", "max"]).round(2)
    mmlu, arc = coverage.loc["openllm_mmlu"], coverage.loc["openllm_arc"]
    text = prose(readme_section("Limits"))
    assert (f"cover {mmlu['min']:.2f}-{mmlu['max']:.2f} of them at k = 10-50 "
            f"(ARC's: {arc['min']:.2f}-{arc['max']:.2f})") in text
    mmlu_top = table[(table.data == "openllm_mmlu") & (table.split == "top")]
    wide = mmlu_top.pivot_table(index="k", columns="method", values="mae_pp")
    assert wide.index[wide.gp_irt < wide.disco].tolist() == [25, 50, 100]
    assert "gp-IRT is more accurate there at k = 25-100" in text
