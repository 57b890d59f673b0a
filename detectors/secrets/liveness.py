"""Optional: is a leaked token still live? Asked of the configured source's own API, never a third party.

Off by default; a source turns it on with ``verify_live = true``. A leaked GitHub
token is tried against the ``[[sources.github]]`` tenants of the same config
(``GET /user``), a GitLab token against ``[[sources.gitlab]]`` (``GET
/api/v4/user``), a Slack token against ``[[sources.slack]]`` (``auth.test``). A
format with no configured source of its kind is not checked at all: nhiscan
never sends a found credential anywhere the operator did not configure.

The call only reads who the token is (no side effect). Its answer is kept as
``Exposure.live`` with the source that gave it; the value is used in memory for
that one request and never logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import requests

log = logging.getLogger("nhiscan.secrets.liveness")

# secret type -> the source kind whose API can tell
SOURCE_KIND = {
    "GitHub Token": "github",
    "GitHub Fine-Grained Token": "github",
    "GitLab Token": "gitlab",
    "GitLab Token (extended)": "gitlab",
    "Slack Token": "slack",
}


@dataclass(frozen=True)
class Liveness:
    live: bool | None  # None: no configured source could tell
    source: str | None = None  # the source whose API answered


def _github(base_url: str, value: str, timeout: float) -> bool | None:
    r = requests.get(base_url.rstrip("/") + "/user", timeout=timeout,
                     headers={"Authorization": f"token {value}", "Accept": "application/vnd.github+json"})
    return True if r.status_code == 200 else False if r.status_code == 401 else None


def _gitlab(base_url: str, value: str, timeout: float) -> bool | None:
    base = base_url.rstrip("/").removesuffix("/api/v4")
    r = requests.get(base + "/api/v4/user", timeout=timeout, headers={"PRIVATE-TOKEN": value})
    return True if r.status_code == 200 else False if r.status_code == 401 else None


def _slack(base_url: str, value: str, timeout: float) -> bool | None:
    r = requests.post(base_url.rstrip("/") + "/auth.test", timeout=timeout, headers={"Authorization": f"Bearer {value}"})
    try:
        body = r.json()
    except ValueError:
        return None
    if body.get("ok") is True:
        return True
    return False if body.get("error") in ("invalid_auth", "token_revoked", "account_inactive", "not_authed") else None


_CHECKS: dict[str, Callable[[str, str, float], bool | None]] = {"github": _github, "gitlab": _gitlab, "slack": _slack}


def check_live(secret_type: str, value: str, config: Any, *, timeout: float = 10.0) -> Liveness:
    """Whether ``value`` authenticates against a configured source of the right kind."""
    kind = SOURCE_KIND.get(secret_type)
    if kind is None or config is None:
        return Liveness(None)
    dead_at = None
    for source in getattr(config.sources, kind, []):
        try:
            answer = _CHECKS[kind](source.base_url, value, timeout)
        except requests.RequestException as err:
            log.info("liveness check against %s failed: %s", source.name, type(err).__name__)
            continue
        if answer is True:
            return Liveness(True, source.name)
        if answer is False:
            dead_at = dead_at or source.name
    return Liveness(False, dead_at) if dead_at else Liveness(None)


def checker(config: Any, enabled: bool) -> Callable[[str, str], Liveness] | None:
    """The check a collector calls per hit, or None when the source did not opt in."""
    if not enabled:
        return None
    return lambda secret_type, value: check_live(secret_type, value, config)
