"""Real git repositories served over git's smart HTTP protocol, from an estate.

What it serves is real git: at start the estate's ``git.repos`` are built into
bare repositories (one commit per estate entry, with the authors and dates it
gives, so commit ids are reproducible), and every request is handed to
``git http-backend`` through a CGI bridge. A real ``git clone`` / ``git fetch``
(and so nhiscan's git source) talks to it exactly as to a git host.

What it models of a host such as GitHub:

* **Token auth over HTTP Basic.** The token is the password (any username, as
  GitHub's ``x-access-token``) or the username. Private repositories answer a
  request without credentials with 401 and ``WWW-Authenticate: Basic``, a bad
  token with 401, and a token that does not cover the repository with 404
  ``Repository not found.`` (GitHub does not say a private repository exists).
  Public repositories are readable anonymously.
* **Read-only.** ``git-receive-pack`` (push) is refused with 403.
* **A request log** without credentials (the last four characters of a token at most).

Python API for tests: ``emulator.commit(repo, files, message)`` adds a commit
to a served repository (a new push, as far as a fetching client can tell).

The estate section is ``git:`` (see ``sandbox/README.md``). This module has no
``from __future__ import annotations``: the estate loader resolves the
dataclass annotations below as real objects.
"""

import base64
import fnmatch
import logging
import os
import secrets as _secrets
import shutil
import subprocess
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from werkzeug.wrappers import Request, Response

from .emulator import Emulator, log_time
from .estate import Estate, Timestamp, _build

log = logging.getLogger("sandbox.git")

URL_SUFFIX = ""  # repositories live at the server root: http://127.0.0.1:PORT/acme/api.git

_SERVICES = ("/info/refs", "/git-upload-pack", "/git-receive-pack", "/HEAD", "/objects/")


# --------------------------------------------------------------------------------------------
# Estate model


@dataclass
class GitToken:
    token: str
    repos: list[str] = field(default_factory=lambda: ["*"])  # fnmatch patterns of repository paths it may read
    login: str = "x-access-token"


@dataclass
class GitCommit:
    message: str
    files: dict[str, Optional[str]] = field(default_factory=dict)  # path -> content; null deletes the file
    author: str = "Sandbox Bot <bot@sandbox.invalid>"
    date: Optional[Timestamp] = None  # default: the estate's now
    branch: Optional[str] = None  # default: the repository's default branch


@dataclass
class GitRepo:
    path: str  # "acme/api": served at /acme/api.git
    default_branch: str = "main"
    private: bool = True
    commits: list[GitCommit] = field(default_factory=list)


@dataclass
class GitEstate:
    tokens: list[GitToken] = field(default_factory=list)
    repos: list[GitRepo] = field(default_factory=list)

    def repo(self, path: str) -> Optional[GitRepo]:
        return next((r for r in self.repos if r.path == path), None)


def parse_estate(raw: Any, ctx: Any, path: str) -> GitEstate:
    """Validate the ``git:`` section: repository paths, authors, unique tokens."""
    state: GitEstate = _build(GitEstate, raw, path, ctx)
    seen: set[str] = set()
    for i, repo in enumerate(state.repos):
        where = f"{path}.repos[{i}]"
        parts = repo.path.split("/")
        if len(parts) < 2 or any(not p or p.startswith(".") for p in parts) or repo.path.endswith(".git"):
            raise ctx.error(f"{where}.path", f"expected OWNER/NAME without .git, got {repo.path!r}")
        if repo.path in seen:
            raise ctx.error(f"{where}.path", f"duplicate repository {repo.path!r}")
        seen.add(repo.path)
        for j, commit in enumerate(repo.commits):
            if "<" not in commit.author or not commit.author.endswith(">"):
                raise ctx.error(f"{where}.commits[{j}].author", f"expected 'Name <email>', got {commit.author!r}")
            for file_path in commit.files:
                if file_path.startswith("/") or ".." in file_path.split("/") or file_path.startswith(".git/"):
                    raise ctx.error(f"{where}.commits[{j}].files", f"expected a relative path, got {file_path!r}")
            commit.date = commit.date or ctx.now
    tokens = [t.token for t in state.tokens]
    if len(tokens) != len(set(tokens)):
        raise ctx.error(f"{path}.tokens", "tokens must be unique")
    return state


def build(estate: Estate, *, reload: Callable[[], Estate] | None = None, **_options: Any) -> "GitEmulator":
    return GitEmulator(estate, reload=reload)


# --------------------------------------------------------------------------------------------
# Building repositories


