"""How calls to MLflow fail: the checks made before any call, retries and time-outs, and
MLflow's and HTTP's failures as taxifare errors.

`mlflow_errors` wraps every registry call: a server that cannot be reached, a token
that is refused or a URL that is not an MLflow server becomes one line the CLI prints
with the right exit code (see taxifare_cli.errors). mlflow is imported on first use.
"""

from __future__ import annotations

import math
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from taxifare_cli.errors import (
    ConfigError,
    MissingExtraError,
    NotFoundError,
    ServiceError,
    TaxifareError,
    redact,
)

KNOWN_SCHEMES = ("http", "https", "databricks", "file", "sqlite", "postgresql", "mysql", "mssql")
# Text of the exceptions requests/urllib3 raise when nothing answers.
UNREACHABLE = (
    "Max retries exceeded",
    "Connection refused",
    "Failed to establish a new connection",
    "NameResolutionError",
    "Name or service not known",
    "timed out",
    "RemoteDisconnected",
    "Connection aborted",
)
MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
DEFAULT_RETRIES = 3

# Environment MLflow reads at call time. setdefault: a user's own value wins.
MLFLOW_ENV_DEFAULTS: dict[str, str] = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # The client writes run URLs to stdout when a run ends; stdout carries our results.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(DEFAULT_RETRIES),
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}


def set_http_defaults(timeout_s: float) -> None:
    """Retries, back-off, time-out and quiet output for MLflow's client, unless the user set them."""
    for key, value in MLFLOW_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, math.ceil(timeout_s))))


def require_mlflow() -> None:
    """MissingExtraError unless MLflow 3 or later is installed."""
    import importlib.util
    from importlib.metadata import PackageNotFoundError, version

    if importlib.util.find_spec("mlflow") is None:
        raise MissingExtraError("mlflow", "mlflow")
    found = "0"
    for dist in ("mlflow", "mlflow-skinny"):
        try:
            found = version(dist)
            break
        except PackageNotFoundError:
            continue
    if int(found.split(".")[0]) < 3:
        raise ConfigError(
            f"the mlflow registry needs MLflow 3; mlflow {found} is installed",
            hint="pip install 'taxifare[mlflow]'",
        )


def check_uri(uri: str) -> str:
    """The tracking URI stripped; ConfigError if it cannot be a tracking server's."""
    uri = uri.strip()
    if not uri:
        raise ConfigError("the MLflow tracking URI is empty", hint="set MLFLOW_TRACKING_URI")
    if "://" in uri:
        scheme = uri.split("://", 1)[0].lower().split("+", 1)[0]  # postgresql+psycopg2://
        if scheme not in KNOWN_SCHEMES:
            raise ConfigError(
                f"MLflow tracking URI {uri!r} has an unknown scheme {scheme!r}",
                hint="use the server's URL, e.g. http://127.0.0.1:5000",
            )
    elif re.match(r"^[\w.-]+:\d+(/|$)", uri):
        raise ConfigError(f"MLflow tracking URI {uri!r} has no scheme", hint=f"did you mean http://{uri}?")
    elif uri != "databricks":  # a bare path would be a file store, which MLflow 3 refuses late
        raise ConfigError(
            f"MLflow tracking URI {uri!r} is not a URL",
            hint="use the server's URL (http://127.0.0.1:5000), or sqlite:///path/mlflow.db",
        )
    return uri


_REDIRECT_LOCK = threading.Lock()
_redirects = 0
_saved_stdout: Any = None


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """stdout to stderr while any thread is inside an MLflow call; put back when the last one leaves.

    contextlib.redirect_stdout swaps the process-wide sys.stdout per call: two threads
    (the workflow's two middle steps) interleaving their exits would leave stderr there.
    """
    global _redirects, _saved_stdout
    with _REDIRECT_LOCK:
        if _redirects == 0:
            _saved_stdout, sys.stdout = sys.stdout, sys.stderr
        _redirects += 1
    try:
        yield
    finally:
        with _REDIRECT_LOCK:
            _redirects -= 1
            if _redirects == 0:
                sys.stdout = _saved_stdout


