"""What GcsStore and BigQueryStore share: endpoints, credentials, retries, error translation.

Imported only by those two adapters, so the google packages load only when a
cloud store is used; a missing package surfaces in bootstrap as MissingExtraError.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import urllib3.exceptions
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth import credentials as gcreds
from google.auth import exceptions as auth_exc

from taxifare_cli.errors import ConfigError, DataError, ServiceError, TaxifareError

_CREDENTIALS_HINT = (
    "run `gcloud auth application-default login`, or point GOOGLE_APPLICATION_CREDENTIALS "
    "(or gcp.credentials) at a service-account key file"
)

# Errors worth another try: the server said "later", or the connection broke.
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    gexc.TooManyRequests,
    gexc.InternalServerError,
    gexc.BadGateway,
    gexc.ServiceUnavailable,
    gexc.GatewayTimeout,
    ConnectionError,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.Timeout,
    http.client.IncompleteRead,
    http.client.BadStatusLine,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    auth_exc.TransportError,
)
# BigQuery reports some transient failures as 400/403 with one of these reasons.
_TRANSIENT_REASONS = frozenset({"backendError", "rateLimitExceeded", "internalError", "jobBackendError"})


def emulator_endpoint(configured: str | None, env_var: str) -> str | None:
    """The endpoint from the settings, else from `env_var`, with a scheme; None for Google's."""
    endpoint = configured or os.environ.get(env_var) or None
    if endpoint is None:
        return None
    endpoint = endpoint.strip().rstrip("/")
    return endpoint if "://" in endpoint else f"http://{endpoint}"


def credentials(key_file: Path | None, *, emulator: bool) -> gcreds.Credentials | None:
    """Anonymous for an emulator, the key file when given, else None (ADC, found by the client)."""
    if emulator:
        return gcreds.AnonymousCredentials()
    if key_file is None:
        return None
    from google.oauth2 import service_account

    path = key_file.expanduser()
    try:
        return service_account.Credentials.from_service_account_file(
            str(path), scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
    except FileNotFoundError:
        raise ConfigError(
            f"service-account key file {path} does not exist",
            hint="fix gcp.credentials, or unset it to use ADC",
        ) from None
    except (ValueError, KeyError) as e:
        raise ConfigError(
            f"{path} is not a service-account key file: {e}",
            hint="download a JSON key for the account, or unset gcp.credentials to use ADC",
        ) from None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT_TYPES):
        return True
    if isinstance(exc, gexc.GoogleAPICallError):
        reasons = {e.get("reason") for e in (exc.errors or []) if isinstance(e, dict)}
        return bool(reasons & _TRANSIENT_REASONS)
    return False


def bounded_retry(retries: int, timeout_s: float) -> Retry:
    """A fresh Retry that tries again at most `retries` times, backing off 0.5 s, 1 s, 2 s...

    google.api_core's Retry bounds only the total time; counting in the predicate
    bounds the attempts too. Make one per operation: the count lives in it.
    """
    left = [retries]

    def predicate(exc: Exception) -> bool:
        if left[0] <= 0 or not is_transient(exc):
            return False
        left[0] -= 1
        return True

    backoff = sum(min(0.5 * 2**i, 10.0) for i in range(retries))
    return Retry(
        predicate=predicate,
        initial=0.5,
        maximum=10.0,
        multiplier=2.0,
        timeout=timeout_s * (retries + 1) + backoff,
    )


