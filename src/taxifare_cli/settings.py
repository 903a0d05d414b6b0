"""Settings: one object, built once per command from four layers.

Precedence, highest first: flags the user typed > environment
(`TAXIFARE_SECTION__KEY` and the original project's names) > TOML file >
defaults. `load_settings` also records where each value came from, so that
`taxifare config show` can say it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: Vertex AI's prebuilt training containers
    import tomli as tomllib

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict, SettingsError

from taxifare_cli.errors import ConfigError, redact
from taxifare_cli.settings_sections import (
    CloudSettings,
    DataSettings,
    GcpSettings,
    MlflowSettings,
    NotifySettings,
    RegistrySettings,
    StorageSettings,
    TrainingSettings,
    WorkflowSettings,
)

ENV_PREFIX = "TAXIFARE_"
DEFAULT_CONFIG_NAME = "taxifare.toml"

# The original project's environment names, kept so existing .env files and cron jobs work.
LEGACY_ENV: dict[str, str] = {
    "DATA_SIZE": "data.size",
    "DATASET_SIZE": "data.size",
    "VALIDATION_DATASET_SIZE": "data.val_size",
    "CHUNK_SIZE": "data.chunk_size",
    "LOCAL_DATA_PATH": "data.local_path",
    "DATA_SOURCE": "storage.backend",
    "MODEL_TARGET": "registry.backend",
    "LOCAL_REGISTRY_PATH": "registry.local_path",
    "GCP_PROJECT": "gcp.project",
    "GCP_REGION": "gcp.region",
    "BUCKET_NAME": "storage.bucket",
    "BQ_DATASET": "storage.bq_dataset",
    "MLFLOW_TRACKING_URI": "mlflow.tracking_uri",
    "MLFLOW_EXPERIMENT": "mlflow.experiment",
    "MLFLOW_MODEL_NAME": "mlflow.model_name",
}


class Settings(BaseSettings):
    """Everything the tool can be told. Build it with `load_settings`, not directly."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid")

    data: DataSettings = Field(default_factory=DataSettings)  # type: ignore[arg-type]
    storage: StorageSettings = Field(default_factory=StorageSettings)  # type: ignore[arg-type]
    registry: RegistrySettings = Field(default_factory=RegistrySettings)  # type: ignore[arg-type]
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)  # type: ignore[arg-type]
    gcp: GcpSettings = Field(default_factory=GcpSettings)  # type: ignore[arg-type]
    training: TrainingSettings = Field(default_factory=TrainingSettings)  # type: ignore[arg-type]
    workflow: WorkflowSettings = Field(default_factory=WorkflowSettings)  # type: ignore[arg-type]
    notify: NotifySettings = Field(default_factory=NotifySettings)  # type: ignore[arg-type]
    cloud: CloudSettings = Field(default_factory=CloudSettings)  # type: ignore[arg-type]

    @property
    def data_dir(self) -> Path:
        return self.data.local_path.expanduser()

    @property
    def registry_dir(self) -> Path:
        return self.registry.local_path.expanduser()

    @property
    def mlflow_store_dir(self) -> Path:
        return self.mlflow.local_store.expanduser()

    @property
    def workflow_dir(self) -> Path:
        return self.workflow.state_path.expanduser()


@dataclass
class LoadedSettings:
    """The settings and, for each dotted key, the layer it came from."""

    settings: Settings
    origins: dict[str, str] = field(default_factory=dict)
    config_file: Path | None = None


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _set(d: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[leaf] = value


def find_config_file(explicit: Path | None, environ: dict[str, str]) -> Path | None:
    """`--config`, else TAXIFARE_CONFIG, else ./taxifare.toml if present."""
    if explicit is not None:
        if explicit.is_dir():
            raise ConfigError(f"config file {explicit} is a directory", hint="name the TOML file itself")
        if not explicit.is_file():
            raise ConfigError(
                f"config file {explicit} does not exist",
                hint="check the path, or create one with `taxifare config init`",
            )
        return explicit
    env = environ.get("TAXIFARE_CONFIG")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"config file {path} (from TAXIFARE_CONFIG) does not exist",
                hint="fix TAXIFARE_CONFIG or create the file with `taxifare config init`",
            )
        return path
    local = Path(DEFAULT_CONFIG_NAME)
    return local.resolve() if local.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text (byte {e.start})", hint="save it as UTF-8") from e
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e


