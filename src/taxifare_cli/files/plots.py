"""The pictures taxifare draws: a version's learning curve and residuals, MAE over the months.

Registries share the first two, so that every backend shows the same pictures.
matplotlib is imported on first use; a bare Figure is drawn, no pyplot: no GUI
backend, no global state. Files are written atomically.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxifare_cli.errors import ConfigError
from taxifare_cli.files.atomic import atomic_path

if TYPE_CHECKING:
    from taxifare_cli.ports import TrainingRecord

DPI = 100


def draw_plots(record: TrainingRecord, directory: Path) -> list[Path]:
    """learning_curve.png and residuals.png of a training run, drawn in `directory` (those it can)."""
    drawn = [learning_curve_png(record.history, directory / "learning_curve.png")]
    if record.val_predictions is not None:
        drawn.append(residuals_png(*record.val_predictions, directory / "residuals.png"))
    return [p for p in drawn if p is not None]


def learning_curve_png(history: dict[str, list[float]], path: Path) -> Path | None:
    """Loss and MAE per epoch, training and validation; None if there is no history."""
    if not any(history.get(k) for k in ("loss", "mae", "val_loss", "val_mae")):
        return None
    fig = _figure(10, 4)
    axes = fig.subplots(1, 2)
    for ax, key, label in zip(axes, ("loss", "mae"), ("Huber loss", "mean absolute error ($)"), strict=True):
        for prefix, style, name in (("", "-", "training"), ("val_", "--", "validation")):
            values = history.get(prefix + key) or []
            if values:
                ax.plot(range(1, len(values) + 1), values, style, marker=".", label=name)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    val_mae = [v for v in history.get("val_mae", []) if _is_number(v)]
    if val_mae:
        best = history["val_mae"].index(min(val_mae)) + 1
        axes[1].axvline(best, color="grey", linestyle=":", label=f"best epoch {best}")
        axes[1].legend()
    fig.suptitle("Learning curve")
    fig.savefig(path, dpi=DPI)
    return path


def residuals_png(y_true: Iterable[float], y_pred: Iterable[float], path: Path) -> Path | None:
    """Residual (predicted - true) against predicted fare, and their histogram.

    None if there is nothing to plot (no rides, or not one prediction per ride).
    """
    import numpy as np

    true = np.asarray(list(y_true), dtype=np.float64)
    pred = np.asarray(list(y_pred), dtype=np.float64)
    if true.size == 0 or true.shape != pred.shape:
        return None
    resid = pred - true
    fig = _figure(10, 4)
    left, right = fig.subplots(1, 2)
    left.scatter(pred, resid, s=4, alpha=0.3)
    left.axhline(0, color="grey", linewidth=1)
    left.set_xlabel("predicted fare ($)")
    left.set_ylabel("predicted - true ($)")
    left.grid(alpha=0.3)
    right.hist(np.clip(resid, -30, 30), bins=60)
    right.set_xlabel("predicted - true ($), clipped to ±30")
    right.set_ylabel("rides")
    right.grid(alpha=0.3)
    fig.suptitle(f"Residuals on {true.size} validation rides: MAE ${np.abs(resid).mean():.2f}")
    fig.savefig(path, dpi=DPI)
    return path


def mae_over_months_png(
    months: Sequence[str],
    production: Sequence[float | None],
    challenger: Sequence[float | None],
    verdicts: Sequence[str | None],
    path: Path,
) -> Path:
    """Production's and each challenger's MAE on each new month, the decisions marked."""
    fig = _figure(9, 4.5)
    ax = fig.subplots()
    x = list(range(len(months)))
    nan = float("nan")
    ax.plot(x, [nan if v is None else v for v in production], "o-", label="Production on the new month")
    ax.plot(x, [nan if v is None else v for v in challenger], "s--", label="challenger (retrained on it)")
    for i, verdict in enumerate(verdicts):
        if verdict and challenger[i] is not None:
            ax.annotate(verdict, (i, challenger[i]), textcoords="offset points", xytext=(0, 8), ha="center")
    ax.set_xticks(x, [m.capitalize() for m in months])
    ax.set_xlabel("month of 2015")
    ax.set_ylabel("validation MAE ($)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.suptitle("Champion and challengers, month after month")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    return path


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # a dependency of taxifare itself; missing only in a broken install
        raise ConfigError("matplotlib is not installed", hint="pip install --force-reinstall taxifare") from e
    return Figure(figsize=(width, height), layout="constrained")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
