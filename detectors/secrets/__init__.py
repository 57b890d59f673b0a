"""Secret detection: detect-secrets' definitions of a secret, fast, plus the NHI formats it lacks.

Public API::

    from detectors.secrets import scan_text, scan_files, SecretScanner, Hit

    hits = scan_text(text, "config/settings.py")     # in this process
    hits = scan_files(paths)                          # worker processes
    with SecretScanner() as scanner:                  # one pool for many calls
        per_item = scanner.scan_texts([(name, text), ...])

A :class:`Hit` holds the type, filename, line number and detect-secrets'
``hashed_secret`` (SHA-1, for parity with its baselines), plus the secret value
*in memory only* so the caller can store ``keyed_hash(hmac_key, hit.secret)``
and ``redacted_preview(hit.secret)``; the value never appears in its repr.

``extra_plugins=False`` runs exactly detect-secrets' built-in plugins (what
``detect-secrets scan`` runs); the default adds ``plugins.py``.
"""

from __future__ import annotations

from typing import Sequence

from detectors.secrets.engine import (
    EXTRA_PLUGINS_PATH,
    Hit,
    SecretScanner,
    iter_files,
    scan_path_here,
    scan_text_here,
)


def scan_text(text: str, filename: str, *, extra_plugins: bool = True) -> list[Hit]:
    """Secrets in one text, as if it were the file ``filename`` (its extension picks the rules)."""
    return scan_text_here(text, filename, extra_plugins=extra_plugins)


def scan_files(paths: Sequence[str], *, workers: int | None = None, extra_plugins: bool = True) -> list[Hit]:
    """Secrets in these files, scanned by worker processes; sorted by file, line and type."""
    with SecretScanner(workers=workers, extra_plugins=extra_plugins) as scanner:
        return scanner.scan_files(paths)


__all__ = [
    "EXTRA_PLUGINS_PATH",
    "Hit",
    "SecretScanner",
    "iter_files",
    "scan_files",
    "scan_path_here",
    "scan_text",
]
