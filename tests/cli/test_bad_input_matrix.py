"""The bad-input matrix: each case breaks one thing, runs one command, and checks what a cron job relies on.

For every case: the documented exit code, one `error:` line on stderr (a `hint:` line
may follow; click's own usage errors add their `Usage:`/`Try` lines), no traceback,
nothing on stdout (one JSON document with --json), and the data and registry
directories exactly as they were before the command (paths, sizes, sha256): a
failing command repairs, deletes and half-writes nothing.

The registry and data come from one real training (a session fixture, 1k rows, one
epoch, hidden layers [8]), copied into each test's home, so a case may break them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from _pytest.mark.structures import ParameterSet
from tests.cli.conftest import Cli, Run
from typer.testing import CliRunner

from taxifare_cli.cli.main import app

TRAINING_ENV = {"TAXIFARE_TRAINING__EPOCHS": "1", "TAXIFARE_TRAINING__HIDDEN_LAYERS": "[8]"}
VERSIONS = Path("registry/taxifare/versions")
RIDE = (
    "--ride", "pickup_datetime=2015-01-15 08:30:00 UTC", "--ride", "pickup_longitude=-73.985",
    "--ride", "pickup_latitude=40.758", "--ride", "dropoff_longitude=-73.965", "--ride", "dropoff_latitude=40.776",
)  # fmt: skip
HEADER = (
    "key,fare_amount,pickup_datetime,pickup_longitude,pickup_latitude,"
    "dropoff_longitude,dropoff_latitude,passenger_count\n"
)
GOOD_ROW = "a,7.5,2015-01-15 08:30:00 UTC,-73.985,40.758,-73.965,40.776,1\n"


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/ (train_1k, val_1k) and registry/ (version 1, with checksums), made once by the real commands."""
    root = tmp_path_factory.mktemp("trained")
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TAXIFARE_")}
    env |= {
        "HOME": str(root),
        "TAXIFARE_DATA__LOCAL_PATH": str(root / "data"),
        "TAXIFARE_REGISTRY__LOCAL_PATH": str(root / "registry"),
        "TAXIFARE_WORKFLOW__STATE_PATH": str(root / "workflow"),
        **TRAINING_ENV,
    }
    runner = CliRunner()
    for args in (
        ["data", "fetch", "--size", "1k", "--source", "synthetic"],
        ["model", "train", "--size", "1k"],
    ):
        result = runner.invoke(app, args, env=env, prog_name="taxifare")
        assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def home_with_model(home: Path, trained: Path) -> Path:
    for part in ("data", "registry"):
        shutil.copytree(trained / part, home / part)
    return home


def snapshot(home: Path) -> dict[str, tuple[int, str]]:
    """Every file and folder under data/ and registry/: (size, sha256), folders as (-1, "")."""
    state: dict[str, tuple[int, str]] = {}
    for part in ("data", "registry"):
        for path in sorted((home / part).rglob("*")):
            key = str(path.relative_to(home))
            if path.is_dir():
                state[key] = (-1, "")
            else:
                data = path.read_bytes()
                state[key] = (len(data), hashlib.sha256(data).hexdigest())
    return state


def assert_one_error(r: Run, code: int, needle: str, *, json_mode: bool = False) -> None:
    assert r.exception is None, r
    assert r.code == code, r
    assert "Traceback" not in r.err + r.out, r
    lines = [line for line in r.err.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.lower().startswith("error")]
    assert len(errors) == 1, r
    before, after = lines[: errors[0]], lines[errors[0] + 1 :]
    if code == 2 and lines[errors[0]].startswith("Error:"):  # click's usage error: Usage + Try lines
        assert all(line.startswith(("Usage:", "Try ")) for line in before + after), r
    else:  # progress said before the failure may precede it (`training on ... from local`)
        assert len(after) <= 1 and all(line.startswith("  hint: ") for line in after), r
    assert needle in " ".join(r.err.split()), r  # a long line may be wrapped by the console
    if json_mode:
        doc = json.loads(r.out)
        assert doc["exit_code"] == code and needle.split()[0] in doc["error"], r
    else:
        assert r.out == "", r


