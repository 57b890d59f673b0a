"""What every vendor emulator shares, so that it is written (and fixed) once.

Each vendor emulator (``sandbox/<vendor>.py``) is a WSGI app serving one vendor's API from the
live estate. Beyond the vendor's own wire format they all need the same plumbing, and it must
behave the same everywhere because ``sandbox.server``, the tests and ``nhiscan demo`` drive every
emulator alike:

* a **request log** that never holds a secret (a credential is cut to its last 4 characters)
  and is guarded by the emulator's lock: ``request_log``, ``clear_request_log()``;
* the lifecycle ``sandbox.server`` relies on: ``mutate()``, ``set_estate()``, ``reset()``,
  ``stop()`` (see ``sandbox/README.md``, "Adding a vendor");
* the **control plane**: ``GET``/``DELETE /_emu/requests`` and ``POST /_emu/reset``;
* the WSGI entry point: a bug in a handler becomes a vendor-shaped 500 and a loud log line, and
  every request served is logged exactly once, with its status and injected fault;
* **fault selection** per credential, with the ``after``/``times`` counters;
* small wire helpers: JSON responses, the half body of a ``malformed_json`` fault, ``Link``
  headers and page-number pagination (GitHub and GitLab page the same way).

What differs on the wire stays in the vendor module: routing, authentication, error bodies,
headers, rate limits and the JSON shapes. A vendor plugs in by overriding the hooks of
:class:`Emulator` (``_begin``, ``_serve``, ``_log_request``, ``_crash_response``, ...).

This module has no ``from __future__ import annotations``: the estate loader resolves the
annotations of :class:`RequestFault` (an estate dataclass) as real objects.
"""

import fnmatch
import json
import logging
import math
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterator, Optional, Sequence, TypeVar
from urllib.parse import urlencode

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:  # estate.py builds its GitHub fault spec on RequestFault: no import cycle at runtime
    from .estate import Estate

F = TypeVar("F")
S = TypeVar("S")  # a vendor's estate section (``OktaEstate``, ...)

#: The control plane's routes, under every emulator's server root.
CONTROL_PREFIX = "/_emu/"


# --------------------------------------------------------------------------------------------
# Request log


