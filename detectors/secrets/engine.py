"""A fast driver for detect-secrets' own plugins and filters.

Why this exists: ``detect-secrets scan`` runs every plugin on every line and
calls every filter through its dependency injection (``inspect`` per call), so
most of its time goes to plugins that cannot match. We keep its definitions of
a secret -- its plugin objects, its transformers, its filters, its hash -- and
change only *which lines* reach them:

1. **Prefilters.** Each plugin has a gate: a pattern that every line the plugin
   can report on must contain (a keyword, a token prefix, a quoted
   high-entropy string). Gates run over the whole file at once, grouped into a
   few combined regexes, and map their hits to line numbers. A gate is a
   necessary condition, never a sufficient one: the plugin itself still
   decides, so a gate can only cost time, never change a finding.
2. **Only candidate lines** then go through detect-secrets' own per-line path
   (line filters, ``plugin.analyze_line``, secret and context filters), in the
   same order, with the same code snippet, so the result is the same set.
3. **Worker processes.** detect-secrets' settings are process-global (and its
   caches are not thread-safe), so each worker process configures them once
   and scans batches of files; the parent never touches them.

The per-file flow mirrors ``detect_secrets.core.scan.scan_file``: filename
filters, then the non-eager transformers (YAML, INI) or the raw lines, and only
if that pass finds nothing, the eager transformers. Findings are deduplicated
per (file, type, hashed secret) keeping the first line, as detect-secrets'
``SecretsCollection`` does. ``tests/test_secrets_engine.py`` holds the engine to
the exact set ``detect-secrets scan --all-files`` reports on a real corpus.

Secret values stay in memory: a :class:`Hit` carries the value for the caller
to hash with its installation key, and its ``repr`` never shows it.
"""

from __future__ import annotations

import bisect
import io
import logging
import multiprocessing
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

log = logging.getLogger(__name__)

#: Our extra plugins, loaded through detect-secrets' custom plugin mechanism.
EXTRA_PLUGINS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins.py")

_INVALID_FILE_FILTER = "detect_secrets.filters.common.is_invalid_file"


@dataclass(frozen=True, slots=True)
class Hit:
    """One secret detect-secrets' definitions report, at its first line in one file.

    ``secret`` is the credential's value, held in memory only so the caller can
    compute its keyed hash and preview; it is excluded from ``repr`` and
    comparisons. ``hashed_secret`` is detect-secrets' own SHA-1 of what *it*
    calls the secret (what its baselines store), for parity with the stock CLI.
    The two differ only where detect-secrets keeps a token's prefix alone (see
    :func:`full_value`).
    """

    type: str
    filename: str
    line_number: int
    hashed_secret: str
    secret: str = field(repr=False, compare=False)

    @property
    def key(self) -> tuple[str, int, str, str]:
        return (self.filename, self.line_number, self.type, self.hashed_secret)


# --- detect-secrets settings (one configuration per process) ------------------------

_configured: bool | None = None  # None: not yet; else whether the extra plugins are on
_lock = threading.Lock()


def configure_detect_secrets(extra_plugins: bool = True) -> None:
    """Put detect-secrets' process-global settings in the state ``detect-secrets scan`` uses.

    All built-in plugins with their default options, the default filters, no
    verification (it calls vendors' APIs: a third party, which nhiscan never
    calls), plus our plugins file when ``extra_plugins``.
    """
    global _configured
    if _configured is extra_plugins:
        return
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.settings import cache_bust, get_settings

    cache_bust()
    get_mapping_from_secret_type_to_class.cache_clear()
    settings = get_settings()
    settings.clear()
    builtin = [{"name": cls.__name__} for cls in get_mapping_from_secret_type_to_class().values()]
    settings.configure_plugins(builtin)
    if extra_plugins:
        from detect_secrets.core.plugins.util import get_plugins_from_file

        settings.configure_plugins(
            [
                {"name": cls.__name__, "path": f"file://{EXTRA_PLUGINS_PATH}"}
                for cls in get_plugins_from_file(EXTRA_PLUGINS_PATH)
            ]
        )
        get_mapping_from_secret_type_to_class.cache_clear()
    settings.disable_filters("detect_secrets.filters.common.is_ignored_due_to_verification_policies")
    _configured = extra_plugins
    _state.cache = None


