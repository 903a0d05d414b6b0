"""WebhookNotifier: workflow verdicts POSTed to a chat's incoming webhook.

Two bodies: "slack", JSON `{"text": ...}` as Slack, Mattermost and Teams incoming
webhooks take it; "form", `author` and `content` form-encoded, as the original
project's chat takes it.

The URL is a secret (Slack-style webhooks carry their token in the path and the
query), so nothing this module raises or prints holds more of it than
`scheme://host[:port]`; exceptions are raised without the urllib error that
carries the full URL as their cause.

Connection errors, timeouts, 429 and 5xx are retried with exponential backoff
(a 429's or 503's Retry-After is honoured up to a cap); other answers are final.
A redirect is not followed: urllib would turn the POST into a GET and lose it.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NoReturn

from taxifare_cli import __version__
from taxifare_cli.core.vocabulary import WEBHOOK_FORMATS, WebhookFormat
from taxifare_cli.errors import ConfigError, ServiceError

if TYPE_CHECKING:
    from taxifare_cli.ports import Notification
    from taxifare_cli.settings import Settings

_URL_HINT = (
    "set notify.webhook_url (env TAXIFARE_NOTIFY__WEBHOOK_URL) to the https:// address the chat gave you"
)
_NET_HINT = (
    "check the network and that the webhook's service is up, or raise notify.retries or notify.timeout_s"
)
_BODY_SNIPPET = 200


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand 3xx back as an HTTPError instead of following it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Attempt(Exception):
    """One failed attempt: why, whether trying again may help, and how long the server asked us to wait."""

    def __init__(
        self, reason: str, *, retry: bool, hint: str = _NET_HINT, wait_s: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.hint = hint
        self.wait_s = wait_s


def _config_error(message: str) -> NoReturn:
    raise ConfigError(message, hint=_URL_HINT)


def _split_url(url: str) -> tuple[str, str, str | None]:
    """(URL without credentials, `scheme://host[:port]`, Basic auth header or None); ConfigError if unusable.

    Error messages never quote the URL, not even its scheme: a mistyped one may be all secret.
    """
    url = url.strip()
    if not url:
        _config_error("notify.webhook_url is not set but notify.backend is 'webhook'")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        _config_error("notify.webhook_url is not a valid URL")
    if parts.scheme.lower() not in ("http", "https"):
        _config_error("notify.webhook_url is not an http:// or https:// URL")
    host = parts.hostname
    if not host:
        _config_error("notify.webhook_url has no host")
    shown_host = f"[{host}]" if ":" in host else host
    netloc = shown_host if port is None else f"{shown_host}:{port}"
    target = f"{parts.scheme.lower()}://{netloc}"
    auth = None
    if parts.username is not None or parts.password is not None:
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    bare = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return bare, target, auth


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _drain(response: Any) -> None:
    """Read a little of a 2xx answer so the connection closes cleanly; delivery already happened."""
    with contextlib.suppress(OSError, http.client.HTTPException):
        response.read(64 * 1024)


def _plural(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


class WebhookNotifier:
    """POSTs each notification to an incoming webhook; ServiceError when it could not be delivered."""

    kind = "webhook"

    def __init__(
        self,
        url: str,
        *,
        fmt: WebhookFormat = "slack",
        author: str = "taxifare",
        retries: int = 3,
        timeout_s: float = 10.0,
        backoff_s: float = 1.0,
        max_wait_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if fmt not in WEBHOOK_FORMATS:
            raise ConfigError(
                f"notify.webhook_format must be one of {', '.join(WEBHOOK_FORMATS)}, not {fmt!r}",
                hint="slack posts JSON with a `text` field; form posts `author` and `content`",
            )
        self._url, self.target, self._auth = _split_url(url)
        self.fmt: WebhookFormat = fmt
        self.author = author
        self.retries = max(0, int(retries))
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirect())

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookNotifier:
        notify = settings.notify
        secret = notify.webhook_url.get_secret_value() if notify.webhook_url is not None else ""
        return cls(
            secret,
            fmt=notify.webhook_format,
            author=notify.author,
            retries=notify.retries,
            timeout_s=notify.timeout_s,
        )

    def __repr__(self) -> str:
        return (
            f"WebhookNotifier(target={self.target!r}, fmt={self.fmt!r}, retries={self.retries}, "
            f"timeout_s={self.timeout_s})"
        )

    # -- the body ---------------------------------------------------------------------------

    def payload(self, note: Notification) -> tuple[bytes, str]:
        """(body, Content-Type) for `note` in this notifier's format."""
        if self.fmt == "form":
            form = urllib.parse.urlencode({"author": self.author, "content": note.text()})
            return form.encode("utf-8"), "application/x-www-form-urlencoded; charset=utf-8"
        return json.dumps({"text": note.text()}).encode("utf-8"), "application/json; charset=utf-8"

    # -- delivery ---------------------------------------------------------------------------

    def notify(self, note: Notification) -> None:
        body, content_type = self.payload(note)
        attempts = self.retries + 1
        failure: _Attempt | None = None
        for attempt in range(attempts):
            if attempt:
                self._sleep(self._delay(attempt, failure))
            try:
                self._post(body, content_type)
                return
            except _Attempt as e:
                failure = e
                if not e.retry:
                    attempts = attempt + 1
                    break
        assert failure is not None
        # Raised outside the except block: no urllib error (which holds the full URL) in the chain.
        raise ServiceError(
            f"could not deliver the notification to the webhook at {self.target} "
            f"after {_plural(attempts)}: {self._scrub(failure.reason)}",
            hint=failure.hint,
        )

    def _delay(self, attempt: int, failure: _Attempt | None) -> float:
        if failure is not None and failure.wait_s is not None:
            return min(failure.wait_s, self.max_wait_s)
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_wait_s)

    def _post(self, body: bytes, content_type: str) -> None:
        headers = {
            "Content-Type": content_type,
            "User-Agent": f"taxifare/{__version__}",
            "Accept": "*/*",
        }
        if self._auth:
            headers["Authorization"] = self._auth
        request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                _drain(response)
        except urllib.error.HTTPError as e:
            raise self._answer(e) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise _Attempt(f"no answer within {self.timeout_s:g} s", retry=True) from None
            reason = e.reason
            text = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
            raise _Attempt(f"cannot connect ({text})", retry=True) from None
        except TimeoutError:
            raise _Attempt(f"no answer within {self.timeout_s:g} s", retry=True) from None
        except (OSError, http.client.HTTPException) as e:
            raise _Attempt(f"the connection broke off ({e.__class__.__name__})", retry=True) from None

    def _answer(self, e: urllib.error.HTTPError) -> _Attempt:
        """What an HTTP error answer means for delivery; closes it."""
        code = e.code
        wait_s = _retry_after(e.headers.get("Retry-After")) if e.headers is not None else None
        snippet = ""
        try:
            raw = e.read(_BODY_SNIPPET + 1) if e.fp is not None else b""
            text = " ".join(raw.decode("utf-8", "replace").split())
            if text and len(text) <= _BODY_SNIPPET and "<" not in text:  # a short word, not an HTML page
                snippet = f": {text}"
        except (OSError, http.client.HTTPException):
            pass
        finally:
            e.close()
        reason = f"HTTP {code} {e.reason or ''}".rstrip() + snippet
        if code == 429 or code >= 500:
            return _Attempt(reason, retry=True, wait_s=wait_s)
        if 300 <= code < 400:
            hint = (
                "the webhook redirects, which would lose the post: set notify.webhook_url to where it leads"
            )
        elif code in (401, 403):
            hint = "the webhook refused the post: check notify.webhook_url (its token may have been revoked)"
        elif code in (404, 410):
            hint = "the webhook does not exist (any more): check notify.webhook_url"
        else:
            hint = (
                "the webhook rejected the message: check that notify.webhook_format (slack or form) suits it"
            )
        return _Attempt(reason, retry=False, hint=hint)

    def _scrub(self, text: str) -> str:
        """Belt and braces: the URL's secret parts never reach a message, even if a server echoes them."""
        parts = urllib.parse.urlsplit(self._url)
        for secret in (self._url, parts.path if parts.path not in ("", "/") else "", parts.query):
            if secret and len(secret) > 3:
                text = text.replace(secret, "…")
        return text
