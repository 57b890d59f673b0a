"""Loading and validating ``config.toml``.

The file is parsed with :mod:`tomllib` and validated with pydantic models, so
that an error names the key, the value and what was expected. Credentials are
never written in the file: a source names an environment variable or a file
that holds them, and :func:`read_secret` reads it at the moment of use.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(Exception):
    """A config (or contract register, or HR export) that cannot be used, and why."""


class _Strict(BaseModel):
    # Unknown keys are errors: a typo such as ``token_evn`` must not be ignored silently.
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Strict):
    url: str = Field("sqlite:///nhiscan.db", description="SQLAlchemy URL; relative SQLite paths resolve against the config file")
    key_file: str = Field("nhiscan.key", description="per-installation HMAC key for secret hashes; created if missing")


class ReportsConfig(_Strict):
    dir: str = "reports"
    formats: list[Literal["json", "markdown", "html", "sarif", "csv", "ocsf"]] = ["json", "markdown", "html"]


class FileSource(_Strict):
    file: str


class _Source(_Strict):
    """What every source has: a name that prefixes record keys, an API base URL, limits."""

    name: str
    base_url: str
    token_env: str | None = None
    token_file: str | None = None
    timeout: int = Field(30, gt=0, description="seconds per HTTP request")
    max_retries: int = Field(5, ge=0)
    inventories: list[str] | None = Field(None, description="limit the sweep to these inventories; all when absent")

    @field_validator("name")
    @classmethod
    def _name_is_a_key_prefix(cls, v: str) -> str:
        if not v or any(c in v for c in ": /"):
            raise ValueError("must be non-empty and contain no ':', '/' or spaces (it prefixes record keys)")
        return v

    def has_token(self) -> bool:
        return bool(self.token_env or self.token_file)


class GitHubSource(_Source):
    """One GitHub tenant: github.com or an Enterprise Server (``base_url``)."""

    name: str = "github"
    base_url: str = "https://api.github.com"
    orgs: list[str] = Field(min_length=1)
    # GitHub App auth: the only way to list fine-grained PAT grants.
    app_id: int | None = None
    app_private_key_file: str | None = None
    app_private_key_env: str | None = None
    installation_ids: dict[str, int] = Field(default_factory=dict, description="org -> installation id; looked up when absent")
    per_page: int = Field(100, ge=1, le=100)
    resolve_member_emails: bool = True
    # GitHub has no "service account" type: machine users are ordinary User accounts.
    # Logins matching these fnmatch patterns are treated as non-human.
    machine_user_patterns: list[str] = Field(default_factory=lambda: ["svc-*", "*-bot", "*[[]bot]", "bot-*"])

    @model_validator(mode="after")
    def _some_credential(self) -> "GitHubSource":
        has_app = self.app_id is not None and bool(self.app_private_key_file or self.app_private_key_env)
        if not (self.has_token() or has_app):
            raise ValueError(
                "needs credentials: token_env or token_file, and/or app_id with app_private_key_file or app_private_key_env"
            )
        if self.app_id is not None and not (self.app_private_key_file or self.app_private_key_env):
            raise ValueError("app_id is set but neither app_private_key_file nor app_private_key_env is")
        return self


def _require_token(source):
    if not (source.token_env or source.token_file):
        raise ValueError("needs credentials: token_env or token_file")
    return source


class GitLabSource(_Source):
    """GitLab.com or self-managed GitLab. An admin token sees every PAT and the instance lists."""

    name: str = "gitlab"
    base_url: str = "https://gitlab.com"
    groups: list[str] = Field(default_factory=list, description="group full paths to read; all visible when empty")
    instance_admin: bool = Field(False, description="the token is an instance admin's: read instance-wide inventories")
    per_page: int = Field(100, ge=1, le=100)

    _check = model_validator(mode="after")(_require_token)


class SlackSource(_Source):
    """A Slack workspace or Enterprise Grid org (bot/user token; an org admin token for admin.*)."""

    name: str = "slack"
    base_url: str = "https://slack.com/api/"
    admin_token_env: str | None = None
    admin_token_file: str | None = None
    team_id: str | None = None
    enterprise_id: str | None = None

    _check = model_validator(mode="after")(_require_token)


class JiraContractRegister(_Strict):
    """Contracts kept as Jira issues of one type; field names map onto the register's columns."""

    jql: str = Field(description='e.g. project = LEGAL AND issuetype = Contract')
    counterparty_field: str
    end_field: str
    sponsor_field: str
    start_field: str | None = None
    kind_field: str | None = None
    status_field: str | None = None
    match_domains_field: str | None = None
    match_names_field: str | None = None


