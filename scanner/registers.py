"""Loading the contract register and the HR export: the two files people keep by hand.

Both are validated like ``config.toml`` (DESIGN.md invariant 5): a bad row is
skipped with a warning that names the file, the row (line number for CSV,
``contract[3]`` for TOML, counted from 0 like the config's key paths), the
column or key, the value and what was expected; a file that cannot be used at
all raises :class:`~scanner.config.ConfigError` with the same precision. The
rest of the file still loads, so one typo never hides every contract.

Public API::

    load_contracts(path, *, today=None) -> (list[Contract], warnings)
    load_people(path, *, today=None) -> (list[Person], warnings)
    contract_from_values(values, *, where, today, warnings, ...) -> Contract | None

``contract_from_values`` is the one place a contract is validated and built; registers kept
elsewhere (contracts as Jira issues, ``scanner.collectors.jira``) call it with their own
required fields, record source and field names for messages.

``today`` is injected (default :func:`datetime.date.today`) so tests can move
the clock; it decides a contract's status when the register does not give one,
and which past end dates deserve a warning.

The formats, with complete examples, are described in ``docs/registers.md``.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterable

from scanner.config import ConfigError
from scanner.records import Contract, MatchRules, Person

CONTRACT_KINDS = ("vendor", "partner", "contractor", "customer", "reseller", "managed_service")
CONTRACT_STATUSES = ("active", "ended", "terminated", "suspended")
# HR status as written -> the Person status we keep.
PERSON_STATUSES = {
    "active": "active",
    "departed": "departed",
    "terminated": "departed",
    "inactive": "departed",
    "leave": "leave",
}

CONTRACT_FIELDS = (
    "id",
    "counterparty",
    "kind",
    "start",
    "end",
    "status",
    "sponsor",
    "last_attestation",
    "match_domains",
    "match_names",
    "match_keys",
)
CONTRACT_REQUIRED = ("id", "counterparty", "kind", "start")

# HR field -> the header names accepted for it, in order of preference.
PEOPLE_COLUMNS = {
    "email": ("email", "email_address", "work_email"),
    "status": ("status", "employment_status"),
    "end_date": ("end_date", "termination_date"),
    "manager": ("manager", "manager_email"),
    "worker_type": ("worker_type", "employee_type"),
    "name": ("name", "display_name", "full_name"),
}
PEOPLE_REQUIRED = ("email", "status")

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_LOCAL_RE = re.compile(r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$")
_ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DELIMITERS = (",", ";", "\t", "|")


# --- public API -----------------------------------------------------------------


def load_contracts(path: Path, *, today: date | None = None) -> tuple[list[Contract], list[str]]:
    """Read the contract register (``.toml`` or ``.csv``) into Contract records.

    Returns the contracts and the warnings (rows skipped, and rows kept with a
    caveat such as a missing sponsor). Raises ConfigError when the file cannot be
    read or parsed, has no recognisable header / ``[[contract]]`` tables, lacks a
    required column, or repeats a contract id.
    """
    path = Path(path)
    today = today or date.today()
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".csv"):
        raise ConfigError(
            f"{path}: contract register must be a .toml or .csv file (the extension picks the format), got {path.suffix or 'no extension'!r}"
        )
    text = _read_text(path, "contract register")
    warnings: list[str] = []
    rows = _contract_rows_from_toml(path, text, warnings) if suffix == ".toml" else _contract_rows_from_csv(path, text, warnings)
    _reject_duplicate_ids(path, rows)
    contracts = []
    for row in rows:
        contract = _contract_from_row(row, today, warnings)
        if contract is not None:
            contracts.append(contract)
    return contracts, warnings


def load_people(path: Path, *, today: date | None = None) -> tuple[list[Person], list[str]]:
    """Read the HR export (CSV) into Person records.

    Returns the people (one per email; a repeated email keeps its last row) and
    the warnings. Raises ConfigError when the file cannot be read, has no
    recognisable header, or lacks the ``email`` or ``status`` column.
    """
    path = Path(path)
    today = today or date.today()
    text = _read_text(path, "HR export")
    warnings: list[str] = []
    table = _read_csv(path, text, PEOPLE_COLUMNS, PEOPLE_REQUIRED, warnings, what="HR export")
    people: dict[str, tuple[int, Person]] = {}
    for line, values in table.rows:
        person = _person_from_row(path, line, values, today, warnings)
        if person is None:
            continue
        if person.email in people:
            earlier = people[person.email][0]
            warnings.append(f"{path}:{line}: email {person.email!r} also on line {earlier}; keeping line {line}, the last one")
        people[person.email] = (line, person)
    return [person for _, person in people.values()], warnings


# --- rows: where a value came from ----------------------------------------------


@dataclass(frozen=True)
class Acceptance:
    """One reviewed risk acceptance: who accepted which finding, why, and until when."""

    fingerprint: str
    until: date
    reason: str
    by: str


ACCEPTANCE_FIELDS = ("fingerprint", "until", "reason", "by")


def load_acceptances(path: Path) -> tuple[list[Acceptance], list[str]]:
    """Read an acceptances file (``[[accept]]`` tables), kept in git for review.

    A bad entry is skipped with a warning naming it; an unreadable file is a ConfigError.
    """
    text = _read_text(path, "acceptances file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: acceptances file is not valid TOML: {err}") from None
    tables = data.get("accept", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: 'accept' must be an array of tables: write [[accept]] before each entry")
    out: list[Acceptance] = []
    warnings: list[str] = []
    for i, table in enumerate(tables):
        where = f"{path}: accept[{i}]"
        if not isinstance(table, dict):
            warnings.append(f"{where}: skipped: expected an [[accept]] table, got {_show(table)}")
            continue
        problems = [f"unknown key {k!r}" for k in table if k not in ACCEPTANCE_FIELDS]
        values: dict[str, Any] = {}
        for key, parse in (("fingerprint", _required_text), ("until", _required_date), ("reason", _required_text), ("by", _required_email)):
            try:
                values[key] = parse(table.get(key))
            except _Bad as bad:
                problems.append(f"{key}: {bad}")
        if problems:
            warnings.append(f"{where}: skipped: " + "; ".join(problems))
            continue
        out.append(Acceptance(**values))
    return out, warnings


@dataclass
class _Row:
    """One contract or person as written, before validation."""

    where: str  # "contracts.csv:4" or "contracts.toml: contract[3] (id 'C-3')"
    short: str  # "line 4" or "contract[3]", for messages that name two rows
    label: str  # "column" (CSV) or "key" (TOML)
    values: dict[str, Any]
    problems: list[str] = dataclasses.field(default_factory=list)
    # Register field -> the name its source uses, for messages (a Jira field name such as 'Contract end').
    names: dict[str, str] = dataclasses.field(default_factory=dict)

    def field(self, name: str) -> str:
        return f"{self.label} {self.names.get(name, name)!r}"

    def get(self, name: str, parse: Callable[..., Any], *args: Any) -> Any:
        """Parse one value; a bad one is noted in ``problems`` (the row will be skipped) and gives None."""
        try:
            return parse(self.values.get(name), *args)
        except _Bad as err:
            self.problems.append(f"{self.field(name)}: {err}")
            return None

    def skipped(self, warnings: list[str]) -> bool:
        if self.problems:
            warnings.append(f"{self.where}: row skipped: " + "; ".join(self.problems))
        return bool(self.problems)


class _Bad(ValueError):
    """A value that fails validation; the message says what was expected."""


# --- reading files ----------------------------------------------------------------


def _read_text(path: Path, what: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read {what}: {err.strerror or err}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" export
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"  # tolerates the BOM spreadsheet programs write
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        where = f"{path}:{line}" if encoding != "utf-16" else str(path)
        raise ConfigError(
            f"{where}: {what} is not {encoding.removesuffix('-sig').upper()} text "
            f"(byte 0x{data[err.start]:02x} at offset {err.start}); save it as UTF-8"
        ) from None


@dataclass
class _CsvTable:
    header: list[str]  # the header cells as written
    rows: list[tuple[int, dict[str, str]]]  # (line the row starts on, field -> stripped value)


def _normalise_header(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _read_csv(
    path: Path, text: str, accepted: dict[str, tuple[str, ...]], required: Iterable[str], warnings: list[str], *, what: str
) -> _CsvTable:
    """Parse a CSV whose first non-blank line is a header naming the fields in ``accepted``.

    Rows with more cells than the header are skipped with a warning; blank
    rows are ignored; columns not in ``accepted`` are not read. The delimiter
    is whichever of ``, ; TAB |`` makes the header line name the most known
    columns, so a ``;`` inside a data cell never confuses the sniffing.
    """
    lines = list(io.StringIO(text, newline=""))  # split exactly as the csv reader will
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        raise ConfigError(f"{path}: {what} is empty; expected a header line naming the columns {', '.join(accepted)}")
    known = {name for names in accepted.values() for name in names}

    def recognised(delimiter: str) -> tuple[int, int]:
        cells = next(csv.reader([lines[header_index]], delimiter=delimiter), [])
        return sum(_normalise_header(c) in known for c in cells), len(cells)

    delimiter = max(_DELIMITERS, key=recognised)  # ties keep the earlier (",")
    if recognised(delimiter)[0] == 0:
        raise ConfigError(
            f"{path}:{header_index + 1}: no recognisable header in {what}: {_show(lines[header_index].rstrip())}; "
            f"expected a first line naming the columns {', '.join(accepted)}"
        )

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        parsed = []
        last_line = 0
        for cells in reader:
            parsed.append((last_line + 1, cells))
            last_line = reader.line_num
    except csv.Error as err:
        raise ConfigError(f"{path}:{reader.line_num}: {what} is not valid CSV: {err}") from None

    parsed = [(line, cells) for line, cells in parsed if any(c.strip() for c in cells)]
    header_line, header = parsed[0]
    names = [_normalise_header(c) for c in header]
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        positions.setdefault(name, []).append(i)
    columns: dict[str, int] = {}
    for field_name, candidates in accepted.items():
        for candidate in candidates:
            if candidate not in positions:
                continue
            if len(positions[candidate]) > 1:
                numbers = " and ".join(str(i + 1) for i in positions[candidate])
                raise ConfigError(f"{path}:{header_line}: column {candidate!r} appears more than once (columns {numbers}); keep one")
            columns[field_name] = positions[candidate][0]
            break
    missing = [f for f in required if f not in columns]
    if missing:
        raise ConfigError(
            f"{path}:{header_line}: {what} header lacks required column(s) {', '.join(missing)}; "
            f"found {', '.join(repr(c) for c in header)}"
        )

    rows = []
    for line, cells in parsed[1:]:
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
            warnings.append(
                f"{path}:{line}: row skipped: it has {len(cells)} cells but the header has {len(header)}; "
                f"quote a value that contains {delimiter!r}"
            )
            continue
        cells = cells + [""] * (len(header) - len(cells))  # trailing empty cells left out
        rows.append((line, {f: cells[i].strip() for f, i in columns.items()}))
    return _CsvTable(header=header, rows=rows)


# --- contract register ------------------------------------------------------------


def _contract_rows_from_csv(path: Path, text: str, warnings: list[str]) -> list[_Row]:
    accepted = {f: (f,) for f in CONTRACT_FIELDS}
    table = _read_csv(path, text, accepted, CONTRACT_REQUIRED, warnings, what="contract register")
    unknown = [c for c in table.header if c.strip() and _normalise_header(c) not in CONTRACT_FIELDS]
    if unknown:
        warnings.append(
            f"{path}: unknown column(s) {', '.join(repr(c) for c in unknown)} ignored; "
            f"known columns are {', '.join(CONTRACT_FIELDS)}"
        )
    return [_Row(where=f"{path}:{line}", short=f"line {line}", label="column", values=values) for line, values in table.rows]


def _contract_rows_from_toml(path: Path, text: str, warnings: list[str]) -> list[_Row]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: contract register is not valid TOML: {err}") from None
    tables = data.get("contract")
    if tables is None:
        raise ConfigError(f"{path}: no [[contract]] tables found; each contract is a [[contract]] table with at least {', '.join(CONTRACT_REQUIRED)}")
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: 'contract' must be an array of tables: write [[contract]] (double brackets) before each contract")
    others = [k for k in data if k != "contract"]
    if others:
        warnings.append(f"{path}: top-level key(s) {', '.join(repr(k) for k in others)} ignored; the register holds only [[contract]] tables")
    rows = []
    for i, table in enumerate(tables):
        where = f"{path}: contract[{i}]"
        if not isinstance(table, dict):
            warnings.append(f"{where}: row skipped: it is {_show(table)}, expected a [[contract]] table")
            continue
        if isinstance(table.get("id"), str) and table["id"].strip():
            where += f" (id {table['id'].strip()!r})"
        unknown = [k for k in table if k not in CONTRACT_FIELDS]
        if unknown:
            warnings.append(
                f"{where}: unknown key(s) {', '.join(repr(k) for k in unknown)} ignored; known keys are {', '.join(CONTRACT_FIELDS)}"
            )
        values = {k: v for k, v in table.items() if k in CONTRACT_FIELDS}
        rows.append(_Row(where=where, short=f"contract[{i}]", label="key", values=values))
    return rows


def _reject_duplicate_ids(path: Path, rows: list[_Row]) -> None:
    """Two rows with one id make every link to that contract ambiguous: refuse the file."""
    seen: dict[str, list[str]] = {}
    for row in rows:
        try:
            contract_id = _text(row.values.get("id"))
        except _Bad:
            continue
        if contract_id:
            seen.setdefault(contract_id, []).append(row.short)
    dupes = {cid: places for cid, places in seen.items() if len(places) > 1}
    if dupes:
        details = "; ".join(f"id {cid!r} at {', '.join(places)}" for cid, places in dupes.items())
        raise ConfigError(f"{path}: duplicate contract id(s): {details}; each contract id must be unique")


def contract_from_values(
    values: dict[str, Any],
    *,
    where: str,
    today: date,
    warnings: list[str],
    label: str = "key",
    names: dict[str, str] | None = None,
    required: Iterable[str] = CONTRACT_REQUIRED,
    source: str = "contracts",
    inventory: str = "contracts:register",
) -> Contract | None:
    """Validate one contract given as register values (keys from ``CONTRACT_FIELDS``) and build it.

    ``where`` prefixes every warning (``jira LEGAL-2``); ``label`` and ``names`` say how a field
    is named there (``field 'Contract end'``). ``required`` may differ from the file register's
    (a Jira register requires ``end`` but not ``kind``; a missing kind is kept as ``unknown``).
    The record key is ``{source}:contract:{id}``. Returns None when the values are unusable; the
    warning says which field is wrong and what was expected.
    """
    row = _Row(where=where, short=where, label=label, values=values, names=dict(names or {}))
    return _contract_from_row(row, today, warnings, required=frozenset(required), source=source, inventory=inventory)


def _contract_from_row(
    row: _Row,
    today: date,
    warnings: list[str],
    *,
    required: frozenset[str] = frozenset(CONTRACT_REQUIRED),
    source: str = "contracts",
    inventory: str = "contracts:register",
) -> Contract | None:
    contract_id = row.get("id", _required_text)
    counterparty = row.get("counterparty", _required_text)
    kind = row.get("kind", _required_choice if "kind" in required else _choice, CONTRACT_KINDS, "contract kind")
    start = row.get("start", _required_date if "start" in required else _date)
    end = row.get("end", _required_date if "end" in required else _date)
    status = row.get("status", _choice, CONTRACT_STATUSES, "contract status")
    sponsor = row.get("sponsor", _email)
    last_attestation = row.get("last_attestation", _date)
    domains = row.get("match_domains", _list, _domain)
    names = row.get("match_names", _list, _pattern)
    keys = row.get("match_keys", _list, _record_key)
    if start and end and end < start:
        row.problems.append(f"{row.field('end')}: {end.isoformat()!r} is before start {start.isoformat()!r}")
    if row.skipped(warnings):
        return None

    if status is None:
        status = "ended" if end is not None and end < today else "active"
    elif status == "active" and end is not None and end < today:
        warnings.append(
            f"{row.where}: {row.field('status')} is 'active' but end {end.isoformat()!r} is past; "
            f"kept as active: update the status or the end date"
        )
    if sponsor is None:
        warnings.append(f"{row.where}: {row.field('sponsor')} is missing; contract {contract_id!r} has no accountable sponsor (kept)")
    if last_attestation is not None and last_attestation > today:
        warnings.append(f"{row.where}: {row.field('last_attestation')} {last_attestation.isoformat()!r} is in the future (kept)")
    if not (domains or names or keys):
        warnings.append(f"{row.where}: no match_domains, match_names or match_keys; contract {contract_id!r} covers no NHI (kept)")
    if "*" in names:
        warnings.append(f"{row.where}: {row.field('match_names')} pattern '*' claims every NHI for contract {contract_id!r} (kept)")

    return Contract(
        key=f"{source}:contract:{contract_id}",
        source=source,
        inventory=inventory,
        name=f"{contract_id} {counterparty}",
        contract_id=contract_id,
        counterparty=counterparty,
        contract_type=kind or "unknown",
        start=start,
        end=end,
        status=status,
        sponsor_email=sponsor,
        last_attestation=last_attestation,
        match=MatchRules(email_domains=domains, name_patterns=names, keys=keys),
    )


# --- HR export ------------------------------------------------------------------------


def _person_from_row(path: Path, line: int, values: dict[str, str], today: date, warnings: list[str]) -> Person | None:
    row = _Row(where=f"{path}:{line}", short=f"line {line}", label="column", values=values)
    email = row.get("email", _required_email)
    status = row.get("status", _required_choice, tuple(PERSON_STATUSES), "HR status")
    end_date = row.get("end_date", _date)
    if row.skipped(warnings):
        return None
    status = PERSON_STATUSES[status]
    try:
        manager = _email(values.get("manager"))
    except _Bad as err:
        # The manager only enriches a person; losing the person's status over it would be worse.
        warnings.append(f"{row.where}: {row.field('manager')}: {err}; manager left empty (row kept)")
        manager = None
    if status == "active" and end_date is not None and end_date < today:
        warnings.append(
            f"{row.where}: {email} has status 'active' but end_date {end_date.isoformat()!r} is past; "
            f"kept as active: check the HR record"
        )
    return Person(
        key=f"hr:person:{email}",
        source="hr",
        inventory="hr:people",
        name=values.get("name") or email,
        email=email,
        status=status,
        end_date=end_date,
        manager_email=manager,
        worker_type=(values.get("worker_type") or "").lower() or None,
    )


# --- value parsers: each returns the value or raises _Bad saying what was expected ------


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value.isoformat() if isinstance(value, date) else value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Bad(f"{_show(value)} is a {type(value).__name__}, expected text")
    return str(value).strip() or None


def _required_text(value: Any) -> str:
    text = _text(value)
    if text is None:
        raise _Bad("missing; a value is required")
    return text


def _choice(value: Any, allowed: tuple[str, ...], what: str) -> str | None:
    text = _text(value)
    if text is None:
        return None
    normal = _normalise_header(text)  # "Managed Service" -> "managed_service"
    if normal not in allowed:
        raise _Bad(f"{_show(value)} is not a known {what}; expected one of {', '.join(allowed)}")
    return normal


def _required_choice(value: Any, allowed: tuple[str, ...], what: str) -> str:
    choice = _choice(value, allowed, what)
    if choice is None:
        raise _Bad(f"missing; expected one of {', '.join(allowed)}")
    return choice


def _date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if _ISO_DATE_RE.match(text):
                return date.fromisoformat(text)
            if _ISO_DATE_RE.match(text[:10]) and text[10:11] in ("T", " "):  # a spreadsheet's timestamp
                return datetime.fromisoformat(text).date()
        except ValueError:
            raise _Bad(f"{_show(value)} is not a valid date (expected YYYY-MM-DD)") from None
    raise _Bad(f"{_show(value)} is not an ISO date (expected YYYY-MM-DD)")


def _required_date(value: Any) -> date:
    parsed = _date(value)
    if parsed is None:
        raise _Bad("missing; expected an ISO date (YYYY-MM-DD)")
    return parsed


def _is_domain(text: str) -> bool:
    return bool(_DOMAIN_RE.match(text))


def _email(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    email = text.lower()
    local, at, domain = email.rpartition("@")
    if not (at and _LOCAL_RE.match(local) and not local.startswith(".") and not local.endswith(".") and _is_domain(domain)):
        raise _Bad(f"{_show(value)} is not an email address (expected name@domain.tld)")
    return email


def _required_email(value: Any) -> str:
    email = _email(value)
    if email is None:
        raise _Bad("missing; expected an email address (name@domain.tld)")
    return email


def _domain(item: str) -> str:
    domain = item.lower().removeprefix("@")
    if not _is_domain(domain):
        hint = " (separate several with ';')" if any(c in domain for c in ",; ") else ""
        raise _Bad(f"{_show(item)} is not a domain; expected e.g. 'globex.example'{hint}")
    return domain


def _pattern(item: str) -> str:
    """Any text is a valid fnmatch pattern; matching is case-insensitive, so it is kept as written."""
    return item


def _record_key(item: str) -> str:
    parts = item.split(":", 2)
    if len(parts) < 3 or not all(parts):
        raise _Bad(f"{_show(item)} is not a record key; expected '<source>:<kind>:<id>', e.g. 'github:deploy_key:acme/api/123'")
    return item


def _list(value: Any, parse_item) -> tuple[str, ...]:
    """A TOML array of strings, or one string of ';'-separated items (the CSV form)."""
    if value is None:
        return ()
    if isinstance(value, str):
        items = value.split(";")
    elif isinstance(value, list):
        items = value
        bad = [item for item in items if not isinstance(item, str)]
        if bad:
            raise _Bad(f"{_show(bad[0])} is a {type(bad[0]).__name__}, expected a list of strings")
    else:
        raise _Bad(f"{_show(value)} is a {type(value).__name__}, expected a list of strings")
    out: list[str] = []
    for item in items:
        item = item.strip()
        if item:
            parsed = parse_item(item)
            if parsed not in out:
                out.append(parsed)
    return tuple(out)
