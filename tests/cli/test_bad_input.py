"""What a user sees when something is wrong: one line, a documented exit code, no traceback."""

from pathlib import Path

import pytest
from tests.cli.conftest import Cli, Run


def one_clear_error(r: Run, code: int, *needles: str) -> None:
    assert r.code == code, r
    assert "Traceback" not in r.err, r
    assert r.out == "", "errors must not write to stdout"
    for n in needles:
        assert n in r.err, r


@pytest.mark.parametrize(("args", "needle"), [
    (["data", "fetch", "--size", "2k", "--source", "synthetic"], "unknown size or month '2k'"),
    (["data", "fetch", "--month", "jul", "--source", "synthetic"], "unknown size or month 'jul'"),
    (["data", "fetch", "--size", "1k", "--month", "jan"], "not both"),
    (["model", "predict"], "give either --ride"),
    (["model", "promote", "--version", "1", "--stage", "Prod"], "Invalid value"),
    (["model", "trian"], "No such command"),
])
def test_usage_errors_exit_2(cli: Cli, args: list[str], needle: str) -> None:
    one_clear_error(cli(*args), 2, needle)


def test_missing_config_file_exits_3(cli: Cli) -> None:
    one_clear_error(cli("--config", "nope.toml", "config", "show"), 3, "nope.toml does not exist")


def test_invalid_setting_exits_3_and_check_lists_every_problem(cli: Cli) -> None:
    env = {"CHUNK_SIZE": "5", "TAXIFARE_TRAINING__EPOCHS": "zero"}
    one_clear_error(cli("model", "ls", env=env), 3, "data.chunk_size", "taxifare config check")
    r = cli("config", "check", env=env)
    assert r.code == 3
    assert r.err.count("error:") == 2


def test_unwritable_data_directory_exits_3(cli: Cli, home: Path) -> None:
    (home / "blocked").write_text("a file where the directory should be")
    r = cli("data", "fetch", "--size", "1k", "--source", "synthetic",
            env={"TAXIFARE_DATA__LOCAL_PATH": str(home / "blocked" / "data")})
    one_clear_error(r, 3, "not writable", "data.local_path")


def test_training_on_data_not_fetched_exits_4_and_says_how(cli: Cli) -> None:
    one_clear_error(cli("model", "train", "--size", "10k"), 4, "train_10k is not in", "taxifare data fetch")


def test_malformed_csv_and_missing_columns_exit_4(cli: Cli, home: Path) -> None:
    data = home / "data"
    data.mkdir()
    (data / "train_1k.csv").write_text("key,fare_amount,pickup_datetime\nx,1,2015-01-01 00:00:00 UTC\n")
    (data / "val_1k.csv").write_text("key,fare_amount,pickup_datetime\nx,1,2015-01-01 00:00:00 UTC\n")
    one_clear_error(cli("model", "train", "--size", "1k"), 4, "lacks column(s) pickup_longitude")

    header = "key,fare_amount,pickup_datetime,pickup_longitude,pickup_latitude,dropoff_longitude,dropoff_latitude,passenger_count\n"
    (data / "train_1k.csv").write_text(header + "garbage,line\n" * 5 + "x,abc,never,1,2,3,4,5\n")
    one_clear_error(cli("model", "train", "--size", "1k"), 4, "no usable rows", "5 malformed line")