def _env_layer(environ: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Values from the environment, and the variable each came from."""
    flat: dict[str, Any] = {}
    names: dict[str, str] = {}
    for var, dotted in LEGACY_ENV.items():
        if environ.get(var):
            flat[dotted] = environ[var]
            names[dotted] = var
    try:
        parsed = _parse_env({k.lower(): v for k, v in environ.items()})
    except SettingsError:
        raise _unparsable_env(environ) from None
    for dotted, value in _flatten(parsed).items():
        flat[dotted] = value  # the TAXIFARE_ name wins over a legacy one
        names[dotted] = ENV_PREFIX + dotted.upper().replace(".", "__")
    return flat, names


def _parse_env(env_vars: dict[str, str]) -> dict[str, Any]:
    source = EnvSettingsSource(
        Settings, case_sensitive=False, env_prefix=ENV_PREFIX, env_nested_delimiter="__"
    )
    source.env_vars = env_vars
    return source()


def _unparsable_env(environ: dict[str, str]) -> ConfigError:
    """The variable pydantic could not parse (a list not written as JSON), found by trying each alone."""
    for var, value in environ.items():
        if not var.upper().startswith(ENV_PREFIX):
            continue
        try:
            _parse_env({var.lower(): value})
        except SettingsError:
            dotted = var[len(ENV_PREFIX) :].lower().replace("__", ".")
            return ConfigError(
                f"invalid setting {dotted} = {value!r} from env {var}: a list is written as JSON",
                hint=f"e.g. {var}='[128, 64]'",
            )
    return ConfigError("a TAXIFARE_ environment variable cannot be parsed", hint="see taxifare config show")


def _origin(dotted: str, origins: dict[str, str]) -> str:
    """Where `dotted` was set; a whole section (an unknown one) comes from where its first key was set."""
    if dotted in origins:
        return origins[dotted]
    inside = [where for key, where in origins.items() if key.startswith(dotted + ".")]
    return inside[0] if inside else "default"


def _format_validation_error(err: ValidationError, origins: dict[str, str]) -> list[str]:
    problems = []
    for e in err.errors():
        dotted = ".".join(str(p) for p in e["loc"])
        where = _origin(dotted, origins)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown setting (see taxifare.toml.example for the valid keys)"
        problems.append(redact(f"{dotted} = {e.get('input')!r} from {where}: {msg}"))
    return problems


def collect_problems(
    *,
    config: Path | None = None,
    flags: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> tuple[LoadedSettings | None, list[str]]:
    """Build the settings; return them, or None and one line per problem."""
    env = dict(os.environ if environ is None else environ)
    path = find_config_file(config, env)
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    if path is not None:
        for dotted, value in _flatten(_read_toml(path)).items():
            _set(merged, dotted, value)
            origins[dotted] = f"file {path}"
    env_values, env_names = _env_layer(env)
    for dotted, value in env_values.items():
        _set(merged, dotted, value)
        origins[dotted] = f"env {env_names[dotted]}"
    for dotted, value in (flags or {}).items():
        if value is None:  # never pass an untyped flag's default as if it were set
            continue
        _set(merged, dotted, value)
        origins[dotted] = "flag"
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as e:
        return None, _format_validation_error(e, origins)
    return LoadedSettings(settings, origins, path), []


def load_settings(
    *,
    config: Path | None = None,
    flags: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> LoadedSettings:
    """Build the settings or raise ConfigError naming the first problem."""
    loaded, problems = collect_problems(config=config, flags=flags, environ=environ)
    if loaded is None:
        more = f" (and {len(problems) - 1} more: run `taxifare config check`)" if len(problems) > 1 else ""
        raise ConfigError(f"invalid setting {problems[0]}{more}")
    return loaded


def settings_table(loaded: LoadedSettings) -> list[tuple[str, str, str]]:
    """(dotted key, value with secrets masked, origin) for every setting."""
    rows = []
    dumped = loaded.settings.model_dump(mode="python")
    for dotted, value in _flatten(dumped).items():
        if isinstance(value, SecretStr):
            shown = "********" if value.get_secret_value() else ""
        elif value is None:
            shown = ""
        else:
            shown = redact(str(value))  # a URL's password is as secret as a token
        rows.append((dotted, shown, loaded.origins.get(dotted, "default")))
    return rows


def example_toml() -> str:
    """A starter config listing every key with its default and description."""
    lines = [
        "# taxifare configuration. Precedence: flags > environment > this file > defaults.",
        "# Environment: TAXIFARE_SECTION__KEY (e.g. TAXIFARE_DATA__CHUNK_SIZE=50000), and the",
        "# original names: " + ", ".join(LEGACY_ENV) + ".",
        "",
    ]
    for name, fld in Settings.model_fields.items():
        section_cls = fld.annotation
        assert isinstance(section_cls, type) and issubclass(section_cls, BaseModel)
        lines.append(f"[{name}]")
        for key, sub in section_cls.model_fields.items():
            lines.append(f"# {sub.description}")
            default = sub.get_default(call_default_factory=True)
            if default is None or isinstance(default, SecretStr):
                lines.append(f"# {key} = ")
            else:
                lines.append(f"{key} = {_toml_value(default)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'
