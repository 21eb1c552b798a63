"""Reports of a finished run (layout: configs/README.md).

`write_report(output_dir)` writes a self-contained report.html (figures embedded as PNG data
URIs, inline CSS, no scripts) and report.json; `summary_table(output_dir)` is the plain-text
table the CLI prints after a run.
"""

from disco_ray.report.build import write_report
from disco_ray.report.tables import summary_table

__all__ = ["summary_table", "write_report"]
