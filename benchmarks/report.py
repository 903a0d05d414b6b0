"""results.json -> BENCHMARKS.md (a table of every figure beside its target) and the growth plot."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RESULTS = "results.json"
PLOT = "growth.png"
ORDER = (
    "startup",
    "preprocessing",
    "memory",
    "pipeline",
    "prediction",
    "one_ride",
    "quality",
    "quality_1m",
    "workflow",
    "serving",
)


def load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"runs": [], "records": []}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def annotate(record: dict[str, Any]) -> dict[str, Any]:
    """The record with today's diagnosis: its note while a target is missed, its remark always."""
    from benchmarks.notes import NOTES, REMARKS

    note = NOTES.get(record["name"], NOTES.get(record["name"].split("_")[0]))  # quality_1m: quality's
    return {**record, "note": None if record["met"] else note, "remark": REMARKS.get(record["name"])}


def merge(
    previous: dict[str, Any], records: list[dict[str, Any]], run_meta: dict[str, Any]
) -> dict[str, Any]:
    """New records replace those of the same name; others are kept with their own dates."""
    fresh = {r["name"] for r in records}
    kept = [annotate(r) for r in previous.get("records", []) if r["name"] not in fresh]
    records = [annotate(r) for r in records]
    merged = sorted(
        kept + records, key=lambda r: ORDER.index(r["name"]) if r["name"] in ORDER else len(ORDER)
    )
    return {"runs": [*previous.get("runs", [])[-9:], run_meta], "records": merged}


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=float) + "\n")
    tmp.replace(path)


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if unit == "rows/s":
        return f"{value:,.0f} rows/s"
    if unit == "req/s":
        return f"{value:,.0f} req/s"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    if unit == "$":
        return f"${value:.3f}"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    return f"{value:.3g}"


def _rows_label(rows: int) -> str:
    return f"{rows / 1e6:g}M" if rows >= 1_000_000 else f"{rows / 1e3:g}k"