class JiraSource(_Source):
    """Jira Cloud or Server/DC; optionally the Atlassian organization admin API."""

    name: str = "jira"
    base_url: str
    user: str | None = Field(None, description="Cloud: the account email; Server: the username")
    deployment: Literal["auto", "cloud", "server"] = "auto"
    org_admin_token_env: str | None = None
    org_admin_token_file: str | None = None
    org_id: str | None = None
    admin_base_url: str = "https://api.atlassian.com"
    contract_register: JiraContractRegister | None = None

    _check = model_validator(mode="after")(_require_token)


class JiraTicketsSource(_Source):
    """Jira issue descriptions and comments scanned for leaked secrets, incrementally by updated time."""

    name: str = "jira_tickets"
    base_url: str
    user: str | None = Field(None, description="Cloud: the account email; Server: the username")
    deployment: Literal["auto", "cloud", "server"] = "auto"
    jql: str = Field("", description='which issues, e.g. project in (OPS, SEC); empty: every issue the token can see')
    state_dir: str = Field("ticket-state", description="the last updated time read and each issue's findings (hashed)")
    overlap_minutes: int = Field(10, ge=0, description="re-read issues updated this long before the last sweep's newest")
    workers: int | None = Field(None, ge=0, description="secret-scan worker processes; the CPU count when absent")
    verify_live: bool = Field(False, description="ask the configured github/gitlab/slack source's own API whether a leaked token works")

    _check = model_validator(mode="after")(_require_token)


class OktaSource(_Source):
    """An Okta org; ``token_env`` holds an SSWS API token (or use OAuth client credentials later)."""

    name: str = "okta"
    base_url: str

    _check = model_validator(mode="after")(_require_token)


class EntraSource(_Source):
    """Microsoft Entra ID via Microsoft Graph, with an app registration's client credentials."""

    name: str = "entra"
    base_url: str = "https://graph.microsoft.com/v1.0"
    login_url: str = "https://login.microsoftonline.com"
    tenant_id: str
    client_id: str
    client_secret_env: str | None = None
    client_secret_file: str | None = None

    @model_validator(mode="after")
    def _secret(self) -> "EntraSource":
        if not (self.client_secret_env or self.client_secret_file):
            raise ValueError("needs credentials: client_secret_env or client_secret_file")
        return self


class AwsSource(_Source):
    """One AWS account's IAM, through boto3 (credentials from the usual chain or named variables)."""

    name: str = "aws"
    base_url: str | None = Field(None, description="IAM endpoint override (tests, moto); AWS's own when absent")
    region: str = "us-east-1"
    profile: str | None = None
    access_key_id_env: str | None = None
    secret_access_key_env: str | None = None
    access_key_id_file: str | None = None
    secret_access_key_file: str | None = None
    account_id: str | None = None
    page_size: int = Field(100, ge=1, le=1000, description="MaxItems per IAM list call")


