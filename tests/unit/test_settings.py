from pathlib import Path

import pytest
import tomllib
from pydantic import SecretStr

from taxifare_cli.errors import ConfigError
from taxifare_cli.settings import (
    LEGACY_ENV,
    Settings,
    collect_problems,
    example_toml,
    load_settings,
    settings_table,
)


def origins(loaded) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {k: o for k, _, o in settings_table(loaded)}


def test_defaults_work_with_nothing_set(tmp_path: Path) -> None:
    loaded = load_settings(environ={}, config=None)
    s = loaded.settings
    assert s.storage.backend == "local" and s.registry.backend == "local"
    assert s.workflow.origin == "synthetic"
    assert all(o == "default" for o in origins(loaded).values())


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('[training]\nepochs = 7\nbatch_size = 32\npatience = 3\n[data]\nsize = "1k"\n')
    env = {"TAXIFARE_TRAINING__EPOCHS": "9", "TAXIFARE_TRAINING__BATCH_SIZE": "64"}
    loaded = load_settings(config=cfg, environ=env, flags={"training.epochs": 11, "training.patience": None})
    t = loaded.settings.training
    assert (t.epochs, t.batch_size, t.patience) == (11, 64, 3)
    assert loaded.settings.data.size == "1k"
    o = origins(loaded)
    assert o["training.epochs"] == "flag"
    assert o["training.batch_size"] == "env TAXIFARE_TRAINING__BATCH_SIZE"
    assert o["training.patience"] == f"file {cfg}"
    assert o["training.learning_rate"] == "default"


@pytest.mark.parametrize(("var", "value", "dotted", "expected"), [
    ("DATA_SIZE", "100k", "data.size", "100k"),
    ("CHUNK_SIZE", "5000", "data.chunk_size", 5000),
    ("MODEL_TARGET", "mlflow", "registry.backend", "mlflow"),
    ("BQ_DATASET", "rides", "storage.bq_dataset", "rides"),
    ("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000", "mlflow.tracking_uri", "http://127.0.0.1:5000"),
])
def test_original_environment_names(var: str, value: str, dotted: str, expected: object) -> None:
    loaded = load_settings(environ={var: value})
    section, key = dotted.split(".")
    assert getattr(getattr(loaded.settings, section), key) == expected
    assert origins(loaded)[dotted] == f"env {var}"


def test_prefixed_name_beats_original_name() -> None:
    loaded = load_settings(environ={"DATA_SIZE": "1k", "TAXIFARE_DATA__SIZE": "10k"})
    assert loaded.settings.data.size == "10k"


def test_every_legacy_name_maps_to_a_real_setting() -> None:
    for dotted in LEGACY_ENV.values():
        section, key = dotted.split(".")
        assert key in Settings.model_fields[section].annotation.model_fields  # type: ignore[union-attr]


def test_problems_are_one_line_each_and_say_where() -> None:
    loaded, problems = collect_problems(
        environ={"CHUNK_SIZE": "10", "TAXIFARE_DATA__SIZE": "2k", "TAXIFARE_TRAINING__EPOCHS": "x"}
    )
    assert loaded is None
    assert len(problems) == 3
    assert any(p.startswith("data.chunk_size = '10' from env CHUNK_SIZE") for p in problems)
    assert all("\n" not in p for p in problems)


def test_unknown_key_in_file_is_a_problem(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text("[data]\nsise = '1k'\n")
    _, problems = collect_problems(config=cfg, environ={})
    assert problems and "unknown setting" in problems[0]


def test_broken_toml_and_missing_file_raise_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config=bad, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(config=tmp_path / "nope.toml", environ={})
    with pytest.raises(ConfigError, match="TAXIFARE_CONFIG"):
        load_settings(environ={"TAXIFARE_CONFIG": str(tmp_path / "nope.toml")})


def test_secrets_are_masked() -> None:
    loaded = load_settings(environ={"TAXIFARE_MLFLOW__TRACKING_TOKEN": "s3cr3t"})
    assert isinstance(loaded.settings.mlflow.tracking_token, SecretStr)
    table = {k: v for k, v, _ in settings_table(loaded)}
    assert table["mlflow.tracking_token"] == "********"
    assert "s3cr3t" not in repr(loaded.settings)


def test_example_file_lists_every_key_and_loads_as_the_defaults(tmp_path: Path) -> None:
    text = example_toml()
    parsed = tomllib.loads(text)
    for section, fld in Settings.model_fields.items():
        for key in fld.annotation.model_fields:  # type: ignore[union-attr]
            assert f"{key} =" in text, f"{section}.{key} missing from the example"
    cfg = tmp_path / "example.toml"
    cfg.write_text(text)
    assert load_settings(config=cfg, environ={}).settings == Settings.model_validate(parsed)
    assert Settings.model_validate(parsed) == Settings.model_validate({})


def test_checked_in_example_is_up_to_date() -> None:
    checked_in = Path(__file__).parents[2] / "taxifare.toml.example"
    assert checked_in.read_text() == example_toml(), "regenerate with: taxifare config init taxifare.toml.example --force"