def plot_growth(record: dict[str, Any] | None, path: Path, max_ratio: float) -> bool:
    """Seconds and peak RSS of `model train --epochs 1` against training rows; False when
    there is nothing to plot.

    Left: preparing the data (read, clean, features) and the one epoch, with a dotted line
    through the origin and the largest run's point (what linear growth looks like). Right:
    peak RSS with the target, `max_ratio` times the smallest run's.
    """
    if record is None or not record.get("details", {}).get("points"):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted(record["details"]["points"], key=lambda p: p["rows"])
    rows = [p["rows"] for p in points]
    peak = [p["peak_rss_mib"] for p in points]
    fig, (secs, mem) = plt.subplots(1, 2, figsize=(10.0, 4.0), dpi=110)
    for key, label, colour in (
        ("prepare_s", "data: read, clean, features", "tab:blue"),
        ("epoch_s", "one training epoch", "tab:orange"),
    ):
        values = [p.get(key) for p in points]
        if any(v is None for v in values):
            continue
        secs.plot(rows, values, "o-", color=colour, label=label)
        secs.plot([0, rows[-1]], [0, values[-1]], ":", color=colour, linewidth=1)
        for r, v in zip(rows, values, strict=True):
            secs.annotate(
                f"{v:.1f}", (r, v), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8
            )
    for ax in (secs, mem):
        ax.set_xticks(rows, [_rows_label(r) for r in rows])
    secs.set_xlabel("training rows")
    secs.set_ylabel("seconds")
    secs.set_xlim(0, rows[-1] * 1.08)
    secs.set_ylim(0, None)
    secs.set_title("Time grows linearly (dotted: proportional)")
    secs.grid(True, alpha=0.3)
    secs.legend(loc="upper left", fontsize=8)

    mem.plot(rows, peak, "o-", color="tab:green", label="peak RSS")
    target = peak[0] * max_ratio
    mem.axhline(
        target, color="tab:red", linestyle="--", linewidth=1, label=f"target: {max_ratio:g} × the smallest"
    )
    for r, p in zip(rows, peak, strict=True):
        mem.annotate(f"{p:,.0f}", (r, p), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    mem.set_xlabel("training rows")
    mem.set_ylabel("peak RSS (MiB)")
    mem.set_xlim(0, rows[-1] * 1.08)
    mem.set_ylim(0, max(max(peak), target) * 1.25)
    mem.set_title(f"Memory stays flat (chunk size {record['details'].get('chunk_size', '?'):,})")
    mem.grid(True, alpha=0.3)
    mem.legend(loc="lower right", fontsize=8)
    fig.suptitle("taxifare model train --epochs 1", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def render(data: dict[str, Any], md_path: Path, plot_path: Path | None) -> str:
    records = data["records"]
    last = data["runs"][-1] if data["runs"] else {}
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m benchmarks` (`nox -s bench`) from "
        f"`{_rel(md_path, Path(last.get('results', RESULTS)))}`; do not edit by hand.",
        "Each figure is a median over repeats, beside a reference measured in the same run on the same",
        "machine (shared and noisy: the ratios are what count). Ratio = figure / reference figure.",
        "",
    ]
    if last:
        lines += [
            f"Last run: {last.get('date')} · mode **{last.get('mode')}** · "
            f"{last.get('wall_s', 0):.0f} s wall · {last.get('cpu_count')} CPUs · "
            f"Python {last.get('python')} · TensorFlow {last.get('tensorflow')} "
            f"· measurements: {', '.join(last.get('measured', []))}",
            "",
        ]
    lines += [
        "| # | measurement | figure | reference | reference figure | ratio | target | met | command |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(records, 1):
        for j, c in enumerate(r["comparisons"]):
            first = j == 0
            # Four digits: a ratio just past its target (0.7001 against 0.7) must not read as met.
            ratio = "—" if c["ratio"] is None else f"{c['ratio']:.4g}"
            lines.append(
                "| "
                + " | ".join(
                    [
                        str(i) if first else "",
                        r["title"] if first else "″",
                        _fmt(r["value"], r["unit"]) if first else "″",
                        c["reference"] or "(absolute)",
                        _fmt(c["reference_value"], r["unit"]),
                        ratio,
                        c["target"],
                        "✅" if c["met"] else "❌",
                        f"`{r['command']}`" if first else "″",
                    ]
                )
                + " |"
            )
    lines.append("")
    if plot_path is not None:
        lines += [f"![seconds and peak memory of model train against rows]({_rel(md_path, plot_path)})", ""]
    lines += [
        "## Running",
        "",
        "- `nox -s bench` (`python -m benchmarks`): the default measurements (startup, preprocessing,",
        "  memory, pipeline, prediction, one_ride, quality, workflow), about 7 minutes on 2 cores.",
        "  `--quick`: tiny sizes in under a minute (the test suite runs it), written under",
        "  `benchmarks/.work/quick` or `--output DIR`. `--only NAME`: some of them, merged into the",
        "  results already there. `--only quality_1m`: the quality at 1M rows (about 14 minutes), and",
        "  `--only serving`: `taxifare model serve` beside `mlflow models serve` (about 5 minutes), are",
        "  not in the default run. `--only cloud`: hands over to `benchmarks/cloud_io.py`. `--report-only`:",
        "  rewrite this file from `results.json`. Data and models are kept in `benchmarks/.work/`.",
        "- Every measured Python process reads compiled bytecode from `benchmarks/.work/pycache`, as a",
        "  pip install would give it: this machine sets PYTHONDONTWRITEBYTECODE=1 and uv does not compile",
        "  at install, so otherwise each process compiles TensorFlow from source (16-22 s, not 5-8 s).",
        "",
        "## What was measured",
        "",
    ]
    for r in records:
        dated = f" ({r['date']}, {'quick' if r.get('quick') else 'full'})"
        lines.append(f"- **{r['name']}**{dated}: {r['measured']}.")
        summary = _details_line(r)
        if summary:
            lines.append(f"  {summary}")
        if r.get("remark"):
            lines.append(f"  {r['remark']}")
    misses = [r for r in records if not r["met"]]
    lines += ["", "## Targets missed", ""]
    if not misses:
        lines.append("None.")
    for r in misses:
        lines.append(f"- **{r['name']}**: {r.get('note') or 'not yet diagnosed.'}")
    lines.append("")
    text = "\n".join(lines)
    md_path.write_text(text)
    return text


def _details_line(r: dict[str, Any]) -> str:
    d = r.get("details", {})
    name = r["name"]
    if name == "startup" and "no_bytecode_cache_s" in d:
        return (
            f"With no bytecode cache at all (PYTHONDONTWRITEBYTECODE=1, nothing compiled): "
            f"{d['no_bytecode_cache_s']:.3f} s against {d['no_bytecode_cache_reference_s']:.3f} s."
        )
    if name == "memory":
        pts = ", ".join(
            f"{p['rows']:,} rows: {p['peak_rss_mib']:,.0f} MiB "
            f"(polled {p['polled_peak_mib']:,.0f}), {p['wall_s']:.0f} s"
            for p in d.get("points", [])
        )
        return f"Peak RSS by rows: {pts}."
    if name == "preprocessing":
        st = d.get("product_stages_s", {})
        return (
            f"{d.get('rows_kept', 0):,} rows kept; "
            f"{d.get('speedup_vs_original', 0):.1f}× faster than the original; "
            f"product stages: read {st.get('read_s', 0):.2f} s, clean {st.get('clean_s', 0):.2f} s, "
            f"features {st.get('features_s', 0):.2f} s."
        )
    if name == "prediction":
        fixed = d.get("fixed_cost_s")
        return (
            f"{d.get('rows_written', 0):,} rows written; "
            "a one-ride file through the same command (start-up, model load): "
            f"{fixed:.1f} s."
            if fixed
            else f"{d.get('rows_written', 0):,} rows written."
        )
    if name == "serving" and d.get("figures"):
        f = d["figures"]

        def shape(key: str) -> str:
            x = f.get(key, {})
            return f"{x.get('rps', 0):,.1f} req/s, p50 {x.get('p50_ms', 0):.0f} ms, p99 {x.get('p99_ms', 0):.0f} ms"

        return (
            f"One ride: taxifare p50 {f['taxifare_one']['p50_ms']:.1f} ms, mlflow p50 "
            f"{f['mlflow_one']['p50_ms']:.1f} ms. POST of {d.get('batch_rides', 1000):,} rides: taxifare "
            f"{shape('taxifare_batch')}; mlflow {shape('mlflow_batch')}."
        )
    if name == "one_ride" and d.get("samples_s"):
        return (
            f"fare ${d.get('fare', 0):.2f}; runs {[round(x, 2) for x in d['samples_s']]} s, "
            f"import pandas {[round(x, 2) for x in d.get('reference_samples_s', [])]} s."
        )
    if name.startswith("quality"):
        extra = d.get("original_network_on_product_features_mae")
        return (
            f"{d.get('train_rows', 0):,} train / {d.get('val_rows', 0):,} val rows; "
            f"product {d.get('product_epochs_run')} "
            f"epochs (best {d.get('product_best_epoch')}), original {d.get('original_epochs_run')} epochs; "
            f"predicting the mean: ${d.get('mae_of_predicting_the_mean', 0):.2f}"
            + (f"; original network on the product's features: ${extra:.3f}" if extra else "")
            + (
                f"; HistGradientBoosting: {d['boosting_iterations']} iterations "
                f"on {d.get('boosting_features')} features"
                if d.get("boosting_iterations") is not None
                else ""
            )
            + "."
        )
    if name == "pipeline":
        return (
            f"{d.get('rows', 0):,} rows; epoch seconds streamed "
            f"{[round(x, 1) for x in d.get('epoch_seconds', [])]}, "
            f"in memory {[round(x, 1) for x in d.get('reference_epoch_seconds', [])]} (first is warm-up); "
            f"paired ratios {[round(x, 2) for x in d.get('paired_ratios', [])]}."
        )
    return ""


def _rel(md_path: Path, target: Path) -> str:
    return os.path.relpath(target.resolve(), md_path.resolve().parent)
