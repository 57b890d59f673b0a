"""Run the vendor emulators on loopback, each on its own port, from one estate.

``Sandbox`` is what tests and ``nhiscan demo`` use::

    with Sandbox("sandbox/estates/minimal.yaml") as sb:
        gh = Github(base_url=sb.github_url, auth=Auth.Token("ghp_..."), retry=None)

Each vendor emulator is a WSGI app served by ``werkzeug.serving.make_server(threaded=True)`` on
``127.0.0.1`` port 0 (the OS picks a free port) in a daemon thread. Adding a vendor (GitLab,
Slack, Jira, ...) means writing ``sandbox/<name>.py`` with ``parse_estate``, ``build`` and
``URL_SUFFIX`` (see ``sandbox.estate.VENDOR_SECTIONS``); it is picked up here by name.
"""

from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .estate import VENDOR_SECTIONS, Estate, load_estate, vendor_module
from .github import GitHubEmulator

log = logging.getLogger("sandbox")


class _QuietHandler(WSGIRequestHandler):
    """The emulators keep their own request log (with tokens reduced to 4 chars); silence werkzeug's."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            log.debug("http server: " + message, *args)


@dataclass
class _Vendor:
    name: str
    build: Callable[..., Any]  # (estate, *, reload, **options) -> WSGI app with .stop()
    url_suffix: str


def _build_github(estate: Estate, *, reload: Callable[[], Estate], app_keys: dict | None = None) -> GitHubEmulator:
    return GitHubEmulator(estate, app_keys=app_keys, reload=reload)


def _vendors() -> list[_Vendor]:
    """GitHub, plus every vendor whose emulator module exists (``sandbox/<name>.py``)."""
    out = [_Vendor("github", _build_github, GitHubEmulator.url_suffix)]
    for name in VENDOR_SECTIONS:
        mod = vendor_module(name)
        if mod is not None:
            out.append(_Vendor(name, mod.build, mod.URL_SUFFIX))
    return out


_VENDORS: list[_Vendor] = _vendors()


class _Running:
    def __init__(self, vendor: _Vendor, app: Any, server: BaseWSGIServer, thread: threading.Thread):
        self.vendor = vendor
        self.app = app
        self.server = server
        self.thread = thread

    @property
    def root_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"


class Sandbox:
    """Local emulators of the vendors' APIs, seeded from one estate.

    ``estate`` is a path to a YAML estate file, an already-parsed mapping, or an ``Estate``.
    ``now`` is the clock for relative times when the estate has no ``now:`` key.
    ``app_keys`` maps GitHub App ids to their public (or private) PEM keys, for apps whose
    estate entry has no ``public_key``. ``port`` pins the GitHub port (0 = any free port).
    """

    def __init__(
        self,
        estate: str | Path | dict[str, Any] | Estate,
        *,
        now: datetime | None = None,
        app_keys: dict[int | str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        ports: dict[str, int] | None = None,
    ):
        self._source = estate
        # An Estate object has no file to re-read: keep a pristine copy so reset() can restore it.
        self._pristine = copy.deepcopy(estate) if isinstance(estate, Estate) else None
        self._now = now
        self.host = host
        self._ports = dict(ports or {})
        if port:
            self._ports.setdefault("github", port)
        self.estate = self._load()
        self._options = {"github": {"app_keys": app_keys}}
        self._running: dict[str, _Running] = {}
        self.apps: dict[str, Any] = {}
        for vendor in _VENDORS:
            self.apps[vendor.name] = vendor.build(
                self.estate, reload=self._reload_everywhere, **self._options.get(vendor.name, {})
            )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> "Sandbox":
        if self._running:
            return self
        try:
            for vendor in _VENDORS:
                app = self.apps[vendor.name]
                server = make_server(
                    self.host,
                    self._ports.get(vendor.name, 0),
                    app,
                    threaded=True,
                    request_handler=_QuietHandler,
                )
                thread = threading.Thread(
                    target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"sandbox-{vendor.name}", daemon=True
                )
                thread.start()
                self._running[vendor.name] = _Running(vendor, app, server, thread)
                started = getattr(app, "on_started", None)
                if started is not None:  # e.g. seed a server that is filled through its own API
                    started(self._running[vendor.name].root_url)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for running in self._running.values():
            stop = getattr(running.app, "stop", None)
            if stop is not None:
                stop()
            running.server.shutdown()
            running.server.server_close()
            running.thread.join(timeout=5)
        self._running.clear()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- state -----------------------------------------------------------------------------

    def _load(self) -> Estate:
        if isinstance(self._source, Estate):
            return self._source
        return load_estate(self._source, now=self._now)

    def _reload(self) -> Estate:
        """Reload the estate from its source, keeping the first load's clock so times don't drift."""
        if self._pristine is not None:
            estate = copy.deepcopy(self._pristine)
        else:
            estate = load_estate(self._source, now=self._now or self.estate.now)  # type: ignore[arg-type]
        self.estate = estate
        return estate

    def reset(self) -> None:
        """Reload the estate into every emulator (as ``POST /_emu/reset`` on any of them does).

        Fault counters, rate-limit windows and request logs start afresh; installation tokens
        already issued stay valid while their app and installation still exist.
        """
        estate = self._reload()
        for app in self.apps.values():
            app.set_estate(estate)

    def _reload_everywhere(self) -> Estate:
        self.reset()
        return self.estate

    # -- accessors -------------------------------------------------------------------------

    @property
    def github(self) -> GitHubEmulator:
        return self.apps["github"]

    def url(self, vendor: str) -> str:
        """The API base URL of one vendor emulator, e.g. ``url('github')``."""
        running = self._running.get(vendor)
        if running is None:
            raise RuntimeError("the sandbox is not running: use `with Sandbox(...)` or call start()")
        return running.root_url + running.vendor.url_suffix

    def root_url(self, vendor: str) -> str:
        """The server root of one vendor emulator (where ``/_emu/`` lives)."""
        running = self._running.get(vendor)
        if running is None:
            raise RuntimeError("the sandbox is not running: use `with Sandbox(...)` or call start()")
        return running.root_url

    @property
    def github_url(self) -> str:
        """GitHub API base, Enterprise Server style: ``http://127.0.0.1:PORT/api/v3``."""
        return self.url("github")

    @property
    def urls(self) -> dict[str, str]:
        return {name: self.url(name) for name in self._running}

    @property
    def request_log(self) -> list[dict[str, Any]]:
        """Every request any emulator served, oldest first; each entry has a ``vendor`` key."""
        entries = []
        for name, app in self.apps.items():
            for entry in app.request_log:
                entries.append({"vendor": name, **entry})
        return sorted(entries, key=lambda e: e["time"])

    def clear_request_log(self) -> None:
        for app in self.apps.values():
            app.clear_request_log()

    @property
    def tokens(self) -> dict[str, list[str]]:
        """The credentials the estate defines, per vendor (they are fake; for demos and tests)."""
        return {"github": [t.token for t in self.estate.github.tokens]}


def generate_app_key_pair() -> tuple[bytes, bytes]:
    """A fresh RSA key pair for a GitHub App: (private PEM, public PEM).

    The public half is registered with the emulator (``app_keys``); the private half is what
    a client signs its JWT with.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public

