"""GcsStore: raw ride CSV files in a Cloud Storage bucket, as `<prefix>/<name>.csv`.

The layout is the original project's, so existing buckets work. Reads stream the
blob in blocks (one generation, pinned: an overwrite during a read is an error,
never a mix of two files). Writes are idempotent (a blob with the same bytes is
left alone) and guarded by a generation precondition, so a failed upload leaves
the previous blob, and a concurrent writer is never overwritten blindly.

Every distinct content put under a name is also kept, once, at a content
address `<prefix>/versions/sha256/<aa>/<rest>.csv` (a create-only upload:
`if_generation_match=0`), so a model's recorded checksum finds the bytes it was
trained on after the name was overwritten. Downloads stream, are hashed on
the way and checked against the checksum the bucket records. Model version
records (`<prefix>/models/<model>/<version>.json`) are gcs_records.py's.
"""

from __future__ import annotations

import builtins
import hashlib
import re
from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING

from google.api_core import exceptions as gexc
from google.cloud import storage  # untyped package

from taxifare_cli.adapters.storage.gcp_calls import (
    CsvFacts,
    emulator_endpoint,
    scan_csv,
    sha256_hex,
)
from taxifare_cli.adapters.storage.gcs_objects import GcsBucket
from taxifare_cli.adapters.storage.gcs_records import GcsModelRecords
from taxifare_cli.core.schema import parse_dataset_name
from taxifare_cli.errors import ConfigError, DataError, NotFoundError, ServiceError, TaxifareError
from taxifare_cli.files.ride_csv import iter_csv_chunks
from taxifare_cli.ports import SILENT, DatasetInfo, Progress

if TYPE_CHECKING:
    import pandas as pd

    from taxifare_cli.core.cleaning import CleaningRules
    from taxifare_cli.settings import Settings

# Bucket names: 3-63 lowercase letters, digits, dashes, underscores, dots (Google's rule, simplified).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")


