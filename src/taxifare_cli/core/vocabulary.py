"""The words the tool is configured and driven with, defined once.

Settings, the registries, bootstrap's tables and the CLI's choices all derive
from these, so a new stage or backend is added in one place.
"""

from __future__ import annotations

from typing import Literal, get_args

Stage = Literal["None", "Staging", "Production", "Archived"]
STAGES: tuple[Stage, ...] = get_args(Stage)
# A model can be loaded by these stages (one version holds each at a time).
LoadableStage = Literal["Staging", "Production"]
LOADABLE_STAGES: tuple[LoadableStage, ...] = get_args(LoadableStage)
# `model promote` moves a version to one of these; the holder of Staging/Production is archived.
PromotableStage = Literal["Staging", "Production", "Archived"]
PROMOTABLE_STAGES: tuple[PromotableStage, ...] = get_args(PromotableStage)

StoreBackend = Literal["local", "gcs", "bigquery"]
STORE_BACKENDS: tuple[StoreBackend, ...] = get_args(StoreBackend)
CloudStore = Literal["gcs", "bigquery"]
CLOUD_STORES: tuple[CloudStore, ...] = get_args(CloudStore)

RegistryBackend = Literal["local", "mlflow"]
REGISTRY_BACKENDS: tuple[RegistryBackend, ...] = get_args(RegistryBackend)

RideOrigin = Literal["remote", "synthetic"]
RIDE_ORIGINS: tuple[RideOrigin, ...] = get_args(RideOrigin)

NotifyBackend = Literal["console", "webhook"]
NOTIFY_BACKENDS: tuple[NotifyBackend, ...] = get_args(NotifyBackend)
# A webhook gets JSON with a Slack-compatible `text`, or the form post (author, content) of a chat.
WebhookFormat = Literal["slack", "form"]
WEBHOOK_FORMATS: tuple[WebhookFormat, ...] = get_args(WebhookFormat)

# manual: a better challenger waits in Staging for a human; auto: it is promoted by the rule.
Policy = Literal["manual", "auto"]
POLICIES: tuple[Policy, ...] = get_args(Policy)
EngineName = Literal["local", "prefect"]
ENGINE_NAMES: tuple[EngineName, ...] = get_args(EngineName)
# Where a challenger starts: Production's weights (fine-tuning) or new weights.
RetrainFrom = Literal["production", "scratch"]
# Where `cloud ...-train` runs a training job: this machine (a subprocess), a Compute Engine VM, Vertex AI.
RunnerName = Literal["local", "compute_engine", "vertex"]
RUNNER_NAMES: tuple[RunnerName, ...] = get_args(RunnerName)


def check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    """`value` matched case-insensitively against `choices`; ValueError naming them otherwise."""
    for choice in choices:
        if value.strip().lower() == choice.lower():
            return choice
    raise ValueError(f"unknown {what} {value!r}: choose one of {', '.join(choices)}")


def displaced(stage: Stage, version: int, holder: int | None) -> int | None:
    """The version archived when `version` moves to `stage`: the other holder of Staging or Production."""
    if stage in LOADABLE_STAGES and holder is not None and holder != version:
        return holder
    return None
