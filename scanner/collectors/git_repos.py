"""Git repositories as a source of leaked secrets: every branch, the full history, incrementally.

For each configured repository (``[[sources.git_repos]]``):

1. ``get_mirror``: a bare mirror under ``state_dir`` is cloned once, then fetched
   (``--prune``) each sweep, over git's HTTP protocol with the source's token. The
   token travels in an ``Authorization`` header set through git's environment
   (``GIT_CONFIG_*``): never on a command line (others can read those), never in
   the mirror's config, never in a log line or an error text.
2. ``list_new_blobs``: if no ref moved since the last sweep, nothing is read at
   all. Otherwise ``git log --raw`` over the new commits only (``<new tips> --not
   <old tips>``) names each blob they introduce with its first commit and path.
3. Blobs already in the **ledger** (blob ids scanned before, in any repository of
   this source) are not read again: a nightly rescan of an unchanged repository
   reads no blob, and a new commit costs only its new blobs. The rest are read
   with one ``git cat-file --batch`` and scanned by the secret engine (worker
   processes).
4. ``transform_exposures`` (pure) turns the ledger's findings for the repository
   into ``Exposure`` records: keyed hash, four-character preview, location
   ``<source>:repo@commit:path:line`` (the records model's form), and identities that link a leak to an inventory
   credential (a hash of an AWS access key id, a keyed hash of a GitHub token's
   last eight characters).

The ledger (``state_dir/<source>/ledger.json``) holds blob ids, ref tips and, for
blobs with findings, their keyed hashes and previews; never a secret value. It is
tied to the HMAC key and to the detection rules' version: when either changes,
everything is scanned afresh.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from detectors.secrets.exposures import hit_entry, type_slug
from scanner.config import Config, ConfigError, GitReposSource, read_secret
from scanner.records import CollectResult, Exposure, InventoryStatus

log = logging.getLogger("nhiscan.collectors.git_repos")

LEDGER_VERSION = 1
_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


class GitError(Exception):
    """A git command failed; the text is safe to show (no credential in it)."""


# --- the ledger: what was scanned, keyed by blob id ------------------------------------------


def rules_version() -> str:
    """Changes when the detection rules change (detect-secrets' version, our plugins file)."""
    from detect_secrets.__version__ import VERSION

    from detectors.secrets import EXTRA_PLUGINS_PATH

    digest = hashlib.sha256(VERSION.encode())
    with open(EXTRA_PLUGINS_PATH, "rb") as handle:
        digest.update(handle.read())
    return digest.hexdigest()[:16]


@dataclass
class BlobLedger:
    """Blob ids already scanned, their findings (hashed), and each repository's ref tips.

    ``hits`` maps a blob id to its findings, each ``[type, line, secret_hmac,
    preview, identities]``; a scanned blob without findings is only in ``scanned``.
    ``repos[repo]`` holds ``tips`` (ref -> commit) and ``exposed`` (blob -> [commit, path]).
    """

    key_id: str = ""  # a hash of the HMAC key the hits were made with
    rules: str = ""
    scanned: set[str] = field(default_factory=set)
    hits: dict[str, list[list[Any]]] = field(default_factory=dict)
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: str | None = None

    @classmethod
    def load(cls, path: str, *, hmac_key: bytes, rules: str) -> "BlobLedger":
        key_id = hashlib.sha256(b"nhiscan-ledger" + hmac_key).hexdigest()[:16]
        fresh = cls(key_id=key_id, rules=rules, path=path)
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return fresh
        except (OSError, ValueError) as err:
            log.warning("git ledger %s unreadable (%s): scanning afresh", path, type(err).__name__)
            return fresh
        if data.get("version") != LEDGER_VERSION or data.get("key_id") != key_id or data.get("rules") != rules:
            log.info("git ledger %s was made with another key or rules version: scanning afresh", path)
            return fresh
        return cls(key_id=key_id, rules=rules, scanned=set(data.get("scanned", ())), hits=data.get("hits", {}),
                   repos=data.get("repos", {}), path=path)

    def save(self) -> None:
        if not self.path:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        data = {"version": LEDGER_VERSION, "key_id": self.key_id, "rules": self.rules,
                "scanned": sorted(self.scanned), "hits": self.hits, "repos": self.repos}
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), prefix=".ledger-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, separators=(",", ":"))
        os.replace(tmp, self.path)  # a crash mid-write leaves the previous ledger intact

    def repo(self, name: str) -> dict[str, Any]:
        return self.repos.setdefault(name, {"tips": {}, "exposed": {}})