class GcsStore(GcsBucket, GcsModelRecords):
    """`gs://<bucket>/<prefix>/<name>.csv`, described by the blob and its metadata; model records too."""

    kind = "gcs"
    bucket_setting = "storage.bucket / BUCKET_NAME"
    forbidden_hint = "grant the account roles/storage.objectAdmin on the bucket (or use another bucket)"

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "taxi-fare-ny",
        project: str | None = None,
        endpoint: str | None = None,
        key_file: Path | None = None,
        timeout_s: float = 120.0,
        retries: int = 5,
        read_block_bytes: int = 8 << 20,
        upload_chunk_bytes: int = 32 << 20,
    ) -> None:
        if not _BUCKET.match(bucket):
            raise ConfigError(
                f"{bucket!r} is not a valid bucket name",
                hint="bucket names are 3-63 lowercase letters, digits, '-', '_' or '.'; fix storage.bucket",
            )
        super().__init__(endpoint=endpoint, key_file=key_file, timeout_s=timeout_s, retries=retries)
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.project = project
        self.read_block_bytes = read_block_bytes
        self.upload_chunk_bytes = upload_chunk_bytes
        self._client: storage.Client | None = None
        self._bucket_checked = False

    @classmethod
    def from_settings(cls, settings: Settings) -> GcsStore:
        s = settings.storage
        if not s.bucket:
            raise ConfigError(
                "no Cloud Storage bucket configured",
                hint="set storage.bucket in taxifare.toml, or BUCKET_NAME / TAXIFARE_STORAGE__BUCKET",
            )
        return cls(
            s.bucket,
            prefix=s.prefix,
            project=settings.gcp.project,
            endpoint=emulator_endpoint(s.gcs_endpoint, "STORAGE_EMULATOR_HOST"),
            key_file=settings.gcp.credentials,
            timeout_s=s.timeout_s,
            retries=s.retries,
        )

    # --- naming ---------------------------------------------------------------------
    def blob_path(self, name: str) -> str:
        dataset = str(parse_dataset_name(name))
        return f"{self.prefix}/{dataset}.csv" if self.prefix else f"{dataset}.csv"

    def uri(self, name: str) -> str:
        return f"gs://{self.bucket_name}/{self.blob_path(name)}"

    def _versions_folder(self) -> str:
        return f"{self.prefix}/versions/sha256/" if self.prefix else "versions/sha256/"

    def version_path(self, checksum: str) -> str:
        """`<prefix>/versions/sha256/<aa>/<rest>.csv`: two-letter folders keep listings short."""
        hexdigest = sha256_hex(checksum)
        return f"{self._versions_folder()}{hexdigest[:2]}/{hexdigest[2:]}.csv"

    def version_location(self, checksum: str) -> str:
        return f"gs://{self.bucket_name}/{self.version_path(checksum)}"

    # --- the port -------------------------------------------------------------------
    def describe(self, name: str) -> DatasetInfo | None:
        blob = self._get_blob(name, doing=f"looking up {self.uri(name)}")
        return None if blob is None else self._info(name, blob)

    def list(self) -> list[DatasetInfo]:
        folder = f"{self.prefix}/" if self.prefix else ""
        self._check_bucket()
        infos = []
        with self._errors(f"listing gs://{self.bucket_name}/{folder}"):
            blobs = self.client.list_blobs(self.bucket_name, prefix=folder, delimiter="/", **self._call())
            for blob in blobs:
                stem = blob.name[len(folder) :]
                if not stem.endswith(".csv"):
                    continue
                try:
                    name = str(parse_dataset_name(stem[: -len(".csv")]))
                except ValueError:
                    continue  # not one of ours
                infos.append(self._info(name, blob))
        return sorted(infos, key=lambda i: i.name)

    def read_chunks(
        self, name: str, chunk_size: int, *, rules: CleaningRules | None = None
    ) -> Iterator[pd.DataFrame]:
        """Stream the blob through the CSV reader; `rules` are left to cleaning."""
        uri = self.uri(name)
        blob = self._get_blob(name, doing=f"reading {uri}")
        if blob is None:
            part = str(parse_dataset_name(name)).split("_", 1)[1]
            raise NotFoundError(
                f"{parse_dataset_name(name)} is not in gs://{self.bucket_name}/{self.prefix}",
                hint=f"upload it first: taxifare data upload --to gcs --size/--month {part}",
            )
        path, generation = blob.name, blob.generation

        def opener() -> IO[bytes]:
            pinned = self.bucket.blob(path, generation=generation)
            reader: IO[bytes] = pinned.open(
                "rb", chunk_size=self.read_block_bytes, retry=self._retry(), timeout=self.timeout_s
            )
            return reader

        def changed(_: gexc.NotFound) -> TaxifareError:
            return ServiceError(
                f"{uri} was replaced or deleted while it was being read",
                hint="run the command again",
            )

        def chunks() -> Iterator[pd.DataFrame]:
            with self._errors(f"reading {uri}", not_found=changed):
                yield from iter_csv_chunks(opener, chunk_size, name=str(parse_dataset_name(name)))

        return chunks()

    def put(self, name: str, csv_path: Path, *, source: str) -> DatasetInfo:
        """Upload `csv_path` unless the blob already holds the same bytes."""
        uri = self.uri(name)
        facts = scan_csv(csv_path)
        current = self._get_blob(name, doing=f"uploading to {uri}")
        if current is not None and _same_bytes(current, facts.md5_b64, facts.sha256):
            self._keep_version(name, current, facts, source)  # a bucket from before versions
            return self._info(name, current)
        blob = self.bucket.blob(self.blob_path(name), chunk_size=self.upload_chunk_bytes)
        blob.metadata = {"rows": str(facts.rows), "sha256": facts.sha256, "source": source}
        # Only replace the generation we looked at (0: only create): a failed upload
        # never finalises, and a writer we did not see is never overwritten.
        expected = current.generation if current is not None else 0
        with self._errors(f"uploading {csv_path.name} to {uri}"):
            try:
                blob.upload_from_filename(
                    str(csv_path),
                    content_type="text/csv",
                    if_generation_match=expected,
                    retry=self._retry(),
                    timeout=self.timeout_s,
                )
            except gexc.PreconditionFailed:
                # A retried request whose first try had landed also ends here: check.
                now = self.bucket.get_blob(blob.name, **self._call())
                if now is None or not _same_bytes(now, facts.md5_b64, facts.sha256):
                    raise ServiceError(
                        f"{uri} was changed by someone else during the upload; their version was kept",
                        hint="run the command again",
                    ) from None
                blob = now
        self._keep_version(name, blob, facts, source)
        return self._info(name, blob)

    def delete(self, name: str) -> bool:
        uri = self.uri(name)
        blob = self._get_blob(name, doing=f"deleting {uri}")
        if blob is None:
            return False
        with self._errors(f"deleting {uri}"):
            try:
                blob.delete(if_generation_match=blob.generation, **self._call())
            except gexc.NotFound:
                return False  # gone meanwhile
        return True

    def download(self, name: str, dest: Path, *, progress: Progress = SILENT) -> str:
        """Stream the blob, bytes unchanged, to `dest` (the caller's temporary file); its checksum."""
        uri = self.uri(name)
        blob = self._get_blob(name, doing=f"downloading {uri}")
        if blob is None:
            raise NotFoundError(
                f"{uri} does not exist", hint="upload it first: taxifare data upload --to gcs"
            )
        return self._stream(blob, dest, str(parse_dataset_name(name)), progress)

    # --- versions (ports.VersionedStore) -------------------------------------------
    def describe_version(self, checksum: str) -> DatasetInfo | None:
        location = self.version_location(checksum)
        self._check_bucket()
        with self._errors(f"looking up {location}"):
            blob: storage.Blob | None = self.bucket.get_blob(self.version_path(checksum), **self._call())
        return None if blob is None else self._version_info(blob)

    def versions(self) -> builtins.list[DatasetInfo]:
        folder = self._versions_folder()
        self._check_bucket()
        with self._errors(f"listing gs://{self.bucket_name}/{folder}"):
            infos = [
                self._version_info(blob)
                for blob in self.client.list_blobs(self.bucket_name, prefix=folder, **self._call())
                if blob.name.endswith(".csv")
            ]
        return sorted(infos, key=lambda i: (i.name, i.updated or _EPOCH, i.checksum or ""))

    def download_version(self, checksum: str, dest: Path, *, progress: Progress = SILENT) -> DatasetInfo:
        location = self.version_location(checksum)
        self._check_bucket()
        with self._errors(f"looking up {location}"):
            blob: storage.Blob | None = self.bucket.get_blob(self.version_path(checksum), **self._call())
        if blob is None:
            raise NotFoundError(
                f"no version {checksum} in gs://{self.bucket_name}/{self._versions_folder().rstrip('/')}",
                hint="upload it from a machine that has it: taxifare data upload --to gcs --size/--month ...",
            )
        info = self._version_info(blob)
        got = self._stream(blob, dest, info.name, progress, expected=checksum)
        if got != checksum:
            raise DataError(
                f"{location} holds bytes with checksum {got}, not {checksum}",
                hint="the bucket's copy is damaged: upload the file again from a machine that has it",
            )
        return info

    def _keep_version(self, name: str, blob: storage.Blob, facts: CsvFacts, source: str) -> None:
        """Copy `blob` (just put under `name`) to its content address unless it is there: never replaced.

        A server-side copy: the bytes go over the network once. If it fails, the
        next put of the same file finds the name unchanged and copies again.
        """
        path = self.version_path(facts.sha256)
        location = f"gs://{self.bucket_name}/{path}"
        self._check_bucket()
        with self._errors(f"looking up {location}"):
            held: storage.Blob | None = self.bucket.get_blob(path, **self._call())
        if held is not None:
            if not _same_bytes(held, facts.md5_b64, facts.sha256):
                raise ServiceError(
                    f"{location} holds other bytes than its name says",
                    hint=f"delete that object (gcloud storage rm {location}), then upload again",
                )
            return
        target = self.bucket.blob(path)
        target.metadata = {
            "rows": str(facts.rows),
            "sha256": facts.sha256,
            "source": source,
            "dataset": str(parse_dataset_name(name)),
        }
        target.content_type = "text/csv"
        pinned = self.bucket.blob(blob.name, generation=blob.generation)
        # PreconditionFailed: written meanwhile (or by our own retried request): same address, same bytes.
        with self._errors(f"keeping {blob.name} as {location}"), suppress(gexc.PreconditionFailed):
            token: str | None = None
            while True:  # a large object is copied in several calls
                token, _, _ = target.rewrite(
                    pinned, token=token, if_generation_match=0, retry=self._retry(), timeout=self.timeout_s
                )
                if token is None:
                    break

    def _stream(
        self,
        blob: storage.Blob,
        dest: Path,
        label: str,
        progress: Progress,
        *,
        expected: str | None = None,
    ) -> str:
        """Copy one pinned generation of `blob` to `dest` block by block, hashing it; its checksum.

        Without `expected`, the checksum recorded in the blob's metadata is checked.
        """
        uri = f"gs://{self.bucket_name}/{blob.name}"
        want = expected or (blob.metadata or {}).get("sha256")
        pinned = self.bucket.blob(blob.name, generation=blob.generation)
        digest = hashlib.sha256()
        task = f"downloading {label}"
        progress.start(task, total=blob.size or None, unit="bytes")

        def changed(_: gexc.NotFound) -> TaxifareError:
            return ServiceError(f"{uri} was replaced or deleted while it was downloaded", hint="run again")

        try:
            with self._errors(f"downloading {uri}", not_found=changed):
                reader = pinned.open(
                    "rb", chunk_size=self.read_block_bytes, retry=self._retry(), timeout=self.timeout_s
                )
                with reader, dest.open("wb") as out:
                    for block in iter(lambda: reader.read(self.read_block_bytes), b""):
                        out.write(block)
                        digest.update(block)
                        progress.advance(task, len(block))
        finally:
            progress.finish(task)
        got = "sha256:" + digest.hexdigest()
        if want is not None and got != want:
            raise DataError(
                f"{uri} arrived with checksum {got}, but the bucket records {want}",
                hint="run the command again; if it persists, upload the file again",
            )
        return got

    # --- plumbing -------------------------------------------------------------------
    def _check_bucket(self) -> None:
        """Once per store: a missing bucket is one clear error, not a dataset that is 'not there'."""
        if self._bucket_checked:
            return
        with self._errors(f"opening gs://{self.bucket_name}"):
            # Listing needs only the object permission every other call needs too.
            list(self.client.list_blobs(self.bucket_name, max_results=1, **self._call()))
        self._bucket_checked = True

    def _get_blob(self, name: str, *, doing: str) -> storage.Blob | None:
        self._check_bucket()
        with self._errors(doing):
            blob: storage.Blob | None = self.bucket.get_blob(self.blob_path(name), **self._call())
        return blob

    def _info(self, name: str, blob: storage.Blob) -> DatasetInfo:
        meta = blob.metadata or {}
        rows = meta.get("rows")
        return DatasetInfo(
            name=str(parse_dataset_name(name)),
            rows=int(rows) if rows and rows.isdigit() else None,
            bytes=blob.size,
            updated=blob.updated,
            location=f"gs://{self.bucket_name}/{blob.name}",
            checksum=meta.get("sha256"),
            source=meta.get("source"),
        )

    def _version_info(self, blob: storage.Blob) -> DatasetInfo:
        meta = blob.metadata or {}
        rows = meta.get("rows")
        rest = blob.name[len(self._versions_folder()) :].removesuffix(".csv").replace("/", "")
        return DatasetInfo(
            name=meta.get("dataset") or "?",
            rows=int(rows) if rows and rows.isdigit() else None,
            bytes=blob.size,
            updated=blob.updated,
            location=f"gs://{self.bucket_name}/{blob.name}",
            checksum=meta.get("sha256") or f"sha256:{rest}",
            source=meta.get("source"),
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _same_bytes(blob: storage.Blob, md5_b64: str, sha256: str) -> bool:
    if blob.md5_hash:  # composite objects have none: fall back on what we recorded
        return bool(blob.md5_hash == md5_b64)
    return bool((blob.metadata or {}).get("sha256") == sha256)