# --- prefilters (gates) -----------------------------------------------------------------
#
# Gates for detect-secrets' built-in plugins, by class name. Each pattern is a
# necessary condition for the plugin to report anything on a line: it is a
# substring of what the plugin's own regexes require (see
# detect_secrets/plugins/*.py), and none can match a newline, so a hit always
# lies inside the line that needs it. A plugin may list several patterns (one
# per alternative): its candidate lines are the union.
#
# Each pattern runs on its own: joined into one alternation, a match of one
# gate would consume text another gate needs on the same line, and sre's fast
# path for a literal prefix only applies to a pattern that starts with one, so
# patterns are split at their top-level alternatives.
#
# "cs" patterns are case-sensitive. "ci" ones stand for plugins whose regexes
# are case-insensitive: written in lower case, they run over the lowered text
# of an ASCII file (several times faster than IGNORECASE), and with IGNORECASE
# over a file that is not ASCII (where Unicode case folding, e.g. the Kelvin
# sign for "k", must stay the plugin's).
# A plugin with no gate (an unknown custom plugin) runs on every line.

_ASSIGN_TAIL = r"['\"]?\]? *(?:=|:|:=|=>| +|::) *['\"]?"  # build_assignment_regex after the keyword

BUILTIN_GATES: dict[str, list[tuple[str, str]]] = {
    "ArtifactoryDetector": [("cs", r"AKC[a-zA-Z0-9]{10}"), ("cs", r"AP[\dABCDEF][a-zA-Z0-9]{8}")],
    "AWSKeyDetector": [
        ("cs", r"A3T[A-Z0-9][0-9A-Z]{16}"),
        ("cs", r"ABIA[0-9A-Z]{16}"),
        ("cs", r"ACCA[0-9A-Z]{16}"),
        ("cs", r"AKIA[0-9A-Z]{16}"),
        ("cs", r"ASIA[0-9A-Z]{16}"),
        ("ci", r"aws.{0,20}?(?:key|pwd|pw|password|pass|token).{0,20}?['\"][0-9a-z/+]{40}['\"]"),
    ],
    "AzureStorageKeyDetector": [("cs", r"AccountKey=")],
    "BasicAuthDetector": [("cs", r"://")],
    "CloudantDetector": [
        ("ci", r"cl(?:oudant|ou)?[_-]?(?:api)?(?:key|pwd|pw|pass|token)"),
        ("ci", r"cloudant\.com"),
    ],
    "DiscordBotTokenDetector": [("cs", r"\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27}")],
    "GitHubTokenDetector": [("cs", r"gh[pousr]_")],
    "GitLabTokenDetector": [("cs", r"gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-"), ("cs", r"GR1348941")],
    "IbmCloudIamDetector": [
        ("ci", keyword + _ASSIGN_TAIL + r"[a-z0-9_\-]{44}") for keyword in ("key", "pwd", "password", "pass", "token")
    ],
    "IbmCosHmacDetector": [("ci", r"secret[-_]?(?:access)?[-_]?key" + _ASSIGN_TAIL + r"[a-f0-9]{48}")],
    "IPPublicDetector": [("cs", r"\.\d{1,3}\.\d{1,3}\.\d")],
    "JwtTokenDetector": [("cs", r"eyJ")],
    "KeywordDetector": [
        # every DENYLIST keyword of detect_secrets/plugins/keyword.py contains one of these
        *(("ci", prefix + r"_?key") for prefix in (
            "api", "auth", "service", "account", "db", "database", "priv", "private", "client")),
        ("ci", r"pass"),  # db_?pass, database_?pass, key_?pass, password, passwd
        ("ci", r"pwd"),
        ("ci", r"secret"),
        ("ci", r"contrase(?:ñ|n)a"),
    ],
    "MailchimpDetector": [("cs", r"-us[0-9]")],
    "NpmDetector": [("cs", r"/:_authToken=")],
    "OpenAIDetector": [("cs", r"T3BlbkFJ")],
    "PrivateKeyDetector": [("cs", r"PRIVATE KEY"), ("cs", r"PuTTY-User-Key-File-2")],
    "PypiTokenDetector": [("cs", r"pypi-AgE")],
    "SendGridDetector": [("cs", r"SG\.")],
    "SlackDetector": [("ci", r"xox[abposr]-"), ("ci", r"hooks\.slack\.com/services/t")],
    "SoftlayerDetector": [("ci", r"softlayer"), ("ci", r"sl[_-]?(?:api)?(?:key|pwd|pass|token)")],
    "SquareOAuthDetector": [("cs", r"sq0csp-")],
    "StripeDetector": [("cs", r"k_live_")],
    "TelegramBotTokenDetector": [("cs", r":[0-9A-Za-z_-]{35}")],
    "TwilioKeyDetector": [("cs", r"AC[a-z0-9]{32}"), ("cs", r"SK[a-z0-9]{32}")],
}