# --- git I/O --------------------------------------------------------------------------------


def git_env(token: str | None, username: str) -> dict[str, str]:
    """Environment for git: the token as an HTTP header (process environments are private)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", tempfile.gettempdir()),
        "GIT_TERMINAL_PROMPT": "0",  # never wait for a password on a terminal
        "GIT_ASKPASS": "echo",
        "GIT_CONFIG_NOSYSTEM": "1",
        "LANG": "C",
    }
    if token:
        basic = base64.b64encode(f"{username}:{token}".encode()).decode()
        env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                    "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"})
    return env


def _reason(stderr: str, secrets: Sequence[str]) -> str:
    """A git failure as a reason a person can act on, with any credential removed."""
    for secret in secrets:
        if secret:
            stderr = stderr.replace(secret, "****")
    low = stderr.lower()
    if "401" in low or "authentication failed" in low or "could not read username" in low:
        return "authentication failed (HTTP 401): the token is missing, wrong or expired"
    if "not found" in low or "404" in low:
        return "repository not found, or the token cannot read it (HTTP 404)"
    if "403" in low:
        return "forbidden (HTTP 403): the token lacks read access to the repository contents"
    if "could not resolve host" in low or "connection refused" in low or "failed to connect" in low:
        return "git host unreachable: " + stderr.strip().splitlines()[-1][:160]
    last = stderr.strip().splitlines()[-1] if stderr.strip() else "no error text"
    return f"git failed: {last[:200]}"


def run_git(args: list[str], *, env: dict[str, str], cwd: str | None = None, input: bytes | None = None,
            timeout: float = 600, secrets: Sequence[str] = ()) -> bytes:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, env=env, input=input, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} timed out after {timeout:.0f} s") from None
    if result.returncode != 0:
        raise GitError(_reason(result.stderr.decode("utf-8", "replace"), secrets))
    return result.stdout


def get_mirror(url: str, mirror: str, *, env: dict[str, str], timeout: float, secrets: Sequence[str] = ()) -> None:
    """Clone a bare mirror once; later, fetch what changed (branches and tags, pruned)."""
    if os.path.isdir(os.path.join(mirror, "objects")):
        run_git(["fetch", "--quiet", "--prune", "--no-write-fetch-head", url, "+refs/heads/*:refs/heads/*",
                 "+refs/tags/*:refs/tags/*"], cwd=mirror, env=env, timeout=timeout, secrets=secrets)
        return
    os.makedirs(os.path.dirname(mirror), exist_ok=True)
    partial = mirror + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    run_git(["clone", "--quiet", "--bare", url, partial], env=env, timeout=timeout, secrets=secrets)
    # No remote URL is kept in the mirror's config: each fetch names it.
    run_git(["remote", "remove", "origin"], cwd=partial, env=env)
    run_git(["fetch", "--quiet", url, "+refs/tags/*:refs/tags/*"], cwd=partial, env=env, timeout=timeout, secrets=secrets)
    os.replace(partial, mirror)


def get_default_branch(url: str, *, env: dict[str, str], timeout: float, secrets: Sequence[str] = ()) -> str | None:
    out = run_git(["ls-remote", "--symref", url, "HEAD"], env=env, timeout=timeout, secrets=secrets).decode()
    for line in out.splitlines():
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            return line[5:-5].removeprefix("refs/heads/")
    return None


def list_tips(repo_dir: str, *, env: dict[str, str]) -> dict[str, str]:
    out = run_git(["for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags"], cwd=repo_dir, env=env)
    tips = {}
    for line in out.decode().splitlines():
        sha, _, ref = line.partition(" ")
        tips[ref] = sha
    return tips


def parse_raw_log(text: str) -> Iterator[tuple[str, str, str]]:
    """(blob, commit, path) for each blob a ``git log --raw`` output adds or changes, oldest first."""
    commit = ""
    for line in text.split("\n"):
        if line.startswith("\x00"):
            commit = line[1:].strip()
        elif line.startswith(":"):
            meta, _, path = line.partition("\t")
            parts = meta.split()
            if len(parts) < 5:
                continue
            new_mode, new_sha, status = parts[1], parts[3], parts[4]
            if status.startswith("D") or not new_mode.startswith("100"):
                continue  # deletions, symlinks (120000) and submodules (160000) add no blob content
            if status.startswith(("R", "C")):
                path = path.split("\t")[-1]
            yield new_sha, commit, _unquote(path)


def _unquote(path: str) -> str:
    """git's C-style quoting of unusual paths ("a\\tb")."""
    if len(path) >= 2 and path[0] == '"' and path[-1] == '"':
        return path[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")
    return path


def list_new_blobs(repo_dir: str, new_tips: Iterable[str], old_tips: Iterable[str], *, env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Blob -> (first commit, path) for the blobs the commits reachable from ``new_tips`` but
    not from ``old_tips`` introduce (merges against each parent)."""
    new = sorted(set(new_tips))
    if not new:
        return {}
    args = ["log", "--raw", "--no-abbrev", "--no-renames", "--root", "-m", "--reverse", "--format=%x00%H", *new]
    old = sorted(set(old_tips))
    if old:
        args += ["--not", *old]
    try:
        out = run_git(args, cwd=repo_dir, env=env, timeout=3600)
    except GitError:
        if not old:
            raise
        # An old tip that no longer exists (history rewritten, objects pruned): list everything
        # again; the ledger still keeps every blob from being read twice.
        return list_new_blobs(repo_dir, new, (), env=env)
    found: dict[str, tuple[str, str]] = {}
    for blob, commit, path in parse_raw_log(out.decode("utf-8", "replace")):
        found.setdefault(blob, (commit, path))
    return found


def list_tree_blobs(repo_dir: str, commit: str, *, env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Blob -> (commit, path) for the files of one commit (``history = false``)."""
    out = run_git(["ls-tree", "-r", "-z", "--full-tree", commit], cwd=repo_dir, env=env)
    found = {}
    for entry in out.decode("utf-8", "replace").split("\x00"):
        meta, _, path = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob" and parts[0].startswith("100"):
            found.setdefault(parts[2], (commit, path))
    return found


def read_blobs(repo_dir: str, blobs: Sequence[str], *, env: dict[str, str], max_bytes: int) -> Iterator[tuple[str, bytes | None]]:
    """(blob, content) in order; content is None for a blob over ``max_bytes`` (not read)."""
    if not blobs:
        return
    sizes_out = run_git(["cat-file", "--batch-check=%(objectname) %(objectsize)"], cwd=repo_dir, env=env,
                        input="\n".join(blobs).encode() + b"\n")
    sizes = {}
    for line in sizes_out.decode().splitlines():
        sha, _, size = line.partition(" ")
        sizes[sha] = int(size) if size.isdigit() else -1
    wanted = [b for b in blobs if 0 <= sizes.get(b, -1) <= max_bytes]
    for blob in blobs:
        if not 0 <= sizes.get(blob, -1) <= max_bytes:
            yield blob, None
    if not wanted:
        return
    out = run_git(["cat-file", "--batch"], cwd=repo_dir, env=env, input="\n".join(wanted).encode() + b"\n", timeout=3600)
    position = 0
    for _ in wanted:
        header_end = out.index(b"\n", position)
        sha, _kind, size = out[position:header_end].decode().split(" ")
        start = header_end + 1
        yield sha, out[start : start + int(size)]
        position = start + int(size) + 1


# --- scanning ---------------------------------------------------------------------------------


@dataclass
class RepoScan:
    """What one scan of one repository did."""

    changed: bool = False  # some ref moved since the last scan
    blobs_new: int = 0  # blobs the new commits introduced
    blobs_scanned: int = 0  # of those, read and scanned now (the rest were in the ledger)
    blobs_skipped: int = 0  # too large or not text
    default_branch: str | None = None


def _decode(content: bytes) -> str | None:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None  # binary: detect-secrets skips what it cannot read as text


def scan_repository(repo_dir: str, ledger: BlobLedger, *, name: str | None = None, hmac_key: bytes = b"",
                    history: bool = True, default_branch: str | None = None, scanner: Any = None,
                    workers: int | None = None, max_blob_bytes: int = 2_000_000,
                    env: dict[str, str] | None = None, verify: Callable[[str, str], Any] | None = None) -> RepoScan:
    """Scan what is new in a local (bare or not) repository since the ledger last saw it."""
    from detectors.secrets import SecretScanner

    env = env or git_env(None, "")
    name = name or os.path.abspath(repo_dir)
    state = ledger.repo(name)
    result = RepoScan(default_branch=default_branch)
    tips = list_tips(repo_dir, env=env)
    if not history:
        branch = default_branch or _head_branch(repo_dir, env)
        tips = {ref: sha for ref, sha in tips.items() if ref == f"refs/heads/{branch}"}
    if tips == state.get("tips") and state.get("history") == history:
        return result  # unchanged: not one blob is read
    result.changed = True
    if history:
        previous = list(state.get("tips", {}).values()) if state.get("history") == history else []
        introduced = list_new_blobs(repo_dir, tips.values(), previous, env=env)
    else:
        introduced = {}
        for sha in tips.values():
            introduced.update(list_tree_blobs(repo_dir, sha, env=env))
        state["exposed"] = {}  # only the tip's files count
    result.blobs_new = len(introduced)
    exposed = state.setdefault("exposed", {})
    to_read = [blob for blob in introduced if blob not in ledger.scanned]
    texts: list[tuple[str, str]] = []
    blob_of_text: list[str] = []
    for blob, content in read_blobs(repo_dir, to_read, env=env, max_bytes=max_blob_bytes):
        text = _decode(content) if content is not None else None
        if text is None:
            result.blobs_skipped += 1
            ledger.scanned.add(blob)
            continue
        texts.append((introduced[blob][1], text))
        blob_of_text.append(blob)
    own_scanner = scanner is None
    scanner = scanner or SecretScanner(workers=workers)
    try:
        per_text = scanner.scan_texts(texts)
    finally:
        if own_scanner:
            scanner.close()
    for blob, hits in zip(blob_of_text, per_text):
        ledger.scanned.add(blob)
        if hits:
            ledger.hits[blob] = [hit_entry(hit, hmac_key, verify) for hit in hits]
    result.blobs_scanned = len(texts)
    for blob, location in introduced.items():
        if blob in ledger.hits and blob not in exposed:
            exposed[blob] = list(location)
    state["tips"] = tips
    state["history"] = history
    return result


def _head_branch(repo_dir: str, env: dict[str, str]) -> str:
    out = run_git(["symbolic-ref", "--short", "HEAD"], cwd=repo_dir, env=env)
    return out.decode().strip()


# --- records (pure) -------------------------------------------------------------------------------


def inventory_name(src: str, repo: str, history: bool) -> str:
    return f"{src}:{repo}:{'history' if history else 'head'}"


def transform_exposures(src: str, repo: str, inventory: str, exposed: dict[str, list[str]],
                        hits: dict[str, list[list[Any]]]) -> list[Exposure]:
    """The ledger's findings for one repository -> ``Exposure`` records (hashes and previews only)."""
    records = []
    for blob, (commit, path) in sorted(exposed.items(), key=lambda item: (item[1][1], item[1][0], item[0])):
        for secret_type, line, secret_hmac, preview, identities, *checked in hits.get(blob, ()):
            live, verified_by = (checked + [None, None])[:2]
            records.append(
                Exposure(
                    key=f"{src}:exposure:{repo}:{path}@{commit[:12]}:{line}:{type_slug(secret_type)}:{secret_hmac[:12]}",
                    source=src,
                    inventory=inventory,
                    name=f"{secret_type} in {repo}/{path}",
                    secret_type=secret_type,
                    secret_hmac=secret_hmac,
                    preview=preview,
                    location=f"{src}:{repo}@{commit}:{path}:{line}",
                    identities=tuple(identities),
                    live=live,
                    verified_by=verified_by,
                )
            )
    return records


# --- the collector --------------------------------------------------------------------------------


def collect(source: GitReposSource, config: Config, *, hmac_key: bytes,
            progress: Callable[[str], None] | None = None) -> CollectResult:
    """Fetch and scan every configured repository; never raises for a git or network failure."""
    from detectors.secrets import SecretScanner
    from detectors.secrets.liveness import checker

    src = source.name
    result = CollectResult(source=src, complete_scopes=[f"{src}:"])

    def tell(message: str) -> None:
        if progress:
            try:
                progress(message)
            except Exception as err:  # noqa: BLE001 - a display problem must not stop the sweep
                log.debug("progress callback failed: %s", type(err).__name__)

    try:
        token = read_secret(config, env=source.token_env, file=source.token_file, what=f"sources.git_repos[{src}] token") \
            if source.has_token() else None
    except ConfigError as err:
        for repo in source.repos:
            result.coverage.append(InventoryStatus(source=src, inventory=inventory_name(src, repo, source.history),
                                                   ok=False, reason=str(err)))
        return result
    env = git_env(token, source.username)
    secrets = [token or "", base64.b64encode(f"{source.username}:{token}".encode()).decode() if token else ""]
    state_dir = os.path.join(str(config.path(source.state_dir)), src)
    ledger = BlobLedger.load(os.path.join(state_dir, "ledger.json"), hmac_key=hmac_key, rules=rules_version())
    timeout = float(source.timeout) * 20
    with SecretScanner(workers=source.workers) as scanner:
        for repo in source.repos:
            inventory = inventory_name(src, repo, source.history)
            url = f"{source.base_url.rstrip('/')}/{repo}.git"
            mirror = os.path.join(state_dir, "mirrors", repo + ".git")
            try:
                get_mirror(url, mirror, env=env, timeout=timeout, secrets=secrets)
                # The default branch matters only when scanning its tip alone; history covers every branch.
                branch = None if source.history else get_default_branch(url, env=env, timeout=timeout, secrets=secrets)
                scan = scan_repository(mirror, ledger, name=repo, hmac_key=hmac_key, history=source.history,
                                       default_branch=branch, scanner=scanner, max_blob_bytes=source.max_blob_bytes,
                                       env=git_env(None, ""), verify=checker(config, source.verify_live))
            except GitError as err:
                log.warning("git %s: %s not read: %s", src, repo, err)
                result.coverage.append(InventoryStatus(source=src, inventory=inventory, ok=False, reason=str(err)))
                tell(f"{repo}: not read - {err}")
                continue
            state = ledger.repo(repo)
            records = transform_exposures(src, repo, inventory, state.get("exposed", {}), ledger.hits)
            result.records.extend(records)
            result.coverage.append(InventoryStatus(source=src, inventory=inventory, ok=True, count=len(records)))
            if scan.blobs_skipped:
                result.warnings.append(f"git {src}: {repo}: {scan.blobs_skipped} blobs not scanned "
                                       f"(binary, or larger than max_blob_bytes={source.max_blob_bytes})")
            tell(f"{repo}: {scan.blobs_scanned} new blobs scanned, {len(records)} exposures"
                 if scan.changed else f"{repo}: unchanged, {len(records)} exposures")
    try:
        ledger.save()
    except OSError as err:
        result.warnings.append(f"git {src}: could not save the scanned-blob ledger: {err.strerror}")
    return result