def test_ride_outside_new_york_exits_4(cli: Cli) -> None:
    cli("data", "fetch", "--size", "1k", "--source", "synthetic")
    assert cli("model", "train", "--size", "1k", "--epochs", "1").code == 0
    assert cli("model", "promote", "--version", "1", "--stage", "Production").code == 0
    r = cli("model", "predict", "--ride", "pickup_datetime=2015-01-15 08:30:00 UTC",
            "--ride", "pickup_longitude=2.35", "--ride", "pickup_latitude=48.85",
            "--ride", "dropoff_longitude=2.29", "--ride", "dropoff_latitude=48.86")
    one_clear_error(r, 4, "outside New York")
    r = cli("model", "predict", "--ride", "pickup_datetime=soon", "--ride", "pickup_longitude=-73.9",
            "--ride", "pickup_latitude=40.7", "--ride", "dropoff_longitude=-73.9", "--ride", "dropoff_latitude=40.8")
    one_clear_error(r, 4, "is not a time")
    nyc = ["--ride", "pickup_latitude=40.7", "--ride", "dropoff_longitude=-73.9", "--ride", "dropoff_latitude=40.8"]
    r = cli("model", "predict", "--ride", "pickup_datetime=2015-01-15 08:30:00 UTC",
            "--ride", "pickup_longitude=west", *nyc)
    one_clear_error(r, 4, "not a number: pickup_longitude='west'")
    r = cli("model", "predict", "--ride", "pickup_datetime=2015-01-15 08:30:00 UTC",
            "--ride", "pickup_longitude=-73.9", *nyc)
    assert r.code == 0, r
    assert "priced by model version 1 (Production)" in r.err
    assert cli("model", "train", "--size", "1k", "--epochs", "1").code == 0
    r = cli("model", "predict", "--version", "2", "--ride", "pickup_datetime=2015-01-15 08:30:00 UTC",
            "--ride", "pickup_longitude=-73.9", *nyc)
    assert r.code == 0, r
    assert "priced by model version 2\n" in r.err  # in no stage: nothing in brackets


def test_unknown_version_exits_4(cli: Cli) -> None:
    one_clear_error(cli("model", "promote", "--version", "9", "--stage", "Production"), 4, "version 9 does not exist")


def test_unreachable_remote_exits_5_and_suggests_the_simulator(cli: Cli) -> None:
    r = cli("data", "fetch", "--size", "1k", env={"TAXIFARE_DATA__REMOTE_URL": "http://127.0.0.1:9/{name}.csv"})
    one_clear_error(r, 5, "cannot reach", "--source synthetic")


RIDES = (
    "key,pickup_datetime,pickup_longitude,pickup_latitude,dropoff_longitude,dropoff_latitude,passenger_count\n"
    "a,2015-01-15 08:30:00 UTC,-73.985,40.758,-73.965,40.776,1\n"
)


@pytest.mark.parametrize(
    ("target", "needle"),
    [("/dev/full", "not a regular file"), ("rides.csv", "is the input file"), (".", "is a directory")],
)
def test_an_output_that_would_destroy_something_is_refused(cli: Cli, home: Path, target: str, needle: str) -> None:
    rides = home / "rides.csv"
    rides.write_text(RIDES)
    r = cli("model", "predict", "--input", str(rides), "--output", target)
    one_clear_error(r, 2, needle)
    assert rides.read_text() == RIDES  # the input is untouched
    assert Path("/dev/full").is_char_device()


def test_an_input_that_is_a_directory_says_so(cli: Cli, home: Path) -> None:
    one_clear_error(cli("model", "predict", "--input", str(home)), 4, "is a directory")


def test_a_csv_that_is_not_utf8_names_the_line(cli: Cli, home: Path) -> None:
    header = "key,fare_amount,pickup_datetime,pickup_longitude,pickup_latitude,dropoff_longitude,dropoff_latitude,passenger_count\n"
    good = "a,7.5,2015-01-15 08:30:00 UTC,-73.985,40.758,-73.965,40.776,1\n"
    (home / "data").mkdir()
    for name in ("train_1k", "val_1k"):
        (home / "data" / f"{name}.csv").write_bytes(
            (header + good).encode() + b"b\xff\xfe,7.5,2015-01-15 08:30:00 UTC,-73.985,40.758,-73.965,40.776,1\n"
        )
    one_clear_error(cli("model", "train", "--size", "1k"), 4, "train_1k line 3 is not UTF-8")


def test_a_malformed_ride_is_a_usage_error(cli: Cli) -> None:
    one_clear_error(cli("model", "predict", "--ride", "pickup_datetime"), 2, "is not FIELD=VALUE")
    one_clear_error(cli("model", "predict", "--ride", "pickup_longitude=-73.9"), 2, "the ride lacks")


def test_a_config_file_that_is_a_directory_or_not_utf8_exits_3(cli: Cli, home: Path) -> None:
    one_clear_error(cli("--config", str(home), "config", "show"), 3, "is a directory")
    (home / "bad.toml").write_bytes(b'[data]\nsize = "\xff"\n')
    one_clear_error(cli("--config", "bad.toml", "config", "show"), 3, "is not UTF-8")
