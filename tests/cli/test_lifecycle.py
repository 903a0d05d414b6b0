"""The whole local lifecycle through the real command line, on small simulated data."""

from pathlib import Path

from tests.cli.conftest import Cli

from taxifare_cli.services.workflow import decide

RIDE = [
    "--ride",
    "pickup_datetime=2015-01-15 08:30:00 UTC",
    "--ride",
    "pickup_longitude=-73.985",
    "--ride",
    "pickup_latitude=40.758",
    "--ride",
    "dropoff_longitude=-73.965",
    "--ride",
    "dropoff_latitude=40.776",
    "--ride",
    "passenger_count=1",
]


def test_fetch_train_promote_predict_evaluate(cli: Cli, home: Path) -> None:
    r = cli("--json", "data", "fetch", "--size", "1k", "--source", "synthetic")
    assert r.code == 0, r
    fetched = r.json()["datasets"]
    assert [d["name"] for d in fetched] == ["train_1k", "val_1k"]
    assert all(d["held"]["rows"] == 1000 and d["held"]["checksum"].startswith("sha256:") for d in fetched)

    r = cli("--json", "data", "ls")
    assert r.code == 0, r
    assert {d["name"] for d in r.json()["local"]} == {"train_1k", "val_1k"}

    r = cli("model", "train", "--size", "1k", "--epochs", "4", "--batch-size", "64")
    assert r.code == 0, r
    assert r.out.startswith("version 1: val MAE $")
    assert "training on train_1k" in r.err  # logs go to stderr, results to stdout

    r = cli("model", "predict", *RIDE)
    assert r.code == 4 and "no model is in Production" in r.err, r

    r = cli("--json", "model", "promote", "--version", "1", "--stage", "Production", "--dry-run")
    assert r.code == 0 and r.json()["dry_run"] is True, r
    r = cli("--json", "model", "ls")
    assert r.json()[0]["stage"] == "None", "a dry run must change nothing"

    r = cli("model", "promote", "--version", "1", "--stage", "Production")
    assert r.code == 0 and "moved version 1 to Production" in r.out, r

    r = cli("--json", "model", "predict", *RIDE)
    assert r.code == 0, r
    (fare,) = r.json()["fares"]
    assert 3 < fare < 40  # a 1.5 mile Midtown ride

    rides = home / "rides.csv"
    rides.write_text(
        "key,pickup_datetime,pickup_longitude,pickup_latitude,dropoff_longitude,dropoff_latitude,passenger_count\n"
        "a,2015-01-15 08:30:00 UTC,-73.985,40.758,-73.965,40.776,1\n"
        "b,2015-01-15 08:30:00 UTC,0,0,0,0,1\n"
        "c,2015-01-15 09:30:00 UTC,-73.985,40.758,-73.7781,40.6413,2\n"
    )
    r = cli("model", "predict", "--input", str(rides), "--output", str(home / "out" / "preds.csv"))
    assert r.code == 0, r
    lines = (home / "out" / "preds.csv").read_text().splitlines()
    assert lines[0] == "key,fare_prediction" and lines[2] == "b,"  # unpriceable rows keep their key
    assert float(lines[3].split(",")[1]) > float(lines[1].split(",")[1])  # JFK costs more than Midtown
    assert "2 of 3 rides priced" in r.err and "1 outside New York" in r.err

    r = cli("--json", "model", "evaluate", "--stage", "Production", "--size", "1k")
    assert r.code == 0, r
    ev = r.json()
    assert ev["version"] == 1 and ev["dataset"] == "val_1k" and ev["metrics"]["mae"] > 0
    r = cli("--json", "model", "ls")
    (v,) = r.json()
    assert v["stage"] == "Production" and v["evaluations"][0]["dataset"] == "val_1k"
    assert v["data"]["train"]["dataset"] == "train_1k"


def test_workflow_run_promotes_first_model_then_judges_the_next(cli: Cli) -> None:
    env = {"TAXIFARE_DATA__SYNTHETIC_MONTH_ROWS": "3000", "TAXIFARE_TRAINING__HIDDEN_LAYERS": "[16]"}
    r = cli("--json", "workflow", "run", "--month", "jan", "--epochs", "3", "--auto-promote", env=env)
    assert r.code == 0, r
    first = r.json()
    assert (
        first["status"] == "done" and first["verdict"] == "promoted" and first["production_version"] is None
    )

    r = cli("--json", "workflow", "run", "--epochs", "2", "--min-gain", "0", env=env)  # the next month: feb
    assert r.code == 0, r
    second = r.json()
    assert second["month"] == "feb" and second["policy"] == "manual"
    assert second["production_version"] == 1 and second["production_mae"] > 0
    assert second["parent_version"] == 1
    # The verdict is the rule's, applied to the two numbers the run reports (the rule is pinned in unit tests).
    expected = decide(second["production_mae"], second["challenger_mae"], policy="manual", min_gain=0.0)
    assert second["verdict"] == expected
    r = cli("--json", "model", "ls")
    stages = {v["version"]: v["stage"] for v in r.json()}
    assert stages[1] == "Production"
    assert stages[2] == ("Staging" if expected == "staged" else "None")


def test_model_show_tells_the_data_the_stages_and_the_plots(cli: Cli) -> None:
    assert cli("data", "fetch", "--size", "1k", "--source", "synthetic").code == 0
    for _ in range(2):
        assert cli("model", "train", "--size", "1k", "--epochs", "1", "--batch-size", "128").code == 0
    assert cli("model", "promote", "--version", "1", "--stage", "Production").code == 0
    assert cli("model", "promote", "--version", "2", "--stage", "Production").code == 0

    r = cli("--json", "model", "show", "1")
    assert r.code == 0, r
    shown = r.json()
    assert shown["version"] == 1 and shown["stage"] == "Archived"
    assert shown["data"]["train"]["dataset"] == "train_1k" and shown["data"]["train"]["checksum"].startswith(
        "sha256:"
    )
    assert [(h["stage"], h.get("replaced_by")) for h in shown["stage_history"]] == [
        ("Production", None),
        ("Archived", 2),
    ]
    for name in ("learning_curve", "residuals"):
        assert Path(shown["plots"][name]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    r = cli("model", "show", "1")
    assert "replaced by version 2" in r.out and "learning_curve" in r.out
    assert f"{int(shown['metrics']['train_rows']):,}" in r.out
    assert cli("model", "show", "7").code == 4


def test_model_show_writes_counts_in_full_and_other_figures_to_four_digits() -> None:
    from taxifare_cli.cli.model import _metric

    assert _metric(97337.0) == "97,337"  # rows, not 9.734e+04
    assert _metric(20.0) == "20"
    assert _metric(1.6557375) == "1.656"
    assert _metric(0.65) == "0.65"