@contextmanager
def mlflow_errors(action: str, tracking_uri: str) -> Iterator[None]:
    """MLflow's exceptions as one-line taxifare errors; MLflow's prints kept off stdout."""
    try:
        with _stdout_to_stderr():
            yield
    except TaxifareError:
        raise
    except Exception as e:
        mapped = map_error(e, action, tracking_uri)
        if mapped is None:
            raise
        raise mapped from e


def map_error(e: Exception, action: str, tracking_uri: str) -> TaxifareError | None:
    """The taxifare error `e` is while doing `action`; None if it is not MLflow's or HTTP's."""
    from mlflow.exceptions import MlflowException

    text = str(e)
    first = text.strip().splitlines()[0][:300] if text.strip() else type(e).__name__
    code = getattr(e, "error_code", None)
    status = getattr(getattr(e, "response", None), "status_code", None) or status_in(text)
    tracking_uri = redact(tracking_uri)  # its password, if it has one, is no one's to read
    where = f"the MLflow server at {tracking_uri}"
    retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "")
    tries = f"tried {int(retries) + 1} times" if retries.isdigit() else "after retries"
    if any(s in text for s in UNREACHABLE) or is_connection_error(e):
        return ServiceError(
            f"cannot reach {where} while {action} ({tries})",
            hint="start the server, or fix MLFLOW_TRACKING_URI / mlflow.tracking_uri",
        )
    if code in ("PERMISSION_DENIED", "UNAUTHENTICATED") or status in (401, 403):
        return ServiceError(
            f"{where} refused {action}: permission denied",
            hint="set a valid token in MLFLOW_TRACKING_TOKEN / mlflow.tracking_token, or "
            "ask for access to the experiment and the registered model",
        )
    if code in MISSING_CODES:
        return NotFoundError(f"MLflow has no such resource while {action}: {first}")
    if code == "ENDPOINT_NOT_FOUND" or status in (404, 405):
        return ConfigError(
            f"{tracking_uri} does not answer like an MLflow tracking server "
            f"(HTTP {status or 404} while {action})",
            hint="MLFLOW_TRACKING_URI is the server's base URL, e.g. http://127.0.0.1:5000",
        )
    if "scheme" in text and "registered" in text.lower():
        return ConfigError(
            f"MLflow cannot use the tracking URI {tracking_uri!r}: {first}",
            hint="use the server's URL, e.g. http://127.0.0.1:5000",
        )
    if isinstance(e, MlflowException):
        return ServiceError(f"{where} failed while {action}: {first}", hint="see the server's log")
    if isinstance(e, ValueError) and "MLFLOW_" in text:  # MLflow reads its own settings lazily
        return ConfigError(f"an MLFLOW_ environment variable is invalid: {first}", hint="fix or unset it")
    return None


def is_missing(e: BaseException) -> bool:
    """Whether `e` says an artifact or resource is not there (MLflow's code, HTTP 404, a file)."""
    return (
        getattr(e, "error_code", None) in MISSING_CODES
        or "404 Client Error" in str(e)
        or isinstance(e, FileNotFoundError)
    )


def status_in(text: str) -> int | None:
    """The HTTP status MLflow's message quotes ("... error code 403 ..."), if any."""
    m = re.search(r"error code (\d{3})", text)
    return int(m.group(1)) if m else None


def is_connection_error(e: BaseException) -> bool:
    """Whether `e`, or an exception it was raised from, is a connection failure or time-out."""
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        if type(current).__name__ in ("ConnectionError", "ConnectTimeout", "ReadTimeout", "MaxRetryError"):
            return True
        current = current.__cause__ or current.__context__
    return False


def quietly(fn: Callable[..., Any], *args: Any) -> None:
    """Best-effort clean-up after a failure: the first error is the one to report."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(*args)
    except Exception:
        pass
