"""HttpSource: raw files downloaded from a URL template, streamed to disk.

The body goes to the caller's temporary path in 1 MiB blocks and is checked
against Content-Length; the caller renames it into place only when complete,
so a broken connection never leaves half a file where a whole one was.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from taxifare_cli import __version__
from taxifare_cli.errors import NotFoundError, ServiceError
from taxifare_cli.settings import Settings

_BLOCK = 1 << 20
_SIM_HINT = "check the network and data.remote_url, or simulate the rides offline with --source synthetic"


class HttpSource:
    kind = "remote"

    def __init__(self, url_template: str, *, timeout_s: float = 60.0, retries: int = 2) -> None:
        self.url_template = url_template
        self.timeout_s = timeout_s
        self.retries = retries

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpSource:
        return cls(settings.data.remote_url, timeout_s=settings.data.timeout_s)

    def describe(self, name: str) -> str:
        return self.url_template.format(name=name)

    def fetch(self, name: str, dest: Path, *, progress: Any = None) -> None:
        url = self.describe(name)
        for attempt in range(self.retries + 1):
            try:
                self._download(url, name, dest, progress)
                return
            except ServiceError:
                if attempt == self.retries:
                    raise
                time.sleep(0.5 * 2**attempt)  # transient: back off, then start again

    def _download(self, url: str, name: str, dest: Path, progress: Any) -> None:
        request = urllib.request.Request(url, headers={"User-Agent": f"taxifare/{__version__}"})
        task = f"downloading {name}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                length = response.headers.get("Content-Length")
                expected = int(length) if length and length.isdigit() else None
                if progress is not None:
                    progress.start(task, total=expected, unit="bytes")
                received = 0
                with dest.open("wb") as out:
                    while block := response.read(_BLOCK):
                        out.write(block)
                        received += len(block)
                        if progress is not None:
                            progress.advance(task, len(block))
                if expected is not None and received != expected:
                    raise ServiceError(
                        f"download of {url} stopped after {received} of {expected} bytes",
                        hint="run the command again; nothing was replaced",
                    )
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise NotFoundError(
                    f"the remote has no {name} ({url} answered 404)",
                    hint="check the size or month, or data.remote_url",
                ) from e
            if e.code in (401, 403):
                raise ServiceError(f"{url} refused access ({e.code})", hint=_SIM_HINT) from e
            raise ServiceError(f"{url} answered {e.code} {e.reason}", hint=_SIM_HINT) from e
        except urllib.error.URLError as e:
            raise ServiceError(f"cannot reach {url}: {e.reason}", hint=_SIM_HINT) from e
        except (http.client.HTTPException, ConnectionError, TimeoutError) as e:
            raise ServiceError(
                f"download of {url} broke off: {e.__class__.__name__} {e}".strip(),
                hint="run the command again; nothing was replaced",
            ) from e
        finally:
            if progress is not None:
                progress.finish(task)
