"""The model as a web API (FastAPI): `taxifare model serve`.

GET /predict?pickup_datetime=...&pickup_longitude=...   -> {"fare": 14.71}  (the original project's API)
POST /predict  [ride, ...]                               -> {"fares": [...], "version": N}
GET /health, GET /model

Rides are checked field by field before pricing: a missing field, a value that
is not a number, a place outside New York or a time the model does not know
is a 422 naming the field, never a 500. Rides are priced by
`FareModel.price_few` (`core.few_rides`): the rules, features and fares of the
one pricing path, on numpy alone: no DataFrame per request, no TensorFlow. A
background thread follows the stage: after `model promote`, the new version
serves within `refresh_s` seconds, without a restart.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Annotated, Any

import numpy as np
from fastapi import Body, FastAPI, HTTPException, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from taxifare_cli import __version__
from taxifare_cli.core.few_rides import RideBatch, parse_pickup
from taxifare_cli.core.rules import DEFAULT_RULES
from taxifare_cli.services.serving import ServedModel

MAX_RIDES = 10_000  # per POST: larger files go through `taxifare model predict --input`
_R = DEFAULT_RULES
FIRST_YEAR, LAST_YEAR = _R.year_min, _R.year_max


class Ride(BaseModel):
    """One ride, as the public data has it (fare excluded)."""

    model_config = ConfigDict(extra="ignore")

    pickup_datetime: str = Field(description="e.g. 2015-01-15 08:30:00 UTC (UTC), or ISO 8601")
    pickup_longitude: float
    pickup_latitude: float
    dropoff_longitude: float
    dropoff_latitude: float
    passenger_count: int = Field(1, ge=_R.passengers_min, le=_R.passengers_max)

    @field_validator("pickup_datetime")
    @classmethod
    def _time(cls, value: str) -> str:
        text = value.strip().removesuffix(" UTC").replace("Z", "+00:00")
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("not a time: use 2015-01-15 08:30:00 UTC or ISO 8601") from None
        if not FIRST_YEAR <= when.year <= LAST_YEAR:
            raise ValueError(f"the model prices rides from {FIRST_YEAR} to {LAST_YEAR}, not {when.year}")
        if when.tzinfo is not None:
            when = when.astimezone(timezone.utc).replace(tzinfo=None)
        return when.isoformat(sep=" ")

    @field_validator("pickup_longitude", "dropoff_longitude")
    @classmethod
    def _longitude(cls, value: float) -> float:
        if not (math.isfinite(value) and _R.lon_min <= value <= _R.lon_max):
            raise ValueError(f"outside New York: longitude must be between {_R.lon_min} and {_R.lon_max}")
        return value

    @field_validator("pickup_latitude", "dropoff_latitude")
    @classmethod
    def _latitude(cls, value: float) -> float:
        if not (math.isfinite(value) and _R.lat_min <= value <= _R.lat_max):
            raise ValueError(f"outside New York: latitude must be between {_R.lat_min} and {_R.lat_max}")
        return value


class Fare(BaseModel):
    fare: float = Field(description="dollars, to the cent")


class Fares(BaseModel):
    fares: list[float] = Field(description="dollars, to the cent, one per ride in order")
    version: int = Field(description="the model version that priced them")


def _json(payload: dict[str, Any], version: int) -> Response:
    """`payload` as JSON (as FastAPI writes it), with the version that priced it in X-Model-Version."""
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    return Response(body, media_type="application/json", headers={"X-Model-Version": str(version)})


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinity made a string, so that it can be sent back as JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def create_api(served: ServedModel) -> FastAPI:
    """The FastAPI application over `served` (which it refreshes in the background)."""
    stop = threading.Event()

    def follow_the_stage() -> None:
        while not stop.wait(served.refresh_s):
            served.refresh()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watcher = threading.Thread(target=follow_the_stage, name="taxifare-refresh", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join(timeout=5)
            served.close()

    api = FastAPI(
        title="taxifare",
        version=__version__,
        summary="Fares of New York taxi rides, priced by the registered model.",
        lifespan=lifespan,
    )

    @api.exception_handler(RequestValidationError)
    async def invalid_ride(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, and JSON cannot hold a NaN sent in a body: a 500.
        return JSONResponse(status_code=422, content={"detail": jsonable_encoder(_finite(exc.errors()))})

    def price(rides: list[Ride]) -> tuple[list[float], int]:
        """The fares of validated rides, in cents, and the version that priced them."""
        current = served.current  # this request's model, whatever a swap does meanwhile
        # Ride has checked them; price_few checks again by the same rules (microseconds a ride).
        batch = RideBatch(
            tuple(parse_pickup(r.pickup_datetime) for r in rides),
            np.array([r.pickup_longitude for r in rides], dtype=np.float64),
            np.array([r.pickup_latitude for r in rides], dtype=np.float64),
            np.array([r.dropoff_longitude for r in rides], dtype=np.float64),
            np.array([r.dropoff_latitude for r in rides], dtype=np.float64),
            np.array([r.passenger_count for r in rides], dtype=np.float64),
        )
        result = current.model.price_few(batch)
        if result.dropped:
            bad = [i for i, r in enumerate(result.reasons) if r is not None]
            reasons = ", ".join(f"{n} {reason}" for reason, n in result.dropped.most_common())
            raise HTTPException(422, detail=f"rides {bad[:20]} cannot be priced: {reasons}")
        return [round(float(f), 2) for f in result.fares], current.version.version

    # Pricing takes well under a millisecond for one ride and a few for a thousand: on the event
    # loop (async def), not handed to a worker thread and back. The answer is written here as
    # JSON (response_model=None): validating plain floats against a response model costs more
    # than pricing them; the documented shapes are Fare and Fares.
    @api.get(
        "/predict",
        summary="The fare of one ride",
        response_model=None,
        responses={200: {"model": Fare, "description": "The fare, in dollars"}},
    )
    async def predict_one(ride: Annotated[Ride, Query()]) -> Response:
        fares, version = price([ride])
        return _json({"fare": fares[0]}, version)

    @api.post(
        "/predict",
        summary="The fares of several rides, in order",
        response_model=None,
        responses={200: {"model": Fares, "description": "One fare per ride, in order"}},
    )
    async def predict_many(rides: Annotated[list[Ride], Body(max_length=MAX_RIDES)]) -> Response:
        if not rides:
            version = served.current.version.version
            return _json({"fares": [], "version": version}, version)
        fares, version = price(rides)
        return _json({"fares": fares, "version": version}, version)

    @api.get("/health")
    async def health() -> dict[str, Any]:
        v = served.current.version
        return {"status": "ok", "version": v.version, "stage": v.stage, "refresh_error": served.last_error}

    @api.get("/model")
    async def model() -> dict[str, Any]:
        current = served.current
        v = current.version
        return {
            "version": v.version,
            "stage": v.stage,
            "follows": str(served.ref),
            "created_at": v.created_at.isoformat(),
            "loaded_at": datetime.fromtimestamp(current.loaded_at, timezone.utc).isoformat(),
            "metrics": v.metrics,
            "trained_on": v.data,
            "parent_version": v.parent_version,
        }

    return api
