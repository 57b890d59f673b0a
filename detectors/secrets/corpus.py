"""A corpus of real files plus planted secrets, for the parity test and the benchmark.

Real files: source and data files of the installed Python packages (what a
repository of Python code looks like: mostly ``.py``, some JSON, YAML, INI,
TOML, text), sampled round-robin across packages so that no one package
dominates; one in twenty gets a planted line at a random place. Planted files: one or more of every secret format detect-secrets
and our plugins know, in the file types that take different paths through
detect-secrets (raw lines, the YAML and INI transformers, the eager INI pass on
unknown extensions), next to its filters' cases (allowlist pragmas, templated
values, UUIDs, lock files, swagger, binary extensions) and non-ASCII text.

Every planted value is generated from a seeded random source at build time:
no credential-shaped literal is stored in this repository.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import string
import sysconfig
from dataclasses import dataclass

SOURCE_SUFFIXES = (".py", ".pyi", ".json", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".txt", ".md", ".rst")
MAX_FILE_BYTES = 400_000


@dataclass
class Corpus:
    root: str
    files: list[str]  # relative to root
    bytes: int
    planted: list[str]  # relative paths of the planted files


def site_packages() -> str:
    return sysconfig.get_paths()["purelib"]


def _package_files(base: str) -> dict[str, list[str]]:
    """Candidate files per top-level package, each list sorted (deterministic)."""
    per_package: dict[str, list[str]] = {}
    for entry in sorted(os.listdir(base)):
        top = os.path.join(base, entry)
        if entry.startswith(("_", ".")) or entry.endswith((".dist-info", ".pth")) or not os.path.isdir(top):
            continue
        found = []
        for directory, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if not name.endswith(SOURCE_SUFFIXES):
                    continue
                path = os.path.join(directory, name)
                if os.path.islink(path):
                    continue
                try:
                    if os.path.getsize(path) <= MAX_FILE_BYTES:
                        found.append(path)
                except OSError:
                    continue
        if found:
            per_package[entry] = found
    return per_package


def copy_real_files(dest: str, target_bytes: int, *, base: str | None = None, seed: int = 7) -> list[str]:
    """Copy about ``target_bytes`` of installed packages' files into ``dest/real/``."""
    base = base or site_packages()
    rng = random.Random(seed)
    per_package = _package_files(base)
    for files in per_package.values():
        rng.shuffle(files)
    copied: list[str] = []
    total = 0
    packages = sorted(per_package)
    while total < target_bytes and packages:
        for package in list(packages):
            files = per_package[package]
            if not files:
                packages.remove(package)
                continue
            source = files.pop()
            relative = os.path.join("real", os.path.relpath(source, base))
            target = os.path.join(dest, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(source, target)
            copied.append(relative)
            total += os.path.getsize(target)
            if total >= target_bytes:
                break
    return copied


# --- planted secrets --------------------------------------------------------------------


class _Gen:
    """Random values in each credential's alphabet and length (fake, format-valid)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def alnum(self, n: int) -> str:
        return self.chars(string.ascii_letters + string.digits, n)

    def lower_alnum(self, n: int) -> str:
        return self.chars(string.ascii_lowercase + string.digits, n)

    def upper_alnum(self, n: int) -> str:
        return self.chars(string.ascii_uppercase + string.digits, n)

    def hex(self, n: int) -> str:
        return self.chars("0123456789abcdef", n)

    def b64(self, n: int) -> str:
        return self.chars(string.ascii_letters + string.digits + "+/", n)

    def urlsafe(self, n: int) -> str:
        return self.chars(string.ascii_letters + string.digits + "-_", n)

    def jwt(self) -> str:
        def part(obj: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

        return ".".join([part({"alg": "HS256", "typ": "JWT"}), part({"sub": self.alnum(8)}), self.urlsafe(43)])

    def pem_body(self, lines: int = 8) -> list[str]:
        return [self.b64(64) for _ in range(lines)]


def planted_values(seed: int = 11) -> dict[str, str]:
    """One fake value per format, by a short name."""
    g = _Gen(seed)
    prefix = "".join  # join pieces so no full token literal sits in this source file
    return {
        "aws_key_id": prefix(["AK", "IA", g.upper_alnum(16)]),
        "aws_secret": g.b64(40),
        "azure_storage": g.b64(86) + "==",
        "artifactory": prefix(["AK", "C", g.alnum(20)]),
        "basic_auth_password": "s3cr3t" + g.alnum(6),
        "cloudant_password": g.hex(64),
        "discord": prefix(["M", g.alnum(23), ".", g.urlsafe(6), ".", g.urlsafe(27)]),
        "github": prefix(["gh", "p_", g.alnum(36)]),
        "gitlab": prefix(["gl", "pat-", g.urlsafe(20)]),
        "base64_entropy": g.b64(40),
        "hex_entropy": g.hex(40),
        "ibm_iam": g.urlsafe(44),
        "ibm_cos": g.hex(48),
        "jwt": g.jwt(),
        "keyword_password": "Tr0ub4dor" + g.alnum(5),
        "mailchimp": g.lower_alnum(32) + "-us" + str(g.rng.randint(1, 20)),
        "npm": prefix(["np", "m_", g.alnum(36)]),
        "openai": prefix(["sk", "-", g.alnum(20), "T3Blbk", "FJ", g.alnum(20)]),
        "pypi": prefix(["pypi-", "AgEIcHlwaS5vcmc", g.urlsafe(80)]),
        "sendgrid": prefix(["S", "G.", g.urlsafe(22), ".", g.urlsafe(43)]),
        "slack": prefix(["xo", "xb-", str(g.rng.randint(10**10, 10**11)), "-", str(g.rng.randint(10**10, 10**11)),
                         "-", g.lower_alnum(24)]),
        "slack_webhook": prefix(["https://hooks.", "slack.com/services/T", g.upper_alnum(8), "/B",
                                 g.upper_alnum(8), "/", g.alnum(24)]),
        "softlayer": g.lower_alnum(64),
        "square": prefix(["sq0", "csp-", g.urlsafe(43)]),
        "stripe": prefix(["sk", "_live_", g.alnum(24)]),
        "telegram": str(g.rng.randint(10**8, 10**9 - 1)) + ":" + g.urlsafe(35),
        "twilio": prefix(["A", "C", g.lower_alnum(32)]),
        "public_ip": "203.0.113.77",
        # NHI formats detect-secrets lacks (plugins.py)
        "github_fine_grained": prefix(["github", "_pat_", g.alnum(22), "_", g.alnum(59)]),
        "slack_app": prefix(["xa", "pp-1-A", g.upper_alnum(10), "-", str(g.rng.randint(10**12, 10**13)), "-",
                             g.hex(64)]),
        "slack_config": prefix(["xo", "xe.xoxp-1-", g.alnum(164)]),
        "slack_config_refresh": prefix(["xo", "xe-1-", g.alnum(146)]),
        "okta": "00" + g.urlsafe(40),
        "atlassian": prefix(["ATATT3", "xFfGF0", g.urlsafe(170), "=", g.hex(8).upper()]),
        "entra": prefix([g.alnum(3), "8", "Q~", g.urlsafe(34)]).replace("-", "_"),
        "gitlab_routable": prefix(["gl", "pat-", g.urlsafe(27), ".01.", g.lower_alnum(9)]),
        "gitlab_ffct": prefix(["gl", "ffct-", g.urlsafe(20)]),
        "gcp_private_key": "-----BEGIN PRIVATE KEY-----\\n" + "\\n".join(g.pem_body()) + "\\n-----END PRIVATE KEY-----\\n",
        "gcp_key_id": g.hex(40),
    }


def planted_files(seed: int = 11) -> dict[str, str]:
    """Relative path -> content of the planted files."""
    v = planted_values(seed)
    pem_header = "-----BEGIN " + "RSA PRIVATE KEY-----"
    files = {
        "planted/settings.py": "\n".join(
            [
                '"""Settings with secrets in every shape detect-secrets knows."""',
                f'AWS_ACCESS_KEY_ID = "{v["aws_key_id"]}"',
                f'aws_secret_access_key = "{v["aws_secret"]}"',
                f'STORAGE = "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={v["azure_storage"]}"',
                f'ARTIFACTORY = "{v["artifactory"]}"',
                f'DATABASE_URL = "postgres://admin:{v["basic_auth_password"]}@db.internal:5432/app"',
                f'cloudant_password = "{v["cloudant_password"]}"',
                f'DISCORD = "{v["discord"]}"',
                f'GITHUB_TOKEN = "{v["github"]}"',
                f'GITLAB_TOKEN = "{v["gitlab"]}"',
                f'blob = "{v["base64_entropy"]}"',
                f'digest = "{v["hex_entropy"]}"',
                f'ibm_cloud_iam_api_key = "{v["ibm_iam"]}"',
                f'ibm_cos_secret_access_key = "{v["ibm_cos"]}"',
                f'SESSION = "{v["jwt"]}"',
                f'password = "{v["keyword_password"]}"',
                f'MAILCHIMP = "{v["mailchimp"]}"',
                f'OPENAI = "{v["openai"]}"',
                f'PYPI = "{v["pypi"]}"',
                f'SENDGRID = "{v["sendgrid"]}"',
                f'SLACK = "{v["slack"]}"',
                f'WEBHOOK = "{v["slack_webhook"]}"',
                f'softlayer_api_key = "{v["softlayer"]}"',
                f'SQUARE = "{v["square"]}"',
                f'STRIPE = "{v["stripe"]}"',
                f'TELEGRAM = "{v["telegram"]}"',
                f'TWILIO = "{v["twilio"]}"',
                f'SERVER = "{v["public_ip"]}"',
                f'password = "{v["keyword_password"]}"  # the same value again: reported once per file',
                f'api_key = "{v["base64_entropy"]}"  # pragma: allowlist secret',
                'secret = "${VAULT_SECRET}"',
                'secret = "{placeholder}"',
                'user_id = "' + v["hex_entropy"][:32] + '"',
                'password = get_password("service")',
                'token = "123e4567-e89b-12d3-a456-426614174000"',
                'sequence = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"',
                # NHI formats detect-secrets lacks
                f'GH_FINE_GRAINED = "{v["github_fine_grained"]}"',
                f'SLACK_APP_TOKEN = "{v["slack_app"]}"',
                f'SLACK_CONFIG = "{v["slack_config"]}"',
                f'SLACK_REFRESH = "{v["slack_config_refresh"]}"',
                f'headers = {{"Authorization": "SSWS {v["okta"]}"}}',
                f'okta_api_token = "{v["okta"]}"',
                f'JIRA_API_TOKEN = "{v["atlassian"]}"',
                f'AZURE_CLIENT_SECRET = "{v["entra"]}"',
                f'GITLAB_ROUTABLE = "{v["gitlab_routable"]}"',
                f'UNLEASH = "{v["gitlab_ffct"]}"',
                "",
            ]
        ),
        "planted/config.yaml": "\n".join(
            [
                "database:",
                f"  password: {v['keyword_password']}",
                f"  db_pass: '{v['keyword_password']}x'",
                f"  token: {v['base64_entropy']}",
                "  host: db.internal",
                "slack:",
                f"  webhook: {v['slack_webhook']}",
                f"  app_token: {v['slack_app']}",
                "",
            ]
        ),
        "planted/app.ini": "\n".join(
            [
                "[default]",
                f"secret_key = {v['base64_entropy']}",
                f"api_key = {v['hex_entropy']}",
                "[github]",
                f"token = {v['github']}",
                "",
            ]
        ),
        "planted/deploy.env.txt": "\n".join(
            [
                f"STRIPE_KEY={v['stripe']}",
                f"DB_PASSWORD={v['keyword_password']}",
                f"CLIENT_SECRET={v['base64_entropy']}",
                "",
            ]
        ),
        "planted/notes.md": "\n".join(
            [
                "# Runbook: values an operator pasted (the eager INI pass reads them)",
                f"staging_key: {v['hex_entropy']}",
                f"API_KEY = {v['base64_entropy']}",
                "",
            ]
        ),
        "planted/.npmrc": f"//registry.npmjs.org/:_authToken={v['npm']}\n",
        "planted/id_rsa": "\n".join([pem_header, *_Gen(3).pem_body(4), "-----END RSA PRIVATE KEY-----", ""]),
        "planted/service-account.json": json.dumps(
            {
                "type": "service_account",
                "project_id": "acme-prod",
                "private_key_id": v["gcp_key_id"],
                "private_key": "@@KEY@@",
                "client_email": "deployer@acme-prod.iam.gserviceaccount.com",
                "client_id": "1234567890",
            },
            indent=2,
        ).replace("@@KEY@@", v["gcp_private_key"]) + "\n",
        "planted/unicode_ſecrets.py": "\n".join(
            [
                "# -*- coding: utf-8 -*-",
                f'ſecret = "{v["keyword_password"]}é"  # long s folds to s under IGNORECASE',
                f'API_\u212aEY = "{v["keyword_password"]}ü"  # Kelvin sign folds to k',
                f'contraseña = "{v["keyword_password"]}ñ"',
                f'café = "{v["base64_entropy"]}"',
                "",
            ]
        ),
        "planted/package-lock.json": json.dumps({"integrity": v["base64_entropy"], "token": v["github"]}) + "\n",
        "planted/swagger.yaml": f"password: {v['keyword_password']}\n",
        "planted/logo.png": f"{v['github']}\n",
        "planted/crlf.py": f'password = "{v["keyword_password"]}"\r\nGITHUB = "{v["github"]}"\r\n',
        "planted/Main.java": f'String password = "{v["keyword_password"]}";\nString key = "{v["hex_entropy"]}";\n',
        "planted/main.go": f'password := "{v["keyword_password"]}"\nsecret = {v["keyword_password"]}\n',
    }
    return files


def write_planted(dest: str, seed: int = 11) -> list[str]:
    written = []
    for relative, content in planted_files(seed).items():
        target = os.path.join(dest, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8", newline="") as handle:
            handle.write(content)
        written.append(relative)
    return written


def plant_in_real_files(dest: str, files: list[str], *, every: int = 20, seed: int = 13) -> list[str]:
    """Insert one planted line into every ``every``-th real file, at a random line: secrets amid real code."""
    v = planted_values(seed)
    lines = [
        f'password = "{v["keyword_password"]}"',
        f'AWS_ACCESS_KEY_ID = "{v["aws_key_id"]}"',
        f'GITHUB_TOKEN = "{v["github"]}"',
        f'blob = "{v["base64_entropy"]}"',
        f'SLACK = "{v["slack"]}"',
        f'STRIPE = "{v["stripe"]}"',
        f'GH_FINE_GRAINED = "{v["github_fine_grained"]}"',
    ]
    rng = random.Random(seed)
    changed = []
    for number, relative in enumerate(files[::every]):
        path = os.path.join(dest, relative)
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                content = handle.read().split("\n")
        except (UnicodeDecodeError, OSError):
            continue
        content.insert(rng.randrange(len(content) + 1), lines[number % len(lines)])
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write("\n".join(content))
        changed.append(relative)
    return changed


def build_corpus(dest: str, target_bytes: int, *, seed: int = 7, base: str | None = None) -> Corpus:
    """Real files (about ``target_bytes``), some with a planted line, plus the planted files, under ``dest``."""
    os.makedirs(dest, exist_ok=True)
    real = copy_real_files(dest, target_bytes, base=base, seed=seed)
    plant_in_real_files(dest, real)
    planted = write_planted(dest)
    files = real + planted
    size = sum(os.path.getsize(os.path.join(dest, f)) for f in files)
    return Corpus(root=dest, files=files, bytes=size, planted=planted)