class GitReposSource(_Source):
    """Git repositories fetched over git's HTTP protocol and scanned for leaked secrets, history included."""

    name: str = "git"
    base_url: str = Field(description="git host root; a repository is {base_url}/{repo}.git, e.g. https://github.com")
    repos: list[str] = Field(min_length=1, description="repository paths under base_url, e.g. acme/api")
    username: str = Field("x-access-token", description="HTTP Basic user sent with the token (GitLab: oauth2)")
    history: bool = Field(True, description="every commit of every branch; false: the default branch's tip only")
    state_dir: str = Field("git-state", description="bare mirrors and the scanned-blob ledger (no secret values)")
    max_blob_bytes: int = Field(2_000_000, gt=0, description="larger blobs are skipped and counted in warnings")
    workers: int | None = Field(None, ge=0, description="secret-scan worker processes; the CPU count when absent")
    verify_live: bool = Field(False, description="ask the configured github/gitlab/slack source's own API whether a leaked token works")


class SourcesConfig(_Strict):
    github: list[GitHubSource] = Field(default_factory=list)
    git_repos: list[GitReposSource] = Field(default_factory=list)
    gitlab: list[GitLabSource] = Field(default_factory=list)
    slack: list[SlackSource] = Field(default_factory=list)
    jira: list[JiraSource] = Field(default_factory=list)
    jira_tickets: list[JiraTicketsSource] = Field(default_factory=list)
    okta: list[OktaSource] = Field(default_factory=list)
    entra: list[EntraSource] = Field(default_factory=list)
    aws: list[AwsSource] = Field(default_factory=list)

    def all(self) -> list[tuple[str, _Source]]:
        """(collector module name, source) for every configured source."""
        return [(kind, src) for kind in type(self).model_fields for src in getattr(self, kind)]

    @model_validator(mode="after")
    def _unique_names(self) -> "SourcesConfig":
        names = [s.name for _kind, s in self.all()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        return self


class OwnershipMapping(_Strict):
    """An explicit owner for a record the APIs cannot attribute (e.g. an App installation)."""

    key: str
    owner: str  # email
    evidence: str = "config ownership mapping"


class IdentityConfig(_Strict):
    # source name -> {login: email}: how a GitHub login maps to a person when the API shows no email.
    logins: dict[str, dict[str, str]] = Field(default_factory=dict)
    # Email domains that belong to us; owners elsewhere are third parties.
    internal_domains: list[str] = Field(default_factory=list)


Severity = Literal["critical", "high", "medium", "low", "info"]


class SlackNotifyConfig(_Strict):
    """Direct messages to owners (digest per person per sweep) and a summary to the security channel.

    The token is a bot token with chat:write, im:write and users:read.email.
    """

    base_url: str = "https://slack.com/api/"
    token_env: str | None = None
    token_file: str | None = None
    fallback_channel: str = Field(description="where findings go when no owner, sponsor or manager resolves")
    security_channel: str | None = Field(None, description="one summary per sweep")
    min_severity: Severity = "medium"
    timeout: int = Field(30, gt=0)
    max_retries: int = Field(5, ge=0)

    _check = model_validator(mode="after")(_require_token)


class JiraTicketsConfig(_Strict):
    """One remediation ticket per finding (or per subject), de-duplicated by a ``nhi-...`` label."""

    base_url: str
    user: str
    token_env: str | None = None
    token_file: str | None = None
    project: str
    issue_type: str = "Task"
    per: Literal["finding", "subject"] = "finding"
    done_transition: str = "Done"
    reopen_transition: str | None = Field("Reopen", description="None: a regression opens a new ticket linked to the old one")
    min_severity: Severity = "high"
    search_wait_seconds: float = Field(10.0, ge=0, description="after an interrupted create, how long to wait for search to catch up")
    timeout: int = Field(30, gt=0)
    max_retries: int = Field(5, ge=0)

    _check = model_validator(mode="after")(_require_token)


class NotifyConfig(_Strict):
    slack: SlackNotifyConfig | None = None
    jira: JiraTicketsConfig | None = None


class ScheduleConfig(_Strict):
    cron: str = Field("0 2 * * *", description="crontab expression for `nhiscan serve`")
    timezone: str = "UTC"
    # How long a sweep may hold the database lease before another process may take over.
    lease_minutes: int = Field(120, gt=0)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, v: str) -> str:
        try:
            cron_trigger(v, "UTC")
        except ValueError as err:
            raise ValueError(f"not a valid crontab expression: {err}") from None
        return v