def _git(args: list[str], *, cwd: str | None = None, env: dict | None = None, input: bytes | None = None) -> bytes:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": cwd or tempfile.gettempdir(),
            "GIT_CONFIG_NOSYSTEM": "1", "LANG": "C"}
    result = subprocess.run(["git", *args], cwd=cwd, env={**base, **(env or {})}, input=input, capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed: {result.stderr.decode(errors='replace').strip()[:300]}")
    return result.stdout


def _identity(author: str, when: datetime) -> dict[str, str]:
    name, _, email = author.partition("<")
    stamp = f"{int(when.astimezone(timezone.utc).timestamp())} +0000"
    return {
        "GIT_AUTHOR_NAME": name.strip(), "GIT_AUTHOR_EMAIL": email.rstrip(">").strip(), "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_NAME": name.strip(), "GIT_COMMITTER_EMAIL": email.rstrip(">").strip(), "GIT_COMMITTER_DATE": stamp,
    }


def _apply_commit(work: str, commit: GitCommit, default_branch: str, now: datetime) -> str:
    """Write one estate commit in the work tree; returns the new commit id."""
    branch = commit.branch or default_branch
    current = _git(["symbolic-ref", "--short", "HEAD"], cwd=work).decode().strip()
    if branch != current:
        exists = subprocess.run(["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"], cwd=work,
                                capture_output=True).returncode == 0
        _git(["checkout", "-q", branch] if exists else ["checkout", "-q", "-b", branch, default_branch], cwd=work)
    for path, content in commit.files.items():
        target = os.path.join(work, path)
        if content is None:
            if os.path.exists(target):
                os.remove(target)
            continue
        os.makedirs(os.path.dirname(target) or work, exist_ok=True)
        with open(target, "w", encoding="utf-8", newline="") as handle:
            handle.write(content)
    _git(["add", "-A"], cwd=work)
    _git(["commit", "-q", "--allow-empty", "-m", commit.message], cwd=work, env=_identity(commit.author, commit.date or now))
    return _git(["rev-parse", "HEAD"], cwd=work).decode().strip()


def materialize(repo: GitRepo, root: str, now: datetime) -> str:
    """Build ``root/<path>.git`` (bare) from the estate's commits; returns its directory."""
    bare = os.path.join(root, repo.path + ".git")
    with tempfile.TemporaryDirectory(prefix="sandbox-git-work-") as work:
        _git(["init", "-q", "-b", repo.default_branch, work])
        for commit in repo.commits:
            _apply_commit(work, commit, repo.default_branch, now)
        os.makedirs(os.path.dirname(bare), exist_ok=True)
        if repo.commits:
            _git(["clone", "-q", "--bare", work, bare])
            _git(["remote", "remove", "origin"], cwd=bare)
        else:
            _git(["init", "-q", "--bare", "-b", repo.default_branch, bare])
    _git(["symbolic-ref", "HEAD", f"refs/heads/{repo.default_branch}"], cwd=bare)
    return bare


# --------------------------------------------------------------------------------------------
# The WSGI app


class GitEmulator(Emulator[GitEstate]):
    """Serves the estate's repositories through ``git http-backend``.

    It shares the ``Emulator`` lifecycle and request log, but not its request pipeline: git has
    no control plane, faults or JSON, and every request, repository or not, is logged.
    """

    vendor = "git"
    url_suffix = URL_SUFFIX

    def __init__(self, estate: Estate, *, reload: Callable[[], Estate] | None = None):
        super().__init__(estate, reload=reload)
        self.root = tempfile.mkdtemp(prefix="sandbox-git-")
        self.set_estate(estate)

    # -- public Python API (the request log and reset are ``Emulator``'s) -----------------------

    @property
    def state(self) -> GitEstate:
        return self._section(GitEstate)

    def set_estate(self, estate: Estate) -> None:
        """(Re)build every repository from the estate: what a reset does."""
        with self._lock:
            super().set_estate(estate)
            for entry in os.listdir(self.root):
                shutil.rmtree(os.path.join(self.root, entry), ignore_errors=True)
            for repo in self.state.repos:
                materialize(repo, self.root, estate.now)

    def stop(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def repo_dir(self, path: str) -> str:
        return os.path.join(self.root, path + ".git")

    def commit(self, repo: str, files: dict[str, Optional[str]], message: str = "update", *,
               author: str = "Sandbox Bot <bot@sandbox.invalid>", branch: str | None = None,
               date: datetime | None = None) -> str:
        """Add a commit to a served repository (as a push would); returns the commit id."""
        with self._lock:
            spec = self.state.repo(repo)
            if spec is None:
                raise KeyError(f"no repository {repo!r}")
            entry = GitCommit(message=message, files=dict(files), author=author, date=date or datetime.now(timezone.utc),
                              branch=branch)
            spec.commits.append(entry)
            with tempfile.TemporaryDirectory(prefix="sandbox-git-work-") as work:
                _git(["clone", "-q", self.repo_dir(repo), work])
                _git(["checkout", "-q", spec.default_branch], cwd=work)
                sha = _apply_commit(work, entry, spec.default_branch, self.estate.now)
                target = entry.branch or spec.default_branch
                _git(["push", "-q", "origin", f"HEAD:refs/heads/{target}"], cwd=work)
            return sha

    # -- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        started = time.monotonic()
        token_hint = None
        try:
            response, token_hint = self._handle(request)
        except Exception:  # pragma: no cover - a bug in the emulator, surfaced loudly
            log.error("git emulator crashed on %s %s\n%s", request.method, request.path, traceback.format_exc())
            response = Response("internal error\n", 500, content_type="text/plain")
        self._append_log({
            "time": log_time(), "method": request.method,
            "path": request.path, "status": response.status_code,
            "token": token_hint, "ms": round((time.monotonic() - started) * 1000, 1),
        })
        return response(environ, start_response)

    def _handle(self, request: Request) -> tuple[Response, Optional[str]]:
        path = request.path
        repo_path, service = _split(path)
        if repo_path is None:
            return Response("Not Found\n", 404, content_type="text/plain"), None
        with self._lock:
            repo = self.state.repo(repo_path)
        token, token_hint = self._token(request)
        if repo is None:
            return _not_found(), token_hint
        if request.authorization is not None and token is None:
            return _unauthorized("Invalid username or token."), token_hint
        if repo.private:
            if token is None:
                return _unauthorized("Authentication required."), token_hint
            if not any(fnmatch.fnmatchcase(repo.path, pattern) for pattern in token.repos):
                return _not_found(), token_hint
        if service == "/git-receive-pack" or request.args.get("service") == "git-receive-pack":
            return Response("Write access to repository not granted.\n", 403, content_type="text/plain"), token_hint
        login = token.login if token else "anonymous"
        return self._backend(request, f"/{repo.path}.git{service}", login), token_hint

    def _token(self, request: Request) -> tuple[Optional[GitToken], Optional[str]]:
        auth = request.authorization
        if auth is None or auth.type != "basic":
            return None, None
        for candidate in (auth.password, auth.username):
            if not candidate:
                continue
            for token in self.state.tokens:
                if _secrets.compare_digest(token.token.encode(), candidate.encode()):
                    return token, "…" + candidate[-4:]
        shown = auth.password or auth.username or ""
        return None, ("…" + shown[-4:]) if shown else None

    def _backend(self, request: Request, path_info: str, login: str) -> Response:
        """The CGI bridge: one ``git http-backend`` process per request."""
        body = request.get_data(cache=False)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.root,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROJECT_ROOT": self.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": request.method,
            "PATH_INFO": path_info,
            "QUERY_STRING": request.query_string.decode("latin-1"),
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": login,
            "REMOTE_ADDR": request.remote_addr or "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        if request.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = request.headers["Content-Encoding"]
        if request.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
        result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        if result.returncode != 0 and not result.stdout:
            log.warning("git http-backend failed: %s", result.stderr.decode(errors="replace").strip()[:200])
            return Response("git backend failed\n", 500, content_type="text/plain")
        return _cgi_response(result.stdout)


def _split(path: str) -> tuple[Optional[str], str]:
    """'/acme/api.git/info/refs' -> ('acme/api', '/info/refs'); the '.git' suffix is optional."""
    for service in _SERVICES:
        index = path.find(service)
        if index > 0:
            repo = path[1:index]
            return (repo[:-4] if repo.endswith(".git") else repo), path[index:]
    return None, ""


def _cgi_response(output: bytes) -> Response:
    head, sep, body = output.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = output.partition(b"\n\n")
    status = 200
    headers = []
    for raw in head.decode("latin-1").splitlines():
        name, _, value = raw.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers.append((name.strip(), value.strip()))
    return Response(body, status, headers)


def _unauthorized(message: str) -> Response:
    return Response(message + "\n", 401, {"WWW-Authenticate": 'Basic realm="sandbox git"'}, content_type="text/plain")


def _not_found() -> Response:
    return Response("Repository not found.\n", 404, content_type="text/plain")


def basic_auth(token: str, login: str = "x-access-token") -> str:
    """The Authorization header value a client sends with a token."""
    return "Basic " + base64.b64encode(f"{login}:{token}".encode()).decode()