@dataclass
class _Gate:
    """One pattern that a plugin's candidate lines must contain."""

    plugin: int
    regex: re.Pattern
    lowered: bool = False  # run over the lowered text (ASCII) -- ``regex_ignorecase`` otherwise
    regex_ignorecase: re.Pattern | None = None
    accept: Callable[[re.Match], bool] | None = None  # a further check of each match
    literal: str = ""  # a literal every match starts with: a fast ``in`` test before the regex

    def __post_init__(self) -> None:
        self.literal = literal_prefix(self.regex)


@dataclass
class _Gates:
    plugins: list  # detect-secrets plugin instances, in detect-secrets' order
    gates: list[_Gate]
    ungated: list[int]  # plugins without a gate: every line is a candidate


def literal_prefix(regex: re.Pattern) -> str:
    """The literal text every match of ``regex`` starts with ('' when there is none)."""
    import re._constants as sre_constants
    import re._parser as sre_parse

    if regex.flags & re.IGNORECASE:
        return ""
    prefix = []
    for op, value in sre_parse.parse(regex.pattern, regex.flags):
        if op is not sre_constants.LITERAL:
            break
        prefix.append(chr(value))
    return "".join(prefix)


def _entropy_gate(index: int, plugin) -> _Gate:
    """The exact quoted strings a high-entropy plugin examines, kept if they pass its limit.

    The gate runs the plugin's own pattern (``(['"])([charset]+)\\1``) over the
    whole text: no match can cross a newline, so within each line it finds the
    same strings, in the same order, as the plugin's ``findall`` on that line.
    Then it keeps a match only if the plugin's own entropy function puts it
    over the limit. Shannon entropy is at most log2 of the number of distinct
    characters, so strings with too few distinct characters are skipped first.
    """
    min_distinct = int(2 ** plugin.entropy_limit)  # entropy > limit needs more distinct chars than this

    def accept(match: re.Match) -> bool:
        value = match.group(2)
        if len(value) <= min_distinct or len(set(value)) <= min_distinct:
            return False
        return plugin.calculate_shannon_entropy(value) > plugin.entropy_limit

    return _Gate(index, plugin.regex, accept=accept)


def build_gates(plugins: Sequence) -> _Gates:
    from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin

    gates: list[_Gate] = []
    ungated: list[int] = []
    for index, plugin in enumerate(plugins):
        name = type(plugin).__name__
        builtin = type(plugin).__module__.startswith("detect_secrets.plugins.")
        if isinstance(plugin, HighEntropyStringsPlugin) and plugin.regex.pattern.startswith("(["):
            gates.append(_entropy_gate(index, plugin))
        elif builtin and name in BUILTIN_GATES:
            for kind, pattern in BUILTIN_GATES[name]:
                if kind == "ci":
                    gates.append(_Gate(index, re.compile(pattern), True, re.compile(pattern, re.IGNORECASE)))
                else:
                    gates.append(_Gate(index, re.compile(pattern)))
        elif isinstance(getattr(plugin, "prefilter", None), re.Pattern):
            gates.append(_Gate(index, plugin.prefilter))
        else:
            ungated.append(index)
    return _Gates(plugins=list(plugins), gates=gates, ungated=ungated)


