"""What the Compute Engine and Vertex AI runners share: credentials, endpoints, error translation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from google.api_core import exceptions as gexc

from taxifare_cli.adapters.storage.gcp_calls import credentials, translated
from taxifare_cli.errors import ConfigError, ServiceError


def require_project(project: str | None, what: str) -> str:
    if not project:
        raise ConfigError(
            f"{what} needs a Google Cloud project", hint="set gcp.project in taxifare.toml, or GCP_PROJECT"
        )
    return project


def client_kwargs(endpoint: str | None, key_file: Path | None) -> dict[str, Any]:
    """credentials= and client_options= for a google client (anonymous on a stand-in server)."""
    kwargs: dict[str, Any] = {"credentials": credentials(key_file, emulator=endpoint is not None)}
    if endpoint:
        kwargs["client_options"] = {"api_endpoint": endpoint}
    return kwargs


@contextmanager
def google_errors(service: str, api: str, endpoint: str, project: str, *, doing: str) -> Iterator[None]:
    """Errors as one line saying what is missing: the API not enabled, a permission, a quota."""
    try:
        with translated(service, endpoint, doing=doing, forbidden_hint=_role_hint(api)):
            yield
    except ServiceError as e:
        cause = e.__cause__
        if isinstance(cause, gexc.GoogleAPICallError):
            specific = _specific(cause, service, api, project, doing)
            if specific is not None:
                raise specific from cause
        raise


def _specific(
    e: gexc.GoogleAPICallError, service: str, api: str, project: str, doing: str
) -> ServiceError | None:
    text = f"{e.message} {e.errors}".lower()
    if "service_disabled" in text or "has not been used in project" in text or "accessnotconfigured" in text:
        return ServiceError(
            f"the {service} API is not enabled in project {project}",
            hint=f"gcloud services enable {api} --project {project}",
        )
    if "quota" in text and not isinstance(e, gexc.NotFound):
        return ServiceError(
            f"not enough {service} quota in project {project} while {doing}: {e.message}",
            hint="ask for more in the console (IAM & Admin > Quotas), or use a smaller --machine-type",
        )
    return None


def _role_hint(api: str) -> str:
    role = "roles/compute.instanceAdmin.v1" if api.startswith("compute") else "roles/aiplatform.user"
    return f"grant your account {role} and roles/iam.serviceAccountUser on the job's service account"