# -- ways to break things (each takes the home, returns nothing) -----------------------


def nothing(home: Path) -> None:
    pass


def write(rel: str, content: str | bytes) -> Callable[[Path], None]:
    def setup(home: Path) -> None:
        path = home / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return setup


def truncate(rel: str, keep: int = 100) -> Callable[[Path], None]:
    def setup(home: Path) -> None:
        path = home / rel
        path.write_bytes(path.read_bytes()[:keep])

    return setup


def edit(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def setup(home: Path) -> None:
        path = home / rel
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))

    return setup


def drop_checksums(then: Callable[[Path], None]) -> Callable[[Path], None]:
    """As a version saved before checksums were recorded, then broken by `then`."""

    def setup(home: Path) -> None:
        record = home / VERSIONS / "1" / "version.json"
        payload = json.loads(record.read_text())
        del payload["checksums"]
        record.write_text(json.dumps(payload))
        then(home)

    return setup


def delete(rel: str) -> Callable[[Path], None]:
    def setup(home: Path) -> None:
        (home / rel).unlink()

    return setup


def both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(home: Path) -> None:
        for s in setups:
            s(home)

    return setup


V1 = f"{VERSIONS}/1"
FEATURES = f"{V1}/artifact/features.json"
WEIGHTS = f"{V1}/artifact/weights.npz"
KERAS = f"{V1}/artifact/model.keras"
RECORD = f"{V1}/version.json"
STAGES = "registry/taxifare/stages.json"
IN_PRODUCTION = write(STAGES, '{"Production": 1, "Staging": null, "archived": []}')
RIDES = "key,pickup_datetime,pickup_longitude,pickup_latitude,dropoff_longitude,dropoff_latitude,passenger_count\n"


def ride(**fields: str) -> tuple[str, ...]:
    """RIDE with some fields replaced or added."""
    values = dict(a.split("=", 1) for a in RIDE[1::2])
    values |= fields
    return tuple(x for k, v in values.items() for x in ("--ride", f"{k}={v}"))


