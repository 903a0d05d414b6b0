"""GcsObjects: a folder of small objects in a bucket (ports.ObjectStore), for cloud job folders.

`gs://<bucket>/<folder>/<key>`; errors read as the GCS store's do (gcp_calls).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from google.api_core import exceptions as gexc
from google.cloud import storage  # untyped package

from taxifare_cli.adapters.storage.gcp_calls import GoogleCloudStore, emulator_endpoint
from taxifare_cli.errors import ConfigError, ServiceError, TaxifareError

if TYPE_CHECKING:
    from taxifare_cli.settings import Settings


def split_uri(uri: str) -> tuple[str, str]:
    """gs://bucket/a/b -> ("bucket", "a/b")."""
    if not uri.startswith("gs://"):
        raise ConfigError(
            f"{uri!r} is not a gs:// address", hint="a job folder is gs://<bucket>/jobs/<job-id>"
        )
    bucket, _, folder = uri[len("gs://") :].partition("/")
    if not bucket:
        raise ConfigError(f"{uri!r} names no bucket")
    return bucket, folder.strip("/")


class GcsBucket(GoogleCloudStore):
    """What a store in one bucket needs: its client, made on first use, the bucket, and the
    error a missing bucket is. Subclasses set `bucket_name`, `project` and `_client`."""

    service = "Cloud Storage"
    google_endpoint = "https://storage.googleapis.com"
    bucket_name: str
    project: str | None
    _client: storage.Client | None
    # How the user names the bucket, for the hint of a missing one.
    bucket_setting = "storage.bucket"

    @property
    def client(self) -> storage.Client:
        """Made on first use, so that building the store never calls anyone."""
        if self._client is None:
            with self._errors("connecting"):
                project = self.project or ("emulator" if self.endpoint else None)
                self._client = storage.Client(
                    project=project, credentials=self._credentials(), client_options=self._client_options()
                )
        return self._client

    @property
    def bucket(self) -> storage.Bucket:
        return self.client.bucket(self.bucket_name)

    def _missing_container(self, _: gexc.NotFound) -> TaxifareError:
        return ServiceError(
            f"bucket gs://{self.bucket_name} does not exist",
            hint=f"create it (gcloud storage buckets create gs://{self.bucket_name}) "
            f"or set {self.bucket_setting} to an existing one",
        )


class GcsObjects(GcsBucket):
    forbidden_hint = "grant the account roles/storage.objectAdmin on the bucket"

    def __init__(
        self,
        bucket: str,
        folder: str = "",
        *,
        project: str | None = None,
        endpoint: str | None = None,
        key_file: Path | None = None,
        timeout_s: float = 60.0,
        retries: int = 3,
        client: storage.Client | None = None,
    ) -> None:
        super().__init__(endpoint=endpoint, key_file=key_file, timeout_s=timeout_s, retries=retries)
        self.bucket_name = bucket
        self.folder = folder.strip("/")
        self.project = project
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> GcsObjects:
        """The jobs folder: gs://<storage.bucket>/<cloud.jobs_prefix>."""
        s = settings.storage
        if not s.bucket:
            raise ConfigError(
                "cloud training needs a Cloud Storage bucket for its job folders",
                hint="set storage.bucket in taxifare.toml, or BUCKET_NAME / TAXIFARE_STORAGE__BUCKET",
            )
        return cls(
            s.bucket,
            settings.cloud.jobs_prefix,
            project=settings.gcp.project,
            endpoint=emulator_endpoint(s.gcs_endpoint, "STORAGE_EMULATOR_HOST"),
            key_file=settings.gcp.credentials,
            timeout_s=s.timeout_s,
            retries=s.retries,
        )

    @classmethod
    def from_uri(cls, uri: str, settings: Settings | None = None) -> GcsObjects:
        bucket, folder = split_uri(uri)
        configured = settings.storage.gcs_endpoint if settings else None
        return cls(
            bucket,
            folder,
            project=settings.gcp.project if settings else None,
            endpoint=emulator_endpoint(configured, "STORAGE_EMULATOR_HOST"),
            key_file=settings.gcp.credentials if settings else None,
        )

    # --- the port -------------------------------------------------------------------
    def _name(self, key: str) -> str:
        return f"{self.folder}/{key}" if self.folder else key

    def uri(self, key: str = "") -> str:
        base = f"gs://{self.bucket_name}/{self.folder}".rstrip("/")
        return f"{base}/{key}" if key else base

    def read(self, key: str) -> bytes | None:
        with self._errors(f"reading {self.uri(key)}"):
            try:
                data: bytes = self.bucket.blob(self._name(key)).download_as_bytes(**self._call())
            except gexc.NotFound:
                return None
        return data

    def write(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        with self._errors(f"writing {self.uri(key)}"):
            self.bucket.blob(self._name(key)).upload_from_string(
                data, content_type=content_type, **self._call()
            )

    def upload(self, key: str, path: Path) -> None:
        with self._errors(f"uploading {path.name} to {self.uri(key)}"):
            self.bucket.blob(self._name(key)).upload_from_filename(str(path), **self._call())

    def children(self) -> list[str]:
        prefix = f"{self.folder}/" if self.folder else ""
        with self._errors(f"listing {self.uri()}"):
            pages = self.client.list_blobs(self.bucket_name, prefix=prefix, delimiter="/", **self._call())
            for _ in pages:  # the prefixes are known once the pages are read
                pass
            return sorted(p[len(prefix) :].strip("/") for p in pages.prefixes)

    def child(self, name: str) -> GcsObjects:
        return GcsObjects(
            self.bucket_name,
            self._name(name),
            project=self.project,
            endpoint=self.endpoint,
            key_file=self.key_file,
            timeout_s=self.timeout_s,
            retries=self.retries,
            client=self._client,
        )

    def check(self) -> None:
        with self._errors(f"opening gs://{self.bucket_name}"):
            list(self.client.list_blobs(self.bucket_name, max_results=1, **self._call()))