def candidate_offsets(gates: _Gates, text: str) -> list[tuple[int, int]]:
    """(offset, plugin index) for every gate hit in ``text``."""
    hits: list[tuple[int, int]] = []
    lowered: str | None = None
    ascii_text = text.isascii()
    for gate in gates.gates:
        if gate.lowered:
            if ascii_text:
                if lowered is None:
                    lowered = text.lower()
                if gate.literal not in lowered:
                    continue
                found = gate.regex.finditer(lowered)
            else:
                found = gate.regex_ignorecase.finditer(text)
        else:
            if gate.literal not in text:
                continue
            found = gate.regex.finditer(text)
        if gate.accept is None:
            hits.extend((m.start(), gate.plugin) for m in found)
        else:
            hits.extend((m.start(), gate.plugin) for m in found if gate.accept(m))
    return hits


# --- one file ---------------------------------------------------------------------------


class _NamedText(io.StringIO):
    """Text with a ``name``: what detect-secrets' transformers expect of an open file."""

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self.name = name


class _State:
    cache: _Gates | None = None


_state = _State()


def _gates() -> _Gates:
    from detect_secrets.settings import get_plugins

    if _state.cache is None:
        _state.cache = build_gates(get_plugins())
    return _state.cache


def _split_lines(text: str) -> list[str]:
    """The lines ``readlines()`` gives on a file opened in text mode (newline already '\\n')."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _candidates_in_raw(gates: _Gates, text: str) -> dict[int, set[int]]:
    """Line index -> plugin indexes, for text whose lines are split on '\\n'."""
    hits = candidate_offsets(gates, text)
    by_line: dict[int, set[int]] = {}
    line, last = 0, 0
    for offset, plugin in sorted(hits):
        line += text.count("\n", last, offset)
        last = offset
        by_line.setdefault(line, set()).add(plugin)
    return by_line


def _candidates_in_lines(gates: _Gates, lines: list[str]) -> dict[int, set[int]]:
    """Line index -> plugin indexes, for a list of lines (which may hold newlines)."""
    starts, position = [], 0
    for line in lines:
        starts.append(position)
        position += len(line) + 1
    text = "\n".join(lines)
    by_line: dict[int, set[int]] = {}
    for offset, plugin in candidate_offsets(gates, text):
        by_line.setdefault(bisect.bisect_right(starts, offset) - 1, set()).add(plugin)
    return by_line


def _scan_candidates(filename: str, lines: list[str], by_line: dict[int, set[int]], gates: _Gates) -> list:
    """detect-secrets' ``_process_line_based_plugins``, on the candidate lines only."""
    from detect_secrets.core.scan import _is_filtered_out, _scan_line
    from detect_secrets.util.code_snippet import get_code_snippet

    if gates.ungated:
        by_line = {i: by_line.get(i, set()) | set(gates.ungated) for i in range(len(lines))}
    found = []
    for index in sorted(by_line):
        line_number = index + 1
        line = lines[index].rstrip()
        context = get_code_snippet(lines=lines, line_number=line_number)
        # detect-secrets applies the line filters before the plugins; they are
        # pure predicates, so applying them only to lines that yield a secret
        # gives the same set and skips their (costly) regexes on the rest.
        on_line = []
        for plugin_index in sorted(by_line[index]):
            plugin = gates.plugins[plugin_index]
            for secret in _scan_line(
                plugin=plugin, filename=filename, line=line, line_number=line_number, context=context
            ):
                if not _is_filtered_out(
                    required_filter_parameters=["context"],
                    filename=secret.filename,
                    secret=secret.secret_value,
                    plugin=plugin,
                    line=line,
                    context=context,
                ):
                    on_line.append((secret, full_value(plugin, line, secret.secret_value)))
        if on_line and not _is_filtered_out(
            required_filter_parameters=["line"], filename=filename, line=line, context=context
        ):
            found.extend(on_line)
    return found