def cron_trigger(cron: str, timezone: str):
    """An APScheduler trigger from five crontab fields, or six with seconds first (tests, demos)."""
    from apscheduler.triggers.cron import CronTrigger

    fields = cron.split()
    if len(fields) == 6:
        second, minute, hour, day, month, dow = fields
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=dow, timezone=timezone)
    return CronTrigger.from_crontab(cron, timezone=timezone)


class Config(_Strict):
    store: StoreConfig = StoreConfig()
    reports: ReportsConfig = ReportsConfig()
    contracts: FileSource | None = None
    people: FileSource | None = None
    sources: SourcesConfig = SourcesConfig()
    identity: IdentityConfig = IdentityConfig()
    ownership: list[OwnershipMapping] = Field(default_factory=list)
    schedule: ScheduleConfig = ScheduleConfig()
    notify: NotifyConfig = NotifyConfig()
    # A reviewed file of risk acceptances ([[accept]] fingerprint, until, reason, by).
    acceptances: FileSource | None = None
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict)

    # Set by load_config: the folder relative paths resolve against.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    def path(self, value: str) -> Path:
        """Resolve a path from the config against the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def store_url(self) -> str:
        url = self.store.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
            return prefix + str(self.path(url[len(prefix):]))
        return url


def _format_validation_error(err: ValidationError, origin: str) -> str:
    lines = [f"{origin}: invalid configuration"]
    for e in err.errors():
        loc = _toml_path(e["loc"])
        value = e.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key" + _key_hint(e["loc"])
        lines.append(f"  {loc or '<top level>'}: {msg}{shown}")
    return "\n".join(lines)


def _key_hint(loc: tuple[Any, ...]) -> str:
    """'; did you mean ...?' and the allowed keys, found by walking the models along ``loc``."""
    import difflib

    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int) or str(part).startswith(("function-", "model-")):
            continue
        field = getattr(model, "model_fields", {}).get(str(part))
        if field is None:
            return ""
        model = _model_of(field.annotation)
        if model is None:
            return ""
    allowed = [k for k in getattr(model, "model_fields", {}) if k != "base_dir"]
    if not allowed:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    return (f"; did you mean {close[0]!r}?" if close else "") + f" (allowed: {', '.join(allowed)})"


def _model_of(annotation: Any):
    """The pydantic model inside ``X``, ``list[X]`` or ``X | None``."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _toml_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "model-")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_config(data: dict[str, Any], *, origin: str = "config", base_dir: Path | None = None) -> Config:
    """Validate a parsed TOML document; raise :class:`ConfigError` naming every bad key."""
    try:
        config = Config.model_validate({**data, "base_dir": base_dir or Path.cwd()})
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, origin)) from None
    from detectors.rules import validate_rule_settings  # rules own their thresholds

    problems = validate_rule_settings(config.rules)
    if problems:
        raise ConfigError(f"{origin}: invalid configuration\n" + "\n".join(f"  {p}" for p in problems))
    return config


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file: {err.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return parse_config(data, origin=str(path), base_dir=path.resolve().parent)


def read_secret(config: Config, *, env: str | None, file: str | None, what: str) -> str:
    """Read a credential named by the config; the value is returned, never logged."""
    if env:
        value = os.environ.get(env)
        if value:
            return value.strip()
        if not file:
            raise ConfigError(f"{what}: environment variable {env} is not set or empty")
    if file:
        p = config.path(file)
        try:
            return p.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ConfigError(f"{what}: cannot read credential file {p}: {err.strerror}") from None
    raise ConfigError(f"{what}: no credential configured")
