"""Model records in a real bucket (fake-gcs-server): created once, never replaced, read back."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

pytest.importorskip("google.cloud.storage", reason="the gcp extra is not installed")

from taxifare_cli.adapters.storage.gcs import GcsStore
from taxifare_cli.errors import ConfigError
from taxifare_cli.ports import ModelRecords, ModelVersion
from taxifare_cli.services.model_record import publish_version, read_published

PATH = "taxi-fare-ny/models/taxifare/1.json"


def version(val_mae: float) -> ModelVersion:
    return ModelVersion(
        version=1,
        stage="None",
        created_at=datetime(2026, 1, 2, tzinfo=UTC),
        params={"seed": 3, "chunk_size": 1000},
        metrics={"val_mae": val_mae},
        data={"train": {"dataset": "train_1k", "source": "gcs", "checksum": "sha256:" + "a" * 64}},
    )


def generation(client: Any, bucket: str, path: str) -> int | None:
    blob = client.bucket(bucket).get_blob(path)
    return None if blob is None else int(blob.generation)


def test_a_record_is_created_once_and_a_colliding_one_is_kept(
    make_gcs_store: Callable[..., GcsStore], gcs_client: Any, bucket: str
) -> None:
    store = make_gcs_store()
    assert isinstance(store, ModelRecords)
    assert store.record_location("taxifare", 1) == f"gs://{bucket}/{PATH}"

    assert publish_version(store, "taxifare", version(2.0)).action == "written"
    first = generation(gcs_client, bucket, PATH)
    assert publish_version(store, "taxifare", version(2.0)).action == "unchanged"
    assert generation(gcs_client, bucket, PATH) == first  # nothing written

    clash = publish_version(store, "taxifare", version(3.0))
    assert clash.action == "kept" and "another registry published that number" in clash.warning
    assert generation(gcs_client, bucket, PATH) == first
    doc = json.loads(gcs_client.bucket(bucket).blob(PATH).download_as_bytes())
    assert doc["metrics"] == {"val_mae": 2.0}

    found = read_published(store, "taxifare", 1)
    assert found is not None and found.version.metrics == {"val_mae": 2.0}
    assert read_published(store, "taxifare", 2) is None
    assert store.create_record("taxifare", 1, b"{}") is False


def test_an_unreachable_bucket_makes_a_failed_publication_not_an_error(
    make_gcs_store: Callable[..., GcsStore],
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    store = make_gcs_store(endpoint=closed, retries=0, timeout_s=2.0)

    result = publish_version(store, "taxifare", version(2.0))

    assert result.action == "failed" and "not published" in result.warning
    assert "\n" not in result.warning


def test_a_model_name_that_is_not_one_path_segment_is_refused(
    make_gcs_store: Callable[..., GcsStore],
) -> None:
    with pytest.raises(ConfigError, match="cannot name a model's records"):
        make_gcs_store().record_path("../other", 1)