def _filtered_by_name(filename: str, in_memory: bool) -> bool:
    """detect-secrets' filename filters (lock files, binary extensions, swagger...)."""
    from detect_secrets.core.scan import get_filters_with_parameter
    from detect_secrets.util.inject import call_function_with_arguments

    for filter_fn in get_filters_with_parameter("filename"):
        if in_memory and filter_fn.path == _INVALID_FILE_FILTER:
            continue  # the text is not a file on disk
        try:
            if call_function_with_arguments(filter_fn, filename=filename):
                return True
        except TypeError:
            pass  # needs more than a filename: a line or secret filter
    return False


def _scan_one(filename: str, text: str) -> list:
    """All PotentialSecrets detect-secrets' ``scan_file`` would yield for this text."""
    from detect_secrets.transformers import get_transformed_file

    gates = _gates()
    named = _NamedText(text, filename)
    transformed = get_transformed_file(named)
    if transformed:
        found = _scan_candidates(filename, transformed, _candidates_in_lines(gates, transformed), gates)
    else:
        by_line = _candidates_in_raw(gates, text)
        found = _scan_candidates(filename, _split_lines(text), by_line, gates) if by_line or gates.ungated else []
    if found:
        return found
    named.seek(0)
    eager = get_transformed_file(named, use_eager_transformers=True)
    if not eager:
        return []
    return _scan_candidates(filename, eager, _candidates_in_lines(gates, eager), gates)


def _scan_guarded(filename: str, text: str) -> list:
    """One bad file (a parser bug in a transformer) is logged and skipped, never fatal."""
    try:
        return _scan_one(filename, text)
    except Exception as exc:  # noqa: BLE001 - the name of the error only, never the text
        log.warning("secret scan of %s failed: %s", filename, type(exc).__name__)
        return []


def _to_hits(filename: str, found: Iterable) -> list[Hit]:
    """Deduplicate per (type, hash) keeping the first, as ``SecretsCollection`` does."""
    seen: set[tuple[str, str]] = set()
    hits = []
    for secret, value in found:
        key = (secret.type, secret.secret_hash)
        if key in seen:
            continue
        seen.add(key)
        hits.append(Hit(secret.type, filename, secret.line_number, secret.secret_hash, value))
    return hits


def full_value(plugin, line: str, value: str) -> str:
    """The whole credential when detect-secrets' regex captured only its prefix.

    detect-secrets reports a regex's capture group as the secret; for GitHub
    (``(ghp|gho|...)_...``) and GitLab (``(glpat|...)-...``) tokens that group is
    the prefix alone, so every GitHub token "is" ``ghp``. Its ``hashed_secret``
    stays as it computes it (parity); what we hash with the installation key,
    link and compare across places is the whole match.
    """
    for regex in getattr(plugin, "denylist", ()):
        if not regex.groups:
            continue
        for match in regex.finditer(line):
            for group in range(1, regex.groups + 1):
                if (match.group(group) == value and match.start(group) == match.start(0)
                        and match.end(0) > match.end(group)):
                    return match.group(0)
    return value


def scan_text_here(text: str, filename: str, *, extra_plugins: bool = True) -> list[Hit]:
    """Scan one text in this process (serialised: detect-secrets' settings are global)."""
    with _lock:
        configure_detect_secrets(extra_plugins)
        if _filtered_by_name(filename, in_memory=True):
            return []
        return _to_hits(filename, _scan_guarded(filename, _universal_newlines(text)))


def _universal_newlines(text: str) -> str:
    """What reading the text from a file in text mode gives: '\\r\\n' and '\\r' become '\\n'."""
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def scan_path_here(path: str, *, extra_plugins: bool = True) -> list[Hit]:
    """Scan one file in this process, reading it as detect-secrets does (text mode, locale encoding)."""
    with _lock:
        configure_detect_secrets(extra_plugins)
        if _filtered_by_name(path, in_memory=False):
            return []
        try:
            with open(path) as handle:
                text = handle.read()
        except UnicodeDecodeError:
            return []  # binary: detect-secrets skips it
        except OSError as exc:
            log.warning("cannot read %s: %s", path, exc.strerror)
            return []
        return _to_hits(path, _scan_guarded(path, text))


