"""Model version records in the bucket (ports.ModelRecords), mixed into GcsStore.

`gs://<bucket>/<prefix>/models/<model>/<version>.json`, created once with an
`if_generation_match=0` precondition and never replaced: a second registry that
hands out the same number finds the first record kept. A retried create whose
first try landed also fails the precondition; the caller compares contents.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc

from taxifare_cli.errors import ConfigError, TaxifareError

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from google.cloud import storage  # untyped package

# A model name becomes one path segment: no slashes, nothing that reads as a folder trick.
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class GcsModelRecords:
    """The ModelRecords half of GcsStore; uses the store's bucket, prefix, retries and error translation."""

    bucket_name: str
    prefix: str
    timeout_s: float

    if TYPE_CHECKING:  # GcsStore's (gcs.py, gcp_calls.py); first in its bases, so these never shadow them

        @property
        def bucket(self) -> storage.Bucket: ...

        def _check_bucket(self) -> None: ...

        def _errors(
            self, doing: str, *, not_found: Callable[[gexc.NotFound], TaxifareError] | None = None
        ) -> AbstractContextManager[None]: ...

        def _call(self) -> dict[str, Any]: ...

    def record_path(self, model: str, version: int) -> str:
        if not _MODEL.match(model):
            raise ConfigError(
                f"{model!r} cannot name a model's records in a bucket: use letters, digits, . _ -"
            )
        folder = f"{self.prefix}/models" if self.prefix else "models"
        return f"{folder}/{model}/{int(version)}.json"

    def record_location(self, model: str, version: int) -> str:
        return f"gs://{self.bucket_name}/{self.record_path(model, version)}"

    def create_record(self, model: str, version: int, data: bytes) -> bool:
        location = self.record_location(model, version)
        self._check_bucket()
        blob = self.bucket.blob(self.record_path(model, version))
        with self._errors(f"publishing {location}"):
            try:
                blob.upload_from_string(
                    data, content_type="application/json", if_generation_match=0, **self._call()
                )
            except gexc.PreconditionFailed:
                return False
        return True

    def read_record(self, model: str, version: int) -> bytes | None:
        location = self.record_location(model, version)
        self._check_bucket()
        with self._errors(f"reading {location}"):
            try:
                data: bytes = self.bucket.blob(self.record_path(model, version)).download_as_bytes(
                    **self._call()
                )
            except gexc.NotFound:
                return None
        return data
