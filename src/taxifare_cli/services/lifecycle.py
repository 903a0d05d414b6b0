"""run_lifecycle: one month through the whole life of the model.

Fetch the month, measure Production on it, retrain (from Production when there
is one, as the original's incremental retraining does), compare, and promote
the new version when it is better — or leave it in Staging for a human to
decide. Then price a few of the month's rides with whatever is in Production.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from taxifare_cli.core.model import HyperParams
from taxifare_cli.core.vocabulary import Stage
from taxifare_cli.errors import NotFoundError
from taxifare_cli.ports import (
    SILENT,
    DataStore,
    FileStore,
    ModelRef,
    ModelRegistry,
    Progress,
    Promotion,
    RideSource,
)
from taxifare_cli.services.data import FetchResult, fetch_data
from taxifare_cli.services.evaluation import evaluate_model
from taxifare_cli.services.registry import promote_model
from taxifare_cli.services.training import TrainResult, train_model

SAMPLE_RIDES = 5
Verdict = Literal["promoted", "staged", "kept"]


@dataclass
class LifecycleResult:
    month: str
    fetched: list[FetchResult]
    production_before: int | None
    production_mae: float | None  # the old Production model on this month's val set
    trained: TrainResult
    new_mae: float
    verdict: Verdict
    promotion: Promotion | None
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def improvement(self) -> float | None:
        return None if self.production_mae is None else self.production_mae - self.new_mae

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "fetched": [f.as_dict() for f in self.fetched],
            "production_before": self.production_before,
            "production_mae": self.production_mae,
            "new_version": self.trained.version.version,
            "new_mae": self.new_mae,
            "improvement": self.improvement,
            "verdict": self.verdict,
            "promotion": self.promotion.as_dict() if self.promotion else None,
            "training": self.trained.as_dict(),
            "samples": self.samples,
        }


def decide(
    production_mae: float | None, challenger_mae: float, *, min_improvement: float, auto_promote: bool
) -> Verdict:
    """The champion/challenger rule.

    With no Production model the challenger is promoted. Otherwise it must beat
    Production's MAE on the same month by more than `min_improvement` dollars;
    then it is promoted when `auto_promote`, else staged for a human to decide.
    """
    if production_mae is None:
        return "promoted"
    if production_mae - challenger_mae > min_improvement:
        return "promoted" if auto_promote else "staged"
    return "kept"


def run_lifecycle(
    month: str,
    *,
    local: FileStore,
    source: RideSource,
    store: DataStore,
    registry: ModelRegistry,
    hp: HyperParams,
    chunk_size: int,
    auto_promote: bool,
    min_improvement: float = 0.0,
    progress: Progress = SILENT,
) -> LifecycleResult:
    fetched = fetch_data(month, local, source, progress=progress)
    val_name = f"val_{month}"

    try:
        prod = registry.get(ModelRef(stage="Production"))
    except NotFoundError:
        prod = None
    prod_mae = None
    if prod is not None:
        progress.log(f"measuring Production (version {prod.version}) on {val_name}")
        before = evaluate_model(
            store,
            registry,
            ModelRef(version=prod.version),
            dataset=val_name,
            chunk_size=chunk_size,
            progress=progress,
        )
        prod_mae = before.metrics["mae"]

    trained = train_model(
        store,
        registry,
        train_name=f"train_{month}",
        val_name=val_name,
        chunk_size=chunk_size,
        hp=hp,
        from_stage="Production" if prod is not None else None,
        progress=progress,
    )
    new_mae = trained.metrics["val_mae"]
    verdict = decide(prod_mae, new_mae, min_improvement=min_improvement, auto_promote=auto_promote)
    promotion: Promotion | None = None
    if verdict != "kept":
        stage: Stage = "Production" if verdict == "promoted" else "Staging"
        promotion = promote_model(registry, trained.version.version, stage)

    samples = _price_samples(store, registry, val_name, chunk_size)
    return LifecycleResult(
        month,
        fetched,
        prod.version if prod else None,
        prod_mae,
        trained,
        new_mae,
        verdict,
        promotion,
        samples,
    )


def _price_samples(
    store: DataStore, registry: ModelRegistry, name: str, chunk_size: int
) -> list[dict[str, Any]]:
    """A few of the month's rides priced by Production, beside what they cost."""
    from taxifare_cli.core.cleaning import clean_chunk
    from taxifare_cli.services.prediction import predict_rides

    for chunk in store.read_chunks(name, chunk_size):
        clean, _ = clean_chunk(chunk)
        rides = clean.head(SAMPLE_RIDES)
        if rides.empty:
            continue
        pred = predict_rides(registry, ModelRef(stage="Production"), rides)
        rows: list[Any] = list(rides.itertuples())
        return [
            {
                "pickup_datetime": r.pickup_datetime.strftime("%Y-%m-%d %H:%M"),
                "from": f"{r.pickup_latitude:.4f},{r.pickup_longitude:.4f}",
                "to": f"{r.dropoff_latitude:.4f},{r.dropoff_longitude:.4f}",
                "fare": float(r.fare_amount),
                "predicted": fare,
            }
            for r, fare in zip(rows, pred.fares, strict=True)
        ]
    return []
