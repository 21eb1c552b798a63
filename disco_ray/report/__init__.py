"""Reports of a finished run (layout: configs/README.md).

`write_report(output_dir)` writes a self-contained report.html (figures embedded as PNG data
URIs, inline CSS, no scripts) and report.json; `summary_table(output_dir)` is the plain-text
table the CLI prints after a run. `write_report` is imported on first use, so that the text
tables (`disco_ray.report.tables`) do not load matplotlib.
"""

from disco_ray.report.tables import summary_table

__all__ = ["summary_table", "write_report"]


def __getattr__(name: str):
    if name == "write_report":
        from disco_ray.report.build import write_report

        return write_report
    raise AttributeError(f"module 'disco_ray.report' has no attribute {name!r}")
