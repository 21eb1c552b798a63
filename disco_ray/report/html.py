"""The self-contained HTML page: inline CSS, figures as base64 PNG data URIs, no scripts."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from html import escape

from disco_ray.report.tables import FRONTIER_NOTE

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       margin: 0; background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.subtitle { color: #555; margin: 0 0 18px; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; }
.fact { background: #fff; border: 1px solid #e2e4e8; border-radius: 8px; padding: 10px 12px; }
.fact .value { font-size: 20px; font-weight: 600; }
.fact .label { font-size: 12px; color: #666; text-transform: uppercase; letter-spacing: .03em; }
table { border-collapse: collapse; background: #fff; width: 100%; font-size: 14px; }
th, td { padding: 6px 10px; border-bottom: 1px solid #eceef1; text-align: right; }
th { background: #eef1f5; font-weight: 600; }
td.name, th.name, td.text { text-align: left; }
td.name { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px;
          white-space: nowrap; }
td.muted { color: #888; text-align: left; }
td.text { color: #8a1c1c; font-size: 13px; max-width: 420px; }
tr.ood td { background: #fdf0f0; }
tr.frontier td { background: #fdf8ec; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; }
figure { margin: 0; background: #fff; border: 1px solid #e2e4e8; border-radius: 8px;
         padding: 12px; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { font-size: 13px; color: #555; margin-top: 8px; }
.note { font-size: 13px; color: #555; }
details pre { background: #fff; border: 1px solid #e2e4e8; padding: 12px; overflow: auto;
              font-size: 12px; }
"""


@dataclass(frozen=True)
class ReportFigure:
    """One embedded figure: a title, PNG bytes and a caption."""

    title: str
    png: bytes
    caption: str


def _img(figure: ReportFigure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    return (f'<figure><img alt="{escape(figure.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption><b>{escape(figure.title)}.</b> {escape(figure.caption)}"
            "</figcaption></figure>")


def _cell(value: float | None, spec: str, suffix: str = "") -> str:
    return "&ndash;" if value is None else f"{value:{spec}}{suffix}"


def model_table(rows: list[dict]) -> str:
    """The per-model table: model, predicted, 90% interval, true and error (when some target
    has a true score), anchor accuracy, population check."""
    truth = any(r["true"] is not None for r in rows)
    head = ("<tr><th class='name'>model</th><th>predicted</th><th>90% interval</th>"
            + ("<th>true</th><th>error (pp)</th>" if truth else "")
            + "<th>anchor accuracy</th><th class='name'>population check</th></tr>")
    body = []
    for r in rows:
        if r["out_of_population"]:
            check, style = f"<td class='text'>{escape(r['reason'])}</td>", "ood"
        elif r["at_frontier"]:
            check, style = f"<td class='text'>at the frontier: {escape(FRONTIER_NOTE)}</td>", \
                "frontier"
        else:
            check, style = "<td class='muted'>in population</td>", ""
        body.append(
            f"<tr class='{style}'>"
            f"<td class='name'>{escape(r['model'])}</td>"
            f"<td>{r['predicted']:.1f}%</td><td>[{r['lower']:.1f}, {r['upper']:.1f}]</td>"
            + (f"<td>{_cell(r['true'], '.1f', '%')}</td><td>{_cell(r['error'], '+.1f')}</td>"
               if truth else "")
            + f"<td>{r['anchor_accuracy']:.1f}%</td>{check}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _facts(cards: list[tuple[str, str]]) -> str:
    return "<div class='facts'>" + "".join(
        f"<div class='fact'><div class='value'>{escape(value)}</div>"
        f"<div class='label'>{escape(label)}</div></div>" for label, value in cards) + "</div>"


def _timings(timings: dict[str, float]) -> str:
    rows = "".join(f"<tr><td class='name'>{escape(stage)}</td><td>{seconds:.1f} s</td></tr>"
                   for stage, seconds in timings.items())
    total = sum(timings.values())
    return (f"<table style='width:auto'><tr><th class='name'>stage</th><th>time</th></tr>{rows}"
            f"<tr><th class='name'>total</th><th>{total:.1f} s</th></tr></table>")


def _failed(failed: dict[str, str]) -> str:
    if not failed:
        return "<p class='note'>No model failed.</p>"
    items = "".join(f"<li><code>{escape(name)}</code>: {escape(str(error))}</li>"
                    for name, error in failed.items())
    return f"<p>These models failed and were left out:</p><ul>{items}</ul>"


def render_html(title: str, subtitle: str, cards: list[tuple[str, str]], rows: list[dict],
                notes: list[str], figures: list[ReportFigure], timings: dict[str, float],
                failed: dict[str, str], config: dict) -> str:
    """The whole report page."""
    note_html = "".join(f"<p class='note'>{escape(n)}</p>" for n in notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{CSS}</style></head>
<body><main>
<h1>{escape(title)}</h1><p class="subtitle">{escape(subtitle)}</p>
{_facts(cards)}
<h2>Predictions</h2>
{model_table(rows)}
{note_html}
<h2>Figures</h2>
<div class="figures">{''.join(_img(f) for f in figures)}</div>
<h2>Run</h2>
{_timings(timings)}
{_failed(failed)}
<details><summary>Configuration</summary><pre>{escape(json.dumps(config, indent=2))}</pre>
</details>
</main></body></html>
"""