def _short(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _root_cause(exc: BaseException) -> BaseException:
    # api_core.RetryError wraps the last error; requests wraps urllib3's.
    if isinstance(exc, gexc.RetryError) and exc.cause is not None:
        return exc.cause
    return exc


@contextmanager
def translated(
    service: str,
    endpoint: str,
    *,
    doing: str,
    not_found: Callable[[gexc.NotFound], TaxifareError] | None = None,
    forbidden_hint: str,
) -> Iterator[None]:
    """Turn google and transport errors into one-line TaxifareErrors saying what to do.

    `service` ("Cloud Storage"), `endpoint` (where it was called), `doing`
    ("uploading train_1k to gs://b/p/train_1k.csv"). A 404 becomes what
    `not_found` returns, or a ServiceError.
    """
    try:
        yield
    except TaxifareError:
        raise
    except auth_exc.DefaultCredentialsError as e:
        raise ConfigError(f"no Google credentials found for {service}", hint=_CREDENTIALS_HINT) from e
    except auth_exc.RefreshError as e:
        raise ServiceError(
            f"{service} refused the credentials while {doing}: {_short(str(e), 120)}", hint=_CREDENTIALS_HINT
        ) from e
    except Exception as e:
        raise _translate(e, service, endpoint, doing, not_found, forbidden_hint) from e


def _translate(
    exc: Exception,
    service: str,
    endpoint: str,
    doing: str,
    not_found: Callable[[gexc.NotFound], TaxifareError] | None,
    forbidden_hint: str,
) -> TaxifareError:
    cause = _root_cause(exc)
    if isinstance(cause, gexc.NotFound):
        if not_found is not None:
            return not_found(cause)
        return ServiceError(f"{service} found nothing while {doing}: {_short(cause.message)}")
    if isinstance(cause, gexc.Unauthorized):
        return ServiceError(f"{service} did not accept the credentials while {doing}", hint=_CREDENTIALS_HINT)
    if isinstance(cause, gexc.Forbidden):
        return ServiceError(
            f"permission denied by {service} while {doing}: {_short(cause.message, 120)}", hint=forbidden_hint
        )
    if isinstance(cause, _TRANSIENT_TYPES) or isinstance(exc, gexc.RetryError):
        gave_up = " (gave up after retrying)" if isinstance(exc, gexc.RetryError) else ""
        return ServiceError(
            f"cannot reach {service} at {endpoint} while {doing}{gave_up}: {_transport_reason(cause)}",
            hint="check the network and the endpoint, then run the command again; nothing was replaced",
        )
    if isinstance(cause, gexc.GoogleAPICallError):
        return ServiceError(f"{service} refused {doing}: {cause.code} {_short(cause.message)}")
    if isinstance(cause, auth_exc.GoogleAuthError):
        return ServiceError(
            f"{service} authentication failed while {doing}: {_short(str(cause))}", hint=_CREDENTIALS_HINT
        )
    if isinstance(cause, OSError):
        return ServiceError(f"{service} at {endpoint} failed while {doing}: {_short(str(cause))}")
    raise exc  # not ours to explain: a bug, shown with its traceback


def _transport_reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in (
        "Connection refused",
        "Connection reset",
        "timed out",
        "Name or service not known",
        "Connection aborted",
        "Remote end closed connection",
        "IncompleteRead",
    ):
        if marker.lower() in text.lower():
            return marker.lower()
    return _short(f"{exc.__class__.__name__}: {text}", 120)


class GoogleCloudStore:
    """What the bucket and the warehouse stores share: where, how patiently, and how errors read.

    A subclass names its `service` ("Cloud Storage"), its `google_endpoint` and
    the role to grant on a 403, and says what a 404 of its container means.
    """

    service: str
    google_endpoint: str
    forbidden_hint: str

    def __init__(
        self, *, endpoint: str | None, key_file: Path | None, timeout_s: float, retries: int
    ) -> None:
        self.endpoint = endpoint  # None: Google's
        self.key_file = key_file
        self.timeout_s = timeout_s
        self.retries = retries

    def _credentials(self) -> gcreds.Credentials | None:
        return credentials(self.key_file, emulator=self.endpoint is not None)

    def _client_options(self) -> dict[str, str] | None:
        return {"api_endpoint": self.endpoint} if self.endpoint else None

    def _retry(self) -> Retry:
        return bounded_retry(self.retries, self.timeout_s)

    def _call(self) -> dict[str, Any]:
        """retry= and timeout= for one google client call."""
        return {"retry": self._retry(), "timeout": self.timeout_s}

    def _errors(
        self, doing: str, *, not_found: Callable[[gexc.NotFound], TaxifareError] | None = None
    ) -> AbstractContextManager[None]:
        return translated(
            self.service,
            self.endpoint or self.google_endpoint,
            doing=doing,
            not_found=not_found or self._missing_container,
            forbidden_hint=self.forbidden_hint,
        )

    def _missing_container(self, _: gexc.NotFound) -> TaxifareError:
        raise NotImplementedError


@dataclass(frozen=True)
class CsvFacts:
    """What an upload needs to know of a local CSV file, learnt in one pass over it."""

    rows: int
    bytes: int
    sha256: str  # "sha256:<hex>", as DatasetInfo.checksum
    md5_b64: str  # as Cloud Storage reports md5Hash


def scan_csv(path: Path) -> CsvFacts:
    """Rows (newlines minus the header, as ride_csv.count_rows), size and digests."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.sha256()
    newlines = size = 0
    last = b"\n"
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
            newlines += block.count(b"\n")
            size += len(block)
            last = block[-1:]
    if last != b"\n":
        newlines += 1  # a last line without its newline
    return CsvFacts(
        rows=max(newlines - 1, 0),
        bytes=size,
        sha256="sha256:" + sha.hexdigest(),
        md5_b64=base64.b64encode(md5.digest()).decode("ascii"),
    )


_SHA256 = re.compile(r"^sha256:([0-9a-f]{64})$")


def sha256_hex(checksum: str) -> str:
    """The hex digest of a "sha256:<64 hex>" checksum; DataError for anything else."""
    m = _SHA256.match(checksum.strip().lower())
    if m is None:
        raise DataError(
            f"{checksum!r} is not a sha256 checksum", hint="checksums read sha256:<64 hex digits>"
        )
    return m.group(1)