# --- worker processes -----------------------------------------------------------------


def _worker_init(extra_plugins: bool) -> None:
    configure_detect_secrets(extra_plugins)
    _gates()


def _worker_scan_paths(paths: list[str]) -> list[Hit]:
    extra = bool(_configured)
    hits: list[Hit] = []
    for path in paths:
        hits.extend(scan_path_here(path, extra_plugins=extra))
    return hits


def _worker_scan_texts(items: list[tuple[str, str]]) -> list[list[Hit]]:
    extra = bool(_configured)
    return [scan_text_here(text, name, extra_plugins=extra) for name, text in items]


def _batches(items: Sequence, sizes: Sequence[int], budget: int, max_items: int = 256) -> Iterator[list]:
    """Consecutive batches of about ``budget`` bytes: few enough round trips, enough to share out."""
    batch, weight = [], 0
    for item, size in zip(items, sizes):
        batch.append(item)
        weight += size
        if weight >= budget or len(batch) >= max_items:
            yield batch
            batch, weight = [], 0
    if batch:
        yield batch


class SecretScanner:
    """detect-secrets' definitions of a secret, prefiltered, over a pool of worker processes.

    Use as a context manager, or call :meth:`close`. The pool starts on first
    use with the ``spawn`` method: forking a threaded process (the sweep runs
    collectors in threads) is unsafe.

    ``workers=0`` scans in this process, one text at a time.
    """

    def __init__(self, *, workers: int | None = None, extra_plugins: bool = True,
                 batch_bytes: int = 512 * 1024) -> None:
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self.extra_plugins = extra_plugins
        self.batch_bytes = batch_bytes
        self._pool = None

    def __enter__(self) -> "SecretScanner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def _get_pool(self):
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = context.Pool(self.workers, initializer=_worker_init, initargs=(self.extra_plugins,))
        return self._pool

    def scan_files(self, paths: Sequence[str]) -> list[Hit]:
        """Every hit in these files, sorted by (file, line, type)."""
        paths = list(paths)
        if self.workers == 0 or len(paths) <= 1:
            hits = [hit for path in paths for hit in scan_path_here(path, extra_plugins=self.extra_plugins)]
        else:
            sizes = [_size(path) for path in paths]
            hits = []
            for chunk in self._get_pool().imap_unordered(
                _worker_scan_paths, _batches(paths, sizes, self.batch_bytes)
            ):
                hits.extend(chunk)
        return sorted(hits, key=lambda hit: hit.key)

    def scan_texts(self, items: Sequence[tuple[str, str]]) -> list[list[Hit]]:
        """Hits per (filename, text) item, in the order given."""
        items = list(items)
        if self.workers == 0 or len(items) <= 1 or sum(len(t) for _, t in items) < self.batch_bytes:
            return [scan_text_here(text, name, extra_plugins=self.extra_plugins) for name, text in items]
        batches = list(_batches(items, [len(text) for _, text in items], self.batch_bytes))
        out: list[list[Hit]] = []
        for result in self._get_pool().imap(_worker_scan_texts, batches):
            out.extend(result)
        return out


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def iter_files(*roots: str) -> Iterator[str]:
    """Files under ``roots`` the way ``detect-secrets scan --all-files`` lists them (relative to cwd)."""
    cwd = os.getcwd()
    for root in roots:
        if os.path.isfile(root):
            yield os.path.relpath(root, cwd)
            continue
        for directory, _, filenames in os.walk(root):
            for filename in filenames:
                path = os.path.relpath(os.path.join(directory, filename), cwd)
                if not path.startswith(".."):
                    yield path


__all__ = [
    "BUILTIN_GATES",
    "EXTRA_PLUGINS_PATH",
    "Hit",
    "SecretScanner",
    "build_gates",
    "configure_detect_secrets",
    "iter_files",
    "scan_path_here",
    "scan_text_here",
]
