"""The notifiers against the real thing: a webhook served on 127.0.0.1, and a text stream for the console."""

from __future__ import annotations

import io
import json
import threading
import time
import traceback
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from taxifare_cli import __version__
from taxifare_cli.adapters.notify.console import ConsoleNotifier
from taxifare_cli.adapters.notify.webhook import WebhookNotifier
from taxifare_cli.errors import ConfigError, ServiceError
from taxifare_cli.ports import Notification
from taxifare_cli.settings import load_settings

SECRET_PATH = "/hooks/T000/SECRET123?token=abc"
SECRETS = ("SECRET123", "token=abc", "T000", "/hooks")

NOTE = Notification(
    subject="taxifare 2015-06: challenger beats Production",
    lines=["production MAE 2.41", "challenger MAE 2.17 (-10%)", "promote: taxifare model promote 7"],
    level="info",
    fields={"month": "2015-06"},
)


# -- a webhook on 127.0.0.1 -----------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Hook:
    """What the server received, and what it answers next: (status, headers, body) or "hang", then 200 "ok"."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], bytes] | str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(
        self, status: int, times: int = 1, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> None:
        self.script.extend([(status, headers or {}, body)] * times)

    def hang(self, times: int = 1) -> None:
        self.script.extend(["hang"] * times)


def _handler(hook: Hook, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with lock:
                hook.requests.append(Recorded("POST", self.path, dict(self.headers.items()), body))
                step = hook.script.pop(0) if hook.script else (200, {}, b"ok")
            if step == "hang":
                hook.release.wait(10)  # past the client's timeout; set at teardown
                return
            assert not isinstance(step, str)
            status, headers, reply = step
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, threading.Lock()))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def notifier(hook: Hook, **kw: object) -> WebhookNotifier:
    options: dict = {"retries": 2, "timeout_s": 2.0, "backoff_s": 0.0, **kw}
    return WebhookNotifier(hook.url + SECRET_PATH, **options)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into {text!r}"


# -- bodies ---------------------------------------------------------------------------------------


def test_slack_posts_json_text_with_subject_and_lines(hook: Hook) -> None:
    notifier(hook).notify(NOTE)
    [req] = hook.requests
    assert req.method == "POST"
    assert req.path == SECRET_PATH  # the secret path and query reach the server intact
    assert req.headers["Content-Type"].startswith("application/json")
    assert req.headers["User-Agent"] == f"taxifare/{__version__}"
    payload = json.loads(req.body)
    assert payload == {"text": NOTE.text()}
    assert payload["text"].splitlines() == [NOTE.subject, *NOTE.lines]


def test_form_posts_author_and_content(hook: Hook) -> None:
    notifier(hook, fmt="form", author="wagoncab-bot").notify(NOTE)
    [req] = hook.requests
    assert req.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert "taxifare/" in req.headers["User-Agent"]
    form = urllib.parse.parse_qs(req.body.decode(), strict_parsing=True)
    assert form == {"author": ["wagoncab-bot"], "content": [NOTE.text()]}
    assert NOTE.subject in form["content"][0]
    assert all(line in form["content"][0] for line in NOTE.lines)


def test_credentials_in_the_url_become_basic_auth_and_stay_hidden(hook: Hook) -> None:
    n = WebhookNotifier(hook.url.replace("http://", "http://bot:pa%20ss@") + "/in", backoff_s=0)
    n.notify(NOTE)
    [req] = hook.requests
    assert req.path == "/in"
    assert req.headers["Authorization"] == "Basic Ym90OnBhIHNz"  # bot:pa ss
    assert "bot" not in repr(n) and "pa%20ss" not in repr(n)


# -- retries ----------------------------------------------------------------------------------------


def test_a_500_then_200_is_retried_and_delivered(hook: Hook) -> None:
    hook.answer(500)
    notifier(hook).notify(NOTE)
    assert len(hook.requests) == 2
    assert hook.requests[0].body == hook.requests[1].body


def test_a_429_waits_as_told_up_to_a_cap(hook: Hook) -> None:
    hook.answer(429, headers={"Retry-After": "7"})
    hook.answer(503, headers={"Retry-After": "3600"})
    slept: list[float] = []
    notifier(hook, sleep=slept.append, backoff_s=0.5, max_wait_s=30.0).notify(NOTE)
    assert len(hook.requests) == 3
    assert slept == [7.0, 30.0]


def test_a_retry_after_date_in_the_past_means_now(hook: Hook) -> None:
    hook.answer(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    slept: list[float] = []
    notifier(hook, sleep=slept.append, backoff_s=5.0).notify(NOTE)
    assert slept == [0.0]


def test_backoff_doubles_without_retry_after(hook: Hook) -> None:
    hook.answer(502, times=4)
    slept: list[float] = []
    with pytest.raises(ServiceError, match="after 4 attempts: HTTP 502"):
        notifier(hook, retries=3, sleep=slept.append, backoff_s=0.25).notify(NOTE)
    assert len(hook.requests) == 4
    assert slept == [0.25, 0.5, 1.0]


def test_a_404_is_not_retried(hook: Hook) -> None:
    hook.answer(404, body=b"no_service")
    with pytest.raises(ServiceError) as caught:
        notifier(hook).notify(NOTE)
    assert len(hook.requests) == 1
    assert "after 1 attempt:" in caught.value.message
    assert "404" in caught.value.message and "no_service" in caught.value.message
    assert caught.value.hint and "notify.webhook_url" in caught.value.hint
    assert caught.value.exit_code == 5


def test_a_redirect_is_not_followed(hook: Hook) -> None:
    hook.answer(302, headers={"Location": hook.url + "/elsewhere"})
    with pytest.raises(ServiceError) as caught:
        notifier(hook).notify(NOTE)
    assert [r.method for r in hook.requests] == ["POST"]  # no GET to the new place
    assert "302" in caught.value.message


def test_exhausted_retries_never_show_the_secret(hook: Hook) -> None:
    # The server even echoes the secret path back in its error body.
    hook.answer(500, times=3, body=SECRET_PATH.encode())
    n = notifier(hook)
    with pytest.raises(ServiceError) as caught:
        n.notify(NOTE)
    err = caught.value
    assert len(hook.requests) == 3
    assert err.message.startswith(
        f"could not deliver the notification to the webhook at {hook.url} after 3 attempts:"
    )
    assert "HTTP 500" in err.message
    chain = "".join(traceback.format_exception(err))
    assert_no_secret(str(err), err.message, err.hint or "", repr(n), str(n), chain)


def test_an_unreachable_server_is_retried_then_reported() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    n = WebhookNotifier(f"http://127.0.0.1:{port}{SECRET_PATH}", retries=1, timeout_s=2, backoff_s=0)
    with pytest.raises(ServiceError) as caught:
        n.notify(NOTE)
    assert "after 2 attempts: cannot connect" in caught.value.message
    assert_no_secret(str(caught.value), "".join(traceback.format_exception(caught.value)))


def test_a_server_that_never_answers_times_out_each_attempt(hook: Hook) -> None:
    hook.hang(times=2)
    n = notifier(hook, retries=1, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(ServiceError) as caught:
        n.notify(NOTE)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 2.0  # about timeout × attempts, not the server's 10 s
    assert len(hook.requests) == 2
    assert "no answer within 0.3 s" in caught.value.message
    assert_no_secret(str(caught.value))


# -- settings ---------------------------------------------------------------------------------------


def test_from_settings_builds_from_real_settings(home: Path, hook: Hook) -> None:
    loaded = load_settings(
        config=None,
        flags={
            "notify.backend": "webhook",
            "notify.webhook_url": hook.url + SECRET_PATH,
            "notify.webhook_format": "form",
            "notify.author": "ops",
            "notify.retries": 0,
            "notify.timeout_s": 1.5,
        },
    )
    n = WebhookNotifier.from_settings(loaded.settings)
    assert (n.kind, n.fmt, n.author, n.retries, n.timeout_s) == ("webhook", "form", "ops", 0, 1.5)
    assert_no_secret(repr(n))
    hook.answer(500)
    with pytest.raises(ServiceError, match="after 1 attempt:"):
        n.notify(NOTE)
    assert len(hook.requests) == 1


def test_from_settings_without_a_url_is_a_config_error(home: Path) -> None:
    loaded = load_settings(config=None, flags={"notify.backend": "webhook"})
    with pytest.raises(ConfigError) as caught:
        WebhookNotifier.from_settings(loaded.settings)
    assert "notify.webhook_url" in caught.value.message
    assert caught.value.hint and "\n" not in caught.value.hint
    assert caught.value.exit_code == 3


@pytest.mark.parametrize(
    "url",
    ["ftp://chat.example/hooks/T000/SECRET123?token=abc", "hooks/T000/SECRET123?token=abc", "https:///x"],
)
def test_from_settings_with_a_non_http_url_is_a_config_error(home: Path, url: str) -> None:
    loaded = load_settings(config=None, flags={"notify.backend": "webhook", "notify.webhook_url": url})
    with pytest.raises(ConfigError) as caught:
        WebhookNotifier.from_settings(loaded.settings)
    assert "notify.webhook_url" in caught.value.message
    assert caught.value.hint and "\n" not in caught.value.hint
    assert_no_secret(str(caught.value))


def test_console_from_settings(home: Path) -> None:
    loaded = load_settings(config=None, flags={"notify.backend": "console"})
    assert ConsoleNotifier.from_settings(loaded.settings).kind == "console"


# -- console ----------------------------------------------------------------------------------------


def test_console_writes_subject_and_indented_lines_to_its_stream(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    ConsoleNotifier(stream).notify(NOTE)
    assert stream.getvalue().splitlines() == [NOTE.subject, *(f"  {line}" for line in NOTE.lines)]
    assert "\033" not in stream.getvalue()  # not a terminal: no colour
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_console_defaults_to_stderr_never_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleNotifier().notify(Notification("drift", ["line one\nline two"], level="warning"))
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "drift\n  line one\n  line two\n"


def test_console_on_a_closed_stream_is_a_service_error() -> None:
    stream = io.StringIO()
    stream.close()
    with pytest.raises(ServiceError):
        ConsoleNotifier(stream).notify(NOTE)


def test_console_colours_only_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    tty = Terminal()
    ConsoleNotifier(tty).notify(Notification("failed", ["why"], level="error"))
    assert tty.getvalue().startswith("\033[1;31mfailed\033[0m\n")
    monkeypatch.setenv("NO_COLOR", "1")
    plain = Terminal()
    ConsoleNotifier(plain).notify(Notification("failed", ["why"], level="error"))
    assert plain.getvalue() == "failed\n  why\n"