def log_time() -> str:
    """A request log entry's ``time``: UTC with microseconds, so entries of all vendors sort together."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def token_suffix(credential: Optional[str]) -> Optional[str]:
    """The most of a credential the sandbox ever keeps or logs: its last 4 characters."""
    return credential[-4:] if credential else None


def request_entry(request: Request, path: str, credential: Optional[str], status: int, fault: Optional[str],
                  **extra: Any) -> dict[str, Any]:
    """The request log entry of a REST call: time, method, path with query, token suffix, ``extra``, status, fault.

    The query string is kept as sent (these APIs take credentials in headers, never in the query);
    a body never is.
    """
    query = request.query_string.decode("latin-1")
    return {
        "time": log_time(),
        "method": request.method,
        "path": path + (f"?{query}" if query else ""),
        "token": token_suffix(credential),
        **extra,
        "status": status,
        "fault": fault,
    }


# --------------------------------------------------------------------------------------------
# Faults


@dataclass
class RequestFault:
    """One injected failure for the HTTP requests made with one credential (an estate ``faults`` entry).

    ``path`` is a glob over the API path and ``method`` an HTTP method (unset: any). The fault is
    due from the ``after``-th matching request on, for ``times`` requests (unset: for ever);
    ``retry_after`` and ``seconds`` shape rate-limit and ``timeout`` faults. A vendor subclasses
    it to narrow ``fault`` to the kinds it emulates, which the estate loader then checks.
    """

    path: str
    fault: str
    times: Optional[int] = None
    after: int = 0
    retry_after: int = 1
    seconds: float = 5.0
    method: Optional[str] = None


def request_fault(method: str, path: str) -> Callable[[Any], bool]:
    """Match a fault by HTTP request: its ``method`` (unset: any) and its ``path`` glob."""

    def matches(fault: Any) -> bool:
        return (not fault.method or fault.method == method) and fnmatch.fnmatchcase(path, fault.path)

    return matches


def half(payload: bytes) -> bytes:
    """The first half of a response body (at least one byte): what a ``malformed_json`` fault sends."""
    return payload[: max(1, len(payload) // 2)]


# --------------------------------------------------------------------------------------------
# Responses and pagination


def json_response(body: Any, status: int = 200, headers: Optional[dict[str, str]] = None, *,
                  content_type: str = "application/json") -> Response:
    """A JSON response; each vendor passes the exact ``Content-Type`` its API sends."""
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type=content_type)


def route_map(rules: list[Rule]) -> Map:
    """The werkzeug routes of a vendor API: ``/users/`` matches ``/users`` as on the real APIs, and
    a doubled slash is never answered with a redirect (werkzeug's default), which clients don't expect."""
    return Map(rules, strict_slashes=False, merge_slashes=False)


def status_line(status: int) -> str:
    """A raw WSGI status line with the standard reason phrase (``204 No Content``)."""
    return f"{status} {HTTPStatus(status).phrase}"


def int_arg(value: Optional[str], default: int) -> int:
    """A query argument as an int; missing, empty or not a number: ``default`` (as the APIs do)."""
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class PageWindow:
    """Where one page of a page-numbered listing (``?page=N&per_page=M``) falls."""

    page: int  # from 1; may be past the last page (an empty page, as the APIs answer)
    per_page: int
    last: int  # the last page number (1 for an empty listing)
    total: int

    def chunk(self, items: Sequence[F]) -> list[F]:
        return list(items[(self.page - 1) * self.per_page : self.page * self.per_page])

    @property
    def prev(self) -> int:
        """The ``prev`` page: the one before, or the last one when ``page`` is past the end."""
        return min(self.page - 1, self.last)


def numbered_page(args: Any, total: int, *, default_size: int, max_size: int = 100) -> PageWindow:
    """Read ``page`` and ``per_page`` the way GitHub and GitLab do: a bad or non-positive
    ``per_page`` is the default, a large one is clamped, ``page`` is at least 1."""
    per_page = int_arg(args.get("per_page"), default_size)
    per_page = default_size if per_page < 1 else min(per_page, max_size)
    page = max(1, int_arg(args.get("page"), 1))
    return PageWindow(page=page, per_page=per_page, last=max(1, math.ceil(total / per_page)), total=total)


def page_url(url: str, args: Any, *params: tuple[str, str]) -> str:
    """``url`` with the request's query arguments kept, except ``page``/``per_page``, then ``params``."""
    pairs = [(k, v) for k, v in args.items(multi=True) if k not in ("page", "per_page")]
    return f"{url}?{urlencode(pairs + list(params))}"


def link(url: str, rel: str) -> str:
    """One RFC 8288 link: ``<url>; rel="next"``."""
    return f'<{url}>; rel="{rel}"'


def link_header(links: Sequence[tuple[str, str]]) -> str:
    """A ``Link`` header value from ``(url, rel)`` pairs, in order."""
    return ", ".join(link(url, rel) for url, rel in links)


# --------------------------------------------------------------------------------------------
# The base class


class Emulator(Generic[S]):
    """The common part of a vendor emulator (a WSGI app); subclasses supply the vendor.

    ``state`` is the vendor's live estate section: tests change it (under :meth:`mutate`) and the
    next request sees the change. A subclass defines ``state``, ``vendor`` and ``url_suffix``,
    and, to use the request pipeline of :meth:`_handle`, ``_begin``, ``_serve``,
    ``_log_request`` and ``_crash_response``.
    """

    vendor: str = ""
    url_suffix: str = ""
    #: The word the log line uses for what ``token``/``key`` in a log entry is a suffix of.
    credential_word = "token"
    #: The control plane's JSON ``Content-Type`` (each vendor's own, so clients parse it alike).
    control_content_type = "application/json"
    #: Whether ``HEAD /_emu/requests`` is answered like ``GET`` (GitHub's control plane always has).
    control_head_is_get = False

    def __init__(self, estate: "Estate", *, reload: Optional[Callable[[], "Estate"]] = None):
        self.estate = estate
        self._reload = reload
        # One re-entrant lock guards the estate, the counters and the log: handlers hold it while
        # they read the estate, tests while they change it (``mutate``).
        self._lock = threading.RLock()
        self._stopping = threading.Event()  # set by stop(): wakes requests held by a timeout fault
        self._fault_hits: dict[tuple[str, int], int] = {}  # (credential identity, fault index) -> matches
        self._request_log: list[dict[str, Any]] = []
        self._logger = logging.getLogger(f"sandbox.{self.vendor}")

    # -- public Python API -----------------------------------------------------------------

    @property
    def state(self) -> S:
        raise NotImplementedError

    def _section(self, empty: Callable[[], S]) -> S:
        """This vendor's section of the estate; an empty one is created (and kept) when absent."""
        section = self.estate.vendors.get(self.vendor)
        if section is None:
            section = self.estate.vendors[self.vendor] = empty()
        return section

    @property
    def request_log(self) -> list[dict[str, Any]]:
        """A copy of the request log, oldest first; credentials appear as their last 4 characters."""
        with self._lock:
            return [dict(e) for e in self._request_log]

    def clear_request_log(self) -> None:
        with self._lock:
            self._request_log.clear()

    @contextmanager
    def mutate(self) -> Iterator[S]:
        """Hold the emulator's lock while changing ``state`` so no request sees half a change."""
        with self._lock:
            yield self.state

    def set_estate(self, estate: "Estate") -> None:
        """Swap in a freshly loaded estate (what a reset does): fault counters and the log start afresh.

        Subclasses that keep more per-estate state clear it too, holding the lock.
        """
        with self._lock:
            self.estate = estate
            self._fault_hits.clear()
            self._request_log.clear()

    def reset(self) -> None:
        """Reload the estate from its source (the sandbox's reload reaches every emulator)."""
        if self._reload is None:
            raise RuntimeError("this emulator was built without a reload function")
        self.set_estate(self._reload())

    def stop(self) -> None:
        """Wake up any request sleeping in a ``timeout`` fault."""
        self._stopping.set()

    # -- WSGI plumbing ---------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        try:
            response = self._handle(request)
        except Exception:  # pragma: no cover - a bug in the emulator, surfaced loudly
            self._logger.error("%s emulator crashed on %s %s\n%s", self.vendor, request.method, request.path,
                               traceback.format_exc())
            response = self._crash_response()
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        """Control plane, or: begin the call, serve it and log it once, whatever happens."""
        path = self._route_path(request)
        if path.startswith(CONTROL_PREFIX):
            return self._control(request, path)
        call = self._begin(request, path)
        if isinstance(call, Response):  # not an API path at all: answered, not logged
            return call
        started = time.monotonic()
        status, fault = 500, None
        try:
            response, fault = self._serve(call)
            status = response.status_code
            return response
        finally:
            self._log_request(call, status, fault, time.monotonic() - started)

    def _route_path(self, request: Request) -> str:
        """The path the control plane and the routes see (a vendor may strip an API prefix)."""
        return request.path

    def _begin(self, request: Request, path: str) -> Any:
        """The per-request context handed to ``_serve``, or a ``Response`` to send unlogged."""
        raise NotImplementedError

    def _serve(self, call: Any) -> tuple[Response, Optional[str]]:
        """Answer one API call: the response and the kind of fault injected (None if none)."""
        raise NotImplementedError

    def _log_request(self, call: Any, status: int, fault: Optional[str], elapsed: float) -> None:
        raise NotImplementedError

    def _crash_response(self) -> Response:
        """The vendor's own 500, for a bug in the emulator."""
        raise NotImplementedError

    def _record(self, entry: dict[str, Any], *, elapsed: Optional[float] = None, what: Optional[str] = None,
                credential_field: str = "token") -> None:
        """Append ``entry`` to the request log and log one line about it.

        Never a token value or a body: the last 4 characters of the credential at most.
        """
        self._append_log(entry)
        fault = entry["fault"]
        self._logger.info(
            "%s %s -> %s%s (%s …%s%s)",
            entry["method"],
            what or entry["path"],
            entry["status"],
            f" [fault {fault}]" if fault else "",
            self.credential_word,
            entry[credential_field] or "none",
            "" if elapsed is None else f", {elapsed * 1000:.0f} ms",
        )

    def _append_log(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._request_log.append(entry)

    # -- control plane ---------------------------------------------------------------------

    def _control_answer(self, method: str, path: str) -> tuple[int, Any]:
        """The control plane as data: ``(status, JSON body)``; a body of ``None`` is an empty 204."""
        if self.control_head_is_get and method == "HEAD":
            method = "GET"
        if path == "/_emu/requests" and method == "GET":
            return 200, self.request_log
        if path == "/_emu/requests" and method == "DELETE":
            self.clear_request_log()
            return 204, None
        if path == "/_emu/reset" and method == "POST":
            try:
                self.reset()
            except Exception as e:  # an edited estate file may now be invalid: say so
                return 500, self._reset_failed_body(e)
            return 200, {"ok": True}
        return 404, self._control_not_found_body()

    def _reset_failed_body(self, err: Exception) -> Any:
        return {"message": f"reset failed: {err}"}

    def _control_not_found_body(self) -> Any:
        return {"message": "Not Found"}

    def _control(self, request: Request, path: str) -> Response:
        status, body = self._control_answer(request.method, path)
        if body is None:
            return Response(b"", status=status)
        return json_response(body, status, content_type=self.control_content_type)

    # -- faults ----------------------------------------------------------------------------

    def _select_fault(self, identity: str, faults: Sequence[F], matches: Callable[[F], bool]) -> Optional[F]:
        """The first of a credential's ``faults`` that matches this request and is due.

        Every match counts, per credential (``identity``) and fault: a fault is due from its
        ``after``-th match on, for ``times`` matches (unset: for ever). Counting every match,
        due or not, is what lets "fail the 3rd call only" be written as ``after: 2, times: 1``.
        """
        if not faults:
            return None
        with self._lock:
            for index, fault in enumerate(faults):
                if not matches(fault):
                    continue
                key = (identity, index)
                seen = self._fault_hits.get(key, 0)
                self._fault_hits[key] = seen + 1
                if seen < fault.after:  # type: ignore[attr-defined]
                    continue
                if fault.times is not None and seen - fault.after >= fault.times:  # type: ignore[attr-defined]
                    continue
                return fault
        return None

    def _stall(self, fault: Any) -> None:
        """Serve a ``timeout`` fault: hold the request for ``fault.seconds`` (or until the sandbox
        stops), so the client's own timeout fires; then it is answered normally."""
        if fault is not None and fault.fault == "timeout":
            self._stopping.wait(fault.seconds)