Case = tuple[str, tuple[str, ...], dict[str, str], Callable[[Path], None], int, str]
CASES: list[Case | ParameterSet] = [
    # -- usage: exit 2, before anything is read or written
    ("lr-zero", ("model", "train", "--size", "1k", "--learning-rate", "0"), {}, nothing, 2, "0 < x <= 1"),
    ("lr-absurd", ("model", "train", "--size", "1k", "--learning-rate", "1e300"), {}, nothing, 2, "0 < x <= 1"),
    ("lr-negative", ("model", "train", "--size", "1k", "--learning-rate", "-1"), {}, nothing, 2, "0 < x <= 1"),
    ("lr-nan", ("model", "train", "--size", "1k", "--learning-rate", "nan"), {}, nothing, 2, "0 < x <= 1"),
    ("lr-words", ("model", "train", "--learning-rate", "fast"), {}, nothing, 2, "--learning-rate"),
    ("epochs-zero", ("model", "train", "--size", "1k", "--epochs", "0"), {}, nothing, 2, "--epochs"),
    ("batch-zero", ("model", "train", "--size", "1k", "--batch-size", "0"), {}, nothing, 2, "--batch-size"),
    ("patience-zero", ("model", "train", "--patience", "0"), {}, nothing, 2, "--patience"),
    ("from-archived", ("model", "train", "--from-stage", "Archived"), {}, nothing, 2, "--from-stage"),
    ("size-and-month", ("data", "fetch", "--size", "1k", "--month", "jan"), {}, nothing, 2, "not both"),
    ("size-unknown", ("data", "fetch", "--size", "2k", "--source", "synthetic"), {}, nothing, 2, "'2k'"),
    ("predict-nothing", ("model", "predict"), {}, nothing, 2, "give either --ride"),
    ("ride-no-equals", ("model", "predict", "--ride", "pickup_datetime"), {}, nothing, 2, "FIELD=VALUE"),
    ("ride-lacks", ("model", "predict", "--ride", "pickup_longitude=-73.9"), {}, nothing, 2, "the ride lacks"),
    ("version-zero", ("model", "promote", "--version", "0", "--stage", "Production"), {}, nothing, 2, "--version"),
    ("stage-typo", ("model", "promote", "--version", "1", "--stage", "Prod"), {}, nothing, 2, "Invalid value"),
    ("show-words", ("model", "show", "one"), {}, nothing, 2, "Invalid value for 'version'"),
    ("predict-version-neg", ("model", "predict", "--version", "-1", *RIDE), {}, nothing, 2, "--version"),
    ("evaluate-stage", ("model", "evaluate", "--stage", "Bogus"), {}, nothing, 2, "--stage"),
    ("output-device", ("model", "predict", "--input", "rides.csv", "--output", "/dev/full"), {},
     write("rides.csv", RIDES + "a,2015-01-15 08:30:00 UTC,-73.985,40.758,-73.965,40.776,1\n"), 2,
     "not a regular file"),
    ("output-is-input", ("model", "predict", "--input", "rides.csv", "--output", "rides.csv"), {},
     write("rides.csv", RIDES + "a,2015-01-15 08:30:00 UTC,-73.985,40.758,-73.965,40.776,1\n"), 2,
     "is the input file"),
    ("output-directory", ("model", "predict", "--input", "rides.csv", "--output", "data"), {},
     write("rides.csv", RIDES + "a,2015-01-15 08:30:00 UTC,-73.985,40.758,-73.965,40.776,1\n"), 2,
     "is a directory"),
    ("no-such-command", ("model", "trian"), {}, nothing, 2, "No such command"),
    # -- configuration: exit 3, naming the setting and where it came from
    ("list-not-json", ("model", "ls"), {"TAXIFARE_TRAINING__HIDDEN_LAYERS": "8,4"}, nothing, 3,
     "training.hidden_layers = '8,4' from env TAXIFARE_TRAINING__HIDDEN_LAYERS"),
    ("list-half-json", ("config", "show"), {"TAXIFARE_TRAINING__HIDDEN_LAYERS": "[8"}, nothing, 3,
     "training.hidden_layers"),
    ("mlflow-not-url", ("model", "ls"), {"MLFLOW_TRACKING_URI": "not a url"}, nothing, 3,
     "mlflow.tracking_uri = 'not a url' from env MLFLOW_TRACKING_URI: must be a URL"),
    ("mlflow-no-scheme", ("model", "ls"), {"TAXIFARE_MLFLOW__TRACKING_URI": "localhost:5000"}, nothing, 3,
     "must be a URL"),
    ("mlflow-env-invalid", ("model", "ls", "--target", "mlflow"),
     {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0.2"}, nothing, 3,
     "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"),
    ("toml-unknown-section", ("--config", "t.toml", "config", "show"), {}, write("t.toml", "[bogus]\nx = 1\n"), 3,
     "bogus = {'x': 1} from file"),
    ("toml-unknown-key", ("--config", "t.toml", "config", "show"), {}, write("t.toml", "[data]\nsizee = '1k'\n"), 3,
     "data.sizee = '1k' from file"),
    ("toml-syntax", ("--config", "t.toml", "model", "ls"), {}, write("t.toml", "[data\n"), 3, "is not valid TOML"),
    ("toml-not-utf8", ("--config", "t.toml", "config", "show"), {}, write("t.toml", b'[data]\nsize = "\xff"\n'), 3,
     "is not UTF-8"),
    ("config-directory", ("--config", "data", "config", "show"), {}, nothing, 3, "is a directory"),
    ("config-missing", ("--config", "nope.toml", "config", "show"), {}, nothing, 3, "does not exist"),
    ("config-env-missing", ("model", "ls"), {"TAXIFARE_CONFIG": "nope.toml"}, nothing, 3, "TAXIFARE_CONFIG"),
    ("chunk-too-small", ("model", "ls"), {"CHUNK_SIZE": "5"}, nothing, 3, "data.chunk_size"),
    ("lr-setting-zero", ("model", "ls"), {"TAXIFARE_TRAINING__LEARNING_RATE": "0"}, nothing, 3,
     "training.learning_rate"),
    ("lr-setting-absurd", ("model", "train", "--size", "1k"), {"TAXIFARE_TRAINING__LEARNING_RATE": "1e300"},
     nothing, 3, "training.learning_rate"),
    ("min-rows-zero", ("model", "ls"), {"TAXIFARE_TRAINING__MIN_ROWS": "0"}, nothing, 3, "training.min_rows"),
    ("remote-url-no-name", ("data", "fetch", "--size", "1k"), {"TAXIFARE_DATA__REMOTE_URL": "http://h/x.csv"},
     nothing, 3, "must contain {name}"),
    ("registry-backend", ("model", "ls"), {"MODEL_TARGET": "s3"}, nothing, 3, "registry.backend"),
    ("workflow-month", ("model", "ls"), {"TAXIFARE_WORKFLOW__MONTH": "jul"}, nothing, 3, "workflow.month"),
    ("data-dir-is-file", ("data", "fetch", "--size", "1k", "--source", "synthetic"),
     {"TAXIFARE_DATA__LOCAL_PATH": "blocked/data"}, write("blocked", "a file"), 3, "not writable"),
    # -- a damaged or tampered registry: exit 4 naming the file, the other versions untouched
    ("features-garbage", ("model", "predict", "--version", "1", *RIDE), {}, write(FEATURES, "garbage"), 4,
     "artifact/features.json does not match the checksum"),
    ("features-renamed", ("model", "predict", "--version", "1", *RIDE), {}, edit(FEATURES, '"grid_km"', '"grid_mi"'),
     4, "artifact/features.json does not match the checksum"),
    ("weights-truncated", ("model", "predict", "--version", "1", *RIDE), {}, truncate(WEIGHTS), 4,
     "artifact/weights.npz does not match the checksum"),
    ("keras-truncated", ("model", "predict", "--version", "1", *RIDE), {}, truncate(KERAS), 4,
     "artifact/model.keras does not match the checksum"),
    ("keras-missing", ("model", "predict", "--version", "1", *RIDE), {}, delete(KERAS), 4,
     "artifact/model.keras is missing"),
    ("artifact-added", ("model", "predict", "--version", "1", *RIDE), {}, write(f"{V1}/artifact/x.py", "evil"), 4,
     "artifact/x.py was added after"),
    ("old-features-garbage", ("model", "predict", "--version", "1", *RIDE), {},
     drop_checksums(write(FEATURES, "garbage")), 4, "artifact/features.json is not valid JSON"),
    ("old-features-list", ("model", "predict", "--version", "1", *RIDE), {},
     drop_checksums(write(FEATURES, "[1, 2]")), 4, "artifact/features.json is not a JSON object"),
    ("old-weights-truncated", ("model", "predict", "--version", "1", *RIDE), {},
     drop_checksums(truncate(WEIGHTS)), 4, "artifact/weights.npz is truncated"),
    ("old-keras-truncated", ("model", "predict", "--version", "1", *RIDE), {},
     drop_checksums(truncate(KERAS, 2000)), 4, "artifact/model.keras is truncated"),
    ("record-garbage", ("model", "predict", "--version", "1", *RIDE), {}, write(RECORD, "{"), 4,
     "versions/1/version.json is unreadable"),
    ("record-not-utf8", ("model", "show", "1"), {}, write(RECORD, b"\xff\xfe"), 4,
     "versions/1/version.json is unreadable"),
    ("record-no-created", ("model", "show", "1"), {}, write(RECORD, '{"version": 1}'), 4, "no 'created_at' field"),
    ("record-garbage-promote", ("model", "promote", "--version", "1", "--stage", "Staging"), {},
     write(RECORD, "{"), 4, "version.json is unreadable"),
    ("empty-version-folder", ("model", "predict", "--version", "2", *RIDE), {},
     lambda home: (home / VERSIONS / "2").mkdir(), 4, "model version 2 is incomplete"),
    ("stages-garbage-ls", ("model", "ls"), {}, write(STAGES, "xx"), 4, "stages.json is not valid JSON"),
    ("stages-garbage-promote", ("model", "promote", "--version", "1", "--stage", "Staging"), {},
     write(STAGES, "xx"), 4, "move it aside"),
    ("stages-wrong-shape", ("model", "predict", "--stage", "production", *RIDE), {}, write(STAGES, "[]"), 4,
     "stages.json is not {"),
    ("stages-wrong-type", ("model", "ls"), {}, write(STAGES, '{"Production": "one"}'), 4, "stages.json is not {"),
    ("tampered-production-evaluate", ("model", "evaluate", "--stage", "production", "--size", "1k"), {},
     both(IN_PRODUCTION, write(FEATURES, "{}")), 4, "does not match the checksum"),
    ("tampered-parent-train", ("model", "train", "--size", "1k", "--from-stage", "production"), TRAINING_ENV,
     both(IN_PRODUCTION, truncate(KERAS)), 4, "model.keras does not match the checksum"),
    ("no-production", ("model", "predict", "--stage", "production", *RIDE), {}, nothing, 4,
     "no model is in Production"),
    ("unknown-version", ("model", "promote", "--version", "9", "--stage", "Production"), {}, nothing, 4,
     "version 9 does not exist"),
    ("show-unknown", ("model", "show", "9"), {}, nothing, 4, "version 9 does not exist"),
    # -- bad data: exit 4, nothing registered
    ("not-fetched", ("model", "train", "--size", "10k"), {}, nothing, 4, "train_10k is not in"),
    ("evaluate-not-fetched", ("model", "evaluate", "--version", "1", "--size", "10k"), {}, nothing, 4,
     "val_10k is not in"),
    ("one-row", ("model", "train", "--size", "1k"), TRAINING_ENV, write("data/train_1k.csv", HEADER + GOOD_ROW), 4,
     "fewer than the 100 needed to train"),
    ("below-min-rows", ("model", "train", "--size", "1k"), TRAINING_ENV,
     write("data/train_1k.csv", HEADER + "".join(
         f"k{i},7.5,2015-01-15 08:{i:02d}:00 UTC,-73.985,40.758,-73.965,40.776,1\n" for i in range(50))),
     4, "fewer than the 100 needed"),
    ("no-usable-rows", ("model", "train", "--size", "1k"), {}, write("data/train_1k.csv", HEADER + "x,y\n" * 3), 4,
     "no usable rows"),
    ("csv-not-utf8", ("model", "train", "--size", "1k"), {},
     write("data/train_1k.csv", (HEADER + GOOD_ROW).encode() + b"b\xff,7.5,2015-01-15 08:30:00 UTC,1,2,3,4,1\n"),
     4, "line 3 is not UTF-8"),
    pytest.param(  # a bad byte in a line of the wrong length: pyarrow could not name it
        ("model", "predict", "--version", "1", "--input", "rides.csv"), {},
        write("rides.csv", RIDES.encode() + b"a,2015-01-15 08:30:00 UTC,-73.98\x80\n"), 4, "line 2 is not UTF-8",
        id="csv-not-utf8-short-line",
    ),
    ("csv-missing-columns", ("model", "train", "--size", "1k"), {},
     write("data/train_1k.csv", "key,fare_amount\nx,1\n"), 4, "lacks column(s)"),
    ("input-directory", ("model", "predict", "--version", "1", "--input", "data"), {}, nothing, 4, "is a directory"),
    ("input-missing", ("model", "predict", "--version", "1", "--input", "nope.csv"), {}, nothing, 4,
     "does not exist"),
    ("ride-in-paris", ("model", "predict", "--version", "1", *ride(pickup_longitude="2.35", pickup_latitude="48.85")),
     {}, nothing, 4, "outside New York"),
    ("ride-time-words", ("model", "predict", "--version", "1", *ride(pickup_datetime="soon")), {}, nothing, 4,
     "is not a time"),
    # -- an external service: exit 5
    ("remote-unreachable", ("data", "fetch", "--size", "1k"),
     {"TAXIFARE_DATA__REMOTE_URL": "http://127.0.0.1:9/{name}.csv", "TAXIFARE_DATA__LOCAL_PATH": "elsewhere"},
     nothing, 5, "cannot reach"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "env", "setup", "code", "needle"),
    [case if isinstance(case, ParameterSet) else pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input(
    cli: Cli,
    home_with_model: Path,
    args: tuple[str, ...],
    env: dict[str, str],
    setup: Callable[[Path], None],
    code: int,
    needle: str,
) -> None:
    setup(home_with_model)
    before = snapshot(home_with_model)
    r = cli(*args, env=env)
    assert_one_error(r, code, needle)
    assert snapshot(home_with_model) == before, "a failing command changed the data or the registry"


@pytest.mark.parametrize(
    ("args", "setup", "code", "needle"),
    [
        pytest.param(("model", "show", "9"), nothing, 4, "model version 9", id="json-unknown-version"),
        pytest.param(("model", "ls"), write(STAGES, "xx"), 4, "the registry's stage file", id="json-stages"),
        pytest.param(("model", "predict", "--version", "1", *RIDE), write(FEATURES, "x"), 4, "model version 1",
                     id="json-tampered"),
    ],
)  # fmt: skip
def test_bad_input_with_json_still_prints_one_document(
    cli: Cli,
    home_with_model: Path,
    args: tuple[str, ...],
    setup: Callable[[Path], None],
    code: int,
    needle: str,
) -> None:
    setup(home_with_model)
    before = snapshot(home_with_model)
    assert_one_error(cli("--json", *args), code, needle, json_mode=True)
    assert snapshot(home_with_model) == before


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(write(RECORD, "{"), id="version.json garbage"),
        pytest.param(
            lambda home: shutil.rmtree(home / V1 / "artifact") or (home / RECORD).unlink(), id="emptied"
        ),
    ],
)
def test_one_damaged_version_hides_no_other_in_model_ls(
    cli: Cli, home_with_model: Path, damage: Callable[[Path], None]
) -> None:
    shutil.copytree(home_with_model / V1, home_with_model / VERSIONS / "2")
    edit(f"{VERSIONS}/2/version.json", '"version": 1', '"version": 2')(home_with_model)
    damage(home_with_model)
    before = snapshot(home_with_model)
    r = cli("--json", "model", "ls")
    assert r.code == 0, r
    listed = {v["version"]: v for v in r.json()}
    assert sorted(listed) == [1, 2]
    assert "versions/1/version.json" in listed[1]["problem"]
    assert "problem" not in listed[2] and listed[2]["metrics"]["val_mae"] > 0
    assert cli("model", "show", "2").code == 0  # the good one still loads
    assert snapshot(home_with_model) == before


def test_a_file_url_as_the_remote_works(cli: Cli, home_with_model: Path) -> None:
    served = home_with_model / "served"
    shutil.copytree(home_with_model / "data", served)
    env = {
        "TAXIFARE_DATA__REMOTE_URL": f"{served.as_uri()}/{{name}}.csv",
        "TAXIFARE_DATA__LOCAL_PATH": "fetched",
    }
    r = cli("data", "fetch", "--size", "1k", env=env)
    assert r.code == 0, r
    assert (home_with_model / "fetched" / "train_1k.csv").read_bytes() == (
        served / "train_1k.csv"
    ).read_bytes()
