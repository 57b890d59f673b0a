"""What every vendor collector does the same way: checking payloads and keeping a run's books.

The collectors (GitHub, GitLab, Slack, Jira, Okta, Entra, AWS) were written side by side and
each grew its own copy of this machinery. It lives here once so that a fix to how a malformed
item is skipped, or to how a failed listing becomes a coverage gap, reaches every vendor.

Two parts:

* **Payload checking** — :class:`MalformedItem` / :class:`MalformedResponse`, the :class:`Batch` a
  transform returns, :func:`each` (transform every item, skip and note a malformed one, keep the
  rest: DESIGN.md invariant 5) and the typed field readers (:func:`req_str`, :func:`opt_time`...).
  Their messages name the field and the JSON type, never a value (invariant 1).
* **Run bookkeeping** — :class:`CollectorRun`: warnings, progress, de-duplication by key, and the
  ``gap``/``ok``/``read`` trio that turns every inventory into a coverage entry — read with its
  count, or a gap with the reason, never an empty listing (invariant 2).

Where the vendors' copies differed (which fields label an item in a warning, whether a count is
"records" or "read", how a second record with the same key is merged), the difference is a
parameter or a class attribute here, set by each vendor, so that no collector's records, warnings,
log lines or progress messages changed when they moved here. Vendor-specific knowledge (privilege
normalisation, ``describe_error`` texts, key schemes) stays in the vendor's module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, ClassVar, Generic, Iterable, Iterator, Literal, Mapping, TypeVar

from scanner.records import CollectResult, InventoryStatus, Record, utc

T = TypeVar("T")

# --- keys ------------------------------------------------------------------------------------


def grant_key(src: str, subject_key: str, resource_key: str) -> str:
    """A grant is an edge, so its key names both ends: ``{src}:grant:{subject}->{resource}``."""
    return f"{src}:grant:{subject_key}->{resource_key}"


# --- payload checking ------------------------------------------------------------------------


class MalformedItem(Exception):
    """One item of a listing lacks the shape its vendor documents. Its text names the field, never a value."""


class MalformedResponse(Exception):
    """A whole response is not what the endpoint documents (not JSON, not a list, no header...)."""


# Which listing's copy of a record wins when two listings emit the same key (GitLab: a project
# token is in the admin token list and in its project's list; a bot is in GET /users and behind
# its token). A record a batch marks ``weak`` is a stand-in and never replaces a fuller one.
AUTHORITY_WEAK, AUTHORITY_LISTED, AUTHORITY_SPECIFIC = 0, 1, 2


@dataclass
class Batch:
    """What a transform returns: the records, why any item was skipped, and two optional extras.

    ``weak``: keys of stand-in records that must not replace a fuller record of the same key
    (GitLab builds a token's holder from the token alone when ``GET /users`` was not read).
    ``notes``: caveats on items that were kept (Jira contract issues with a value ignored); they
    become warnings like the skipped items do, without counting as skipped.
    """

    records: list[Record] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    weak: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: "Batch") -> None:
        self.records.extend(other.records)
        self.skipped.extend(other.skipped)
        self.weak |= other.weak
        self.notes.extend(other.notes)


Label = Callable[[Any], str]


def label_by(*keys: str, ints: Literal["quoted", "plain", "skip"] = "quoted", empty: bool = False) -> Label:
    """A labeller: the first of ``keys`` an item has, as `` (key='value')``, to name it in a warning.

    It names the item without quoting anything secret, so callers pass only identifying keys
    (never a variable's value). Strings are cut at 80 characters. ``ints``: an integer id is
    quoted like a string (``"quoted"``), shown bare (``"plain"``, GitLab) or not used
    (``"skip"``, vendors whose ids are strings). ``empty``: whether an empty string still labels.
    """

    def label(item: Any) -> str:
        if not isinstance(item, dict):
            return ""
        for k in keys:
            v = item.get(k)
            if isinstance(v, bool):
                continue
            if isinstance(v, int):
                if ints == "plain":
                    return f" ({k}={v})"
                if ints == "quoted":
                    return f" ({k}={str(v)[:80]!r})"
            elif isinstance(v, str) and (v or empty):
                return f" ({k}={v[:80]!r})"
        return ""

    return label


def no_label(item: Any) -> str:
    return ""


def each_item(skipped: list[str], items: Iterable[Any], what: str, build: Callable[[dict[str, Any]], T],
              label: Label = no_label, *, json_items: bool = True) -> Iterator[T]:
    """Yield ``build(item)`` for each item; a malformed one is noted in ``skipped`` and the rest kept.

    ``build`` raises :class:`MalformedItem` for a shape it rejects; any ``KeyError``, ``TypeError``,
    ``ValueError`` or ``AttributeError`` from deeper in the item is an unexpected shape, noted by
    its type only (its text could quote a value). ``json_items``: the items are decoded JSON, so a
    non-object is "a JSON list" (boto3 hands Python objects: "a list").

    It yields as it goes, so whatever a caller does with one item's output happens before the
    next item is built, as in a plain loop.
    """
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                kind = f"JSON {type(item).__name__}" if json_items else type(item).__name__
                raise MalformedItem(f"is a {kind}, not an object")
            out = build(item)
        except MalformedItem as err:
            skipped.append(f"{what} #{index}{label(item)}: {err}")
            continue
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            skipped.append(f"{what} #{index}{label(item)}: unexpected shape ({type(err).__name__})")
            continue
        yield out


def each(batch: Batch, items: Iterable[Any], what: str, build: Callable[[dict[str, Any]], list[Record]],
         label: Label = no_label, *, json_items: bool = True) -> None:
    """Transform each item into ``batch.records``; a malformed one is noted in ``batch.skipped``."""
    for records in each_item(batch.skipped, items, what, build, label, json_items=json_items):
        batch.records.extend(records)


# Typed field readers. Each raises MalformedItem naming the field and the type it found.


def req_int(item: Mapping[str, Any], key: str = "id") -> int:
    """A required integer (a JSON ``true`` is not one)."""
    v = item.get(key)
    if v is None:
        raise MalformedItem(f"missing {key}")
    if isinstance(v, bool) or not isinstance(v, int):
        raise MalformedItem(f"{key} is a {type(v).__name__}, not an integer")
    return v


def req_str(item: Mapping[str, Any], key: str) -> str:
    """A required, non-empty string."""
    v = item.get(key)
    if v is None or v == "":
        raise MalformedItem(f"missing {key}")
    if not isinstance(v, str):
        raise MalformedItem(f"{key} is a {type(v).__name__}, not a string")
    return v


def opt_str(item: Mapping[str, Any], key: str) -> str | None:
    """An optional string; absent, null and empty are all None."""
    v = item.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise MalformedItem(f"{key} is a {type(v).__name__}, not a string")
    return v


def opt_bool(item: Mapping[str, Any], key: str, default: bool | None = None) -> bool | None:
    """An optional boolean; absent or null is ``default``."""
    v = item.get(key)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise MalformedItem(f"{key} is a {type(v).__name__}, not a boolean")
    return v


def opt_dict(item: Mapping[str, Any], key: str) -> dict[str, Any]:
    """An optional object; absent or null is ``{}``."""
    v = item.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise MalformedItem(f"{key} is a {type(v).__name__}, not an object")
    return v


def opt_list(item: Mapping[str, Any], key: str) -> list[Any]:
    """An optional list; absent or null is ``[]``."""
    v = item.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise MalformedItem(f"{key} is a {type(v).__name__}, not a list")
    return v


def str_list(item: Mapping[str, Any], key: str) -> list[str]:
    """An optional list of strings."""
    values = opt_list(item, key)
    if not all(isinstance(v, str) for v in values):
        raise MalformedItem(f"{key} holds non-string entries")
    return values


def opt_time(item: Mapping[str, Any], key: str, *, expected: str = "a timestamp string", noun: str = "timestamp",
             zulu: bool = False, native: bool = False) -> datetime | None:
    """An optional ISO 8601 time as aware UTC (naive is taken as UTC; a date alone is its midnight).

    The vendors' differences are parameters: ``expected`` and ``noun`` word the errors;
    ``zulu`` reads a trailing ``Z`` as ``+00:00`` before parsing; ``native`` accepts a
    ``datetime`` as it is (boto3 parses times itself).
    """
    v = item.get(key)
    if v is None or v == "":
        return None
    if native and isinstance(v, datetime):
        return utc(v)
    if not isinstance(v, str):
        raise MalformedItem(f"{key} is a {type(v).__name__}, not {expected}")
    try:
        return utc(datetime.fromisoformat(v.replace("Z", "+00:00") if zulu else v))
    except ValueError:
        raise MalformedItem(f"{key} is not an ISO 8601 {noun}") from None


# --- run bookkeeping -------------------------------------------------------------------------


@dataclass
class Fetched(Generic[T]):
    """One API read's outcome: its data, or the reason it failed (for a gap reported later)."""

    data: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class CollectorRun:
    """One collector's run over one source: the :class:`CollectResult` it builds, and the books.

    A vendor's ``_Collector`` subclasses this, sets ``vendor``, implements :meth:`describe`
    (its ``describe_error``) and does its own reading. Every inventory ends up in ``coverage``
    through :meth:`ok` or :meth:`gap`; :meth:`read` runs one inventory's get+transform so that
    any failure becomes a gap with a clear reason and never stops the other inventories.

    The vendors differ in small ways, kept as class attributes:

    * ``merge`` — a record whose key was already emitted: ``"all"`` keeps both (Slack, Jira),
      ``"first"`` keeps the first (Okta, Entra, AWS), ``"privilege"`` keeps the first place but
      the highest privilege (GitHub: the same user in two orgs; GitLab, with authority ranks).
    * ``count_noun`` — "records" in the count of an inventory (Entra: "read");
      ``counted_noun`` — the progress noun when a count other than the records is given (AWS: "rows").
    * ``tell_skipped`` — whether the progress line mentions malformed items skipped.
    * :meth:`inventory_of` — maps the name callers use to the inventory (Okta, Entra and AWS
      pass a short name; the others pass the whole inventory).
    """

    vendor: ClassVar[str] = ""
    merge: ClassVar[Literal["all", "first", "privilege"]] = "first"
    count_noun: ClassVar[str] = "records"
    counted_noun: ClassVar[str | None] = None
    tell_skipped: ClassVar[bool] = True

    def __init__(self, source: Any, progress: Callable[[str], None] | None) -> None:
        self.source = source
        self.src: str = source.name
        self.progress = progress
        self.result = CollectResult(source=source.name)
        self.log = logging.getLogger(f"nhiscan.collectors.{self.vendor}")
        self.last_reason = ""  # the reason of the last failed fetch, for gaps that follow from it
        self._index: dict[str, int] = {}
        self._authority: dict[str, int] = {}

    # -- hooks

    def describe(self, err: BaseException, need: str) -> str:
        """The gap reason for a failed read: the vendor's ``describe_error`` (never ``str(err)``)."""
        raise NotImplementedError

    def inventory_of(self, name: str) -> str:
        return name

    # -- bookkeeping

    def requested(self, known: Iterable[str]) -> list[str]:
        """The configured inventories, in the order of ``known``; unknown names are a warning."""
        known = list(known)
        inventories = self.source.inventories
        requested = set(inventories) if inventories is not None else set(known)
        unknown = sorted(requested - set(known))
        if unknown:
            self._warn(f"{self.vendor} {self.src}: unknown inventories ignored: {', '.join(unknown)} "
                       f"(known: {', '.join(known)})")
        return [s for s in known if s in requested]

    def _warn(self, text: str) -> None:
        self.log.warning("%s", text)
        self.result.warnings.append(text)

    def _tell(self, msg: str) -> None:
        if self.progress:
            try:
                self.progress(msg)
            except Exception as err:  # noqa: BLE001 - a display problem must not stop the sweep
                self.log.debug("progress callback failed: %s", type(err).__name__)

    def _add(self, records: Iterable[Record], *, authority: int = AUTHORITY_LISTED, weak: Iterable[str] = ()) -> None:
        """Emit records once per key; which copy of a key wins is ``merge`` (see the class doc)."""
        if self.merge == "all":
            self.result.records.extend(records)
            return
        for rec in records:
            rank = AUTHORITY_WEAK if rec.key in weak else authority
            at = self._index.get(rec.key)
            if at is None:
                self._index[rec.key] = len(self.result.records)
                self._authority[rec.key] = rank
                self.result.records.append(rec)
                continue
            old = self.result.records[at]
            old_rank = self._authority[rec.key]
            if rank > old_rank or (rank == old_rank and self.merge == "privilege"
                                   and getattr(rec, "privilege", 0) > getattr(old, "privilege", 0)):
                self.result.records[at] = rec
                self._authority[rec.key] = rank

    def gap(self, name: str, reason: str) -> None:
        """An inventory that could not be read: a coverage gap with the reason, never an empty listing."""
        inventory = self.inventory_of(name)
        self.log.warning("%s %s: not read: %s", self.vendor, inventory, reason)
        self.result.coverage.append(InventoryStatus(source=self.src, inventory=inventory, ok=False, reason=reason))
        self._tell(f"{inventory}: not read - {reason}")

    def ok(self, name: str, batch: Batch, count: int | None = None, *, authority: int = AUTHORITY_LISTED) -> None:
        """An inventory read: its records, a warning per skipped item or note, and its count.

        ``count`` replaces the number of records where the listing is counted otherwise (the
        rows of AWS's credential report, the sign-ins Entra read).
        """
        inventory = self.inventory_of(name)
        for why in batch.skipped:
            self._warn(f"{self.vendor} {inventory}: skipped malformed item: {why}")
        for note in batch.notes:
            self._warn(f"{self.vendor} {inventory}: {note}")
        self._add(batch.records, authority=authority, weak=batch.weak)
        n = len(batch.records) if count is None else count
        self.result.coverage.append(InventoryStatus(source=self.src, inventory=inventory, ok=True, count=n))
        self.log.info("%s %s: %d %s", self.vendor, inventory, n, self.count_noun)
        noun = self.counted_noun if count is not None and self.counted_noun else self.count_noun
        skipped = f", {len(batch.skipped)} malformed skipped" if batch.skipped and self.tell_skipped else ""
        self._tell(f"{inventory}: {n} {noun}{skipped}")

    def attempt(self, need: str, fn: Callable[[], T], *,
                explain: Callable[[BaseException], str | None] | None = None) -> Fetched[T]:
        """Run one API read; a failure is kept as its reason (``explain`` first, else :meth:`describe`)."""
        try:
            return Fetched(data=fn())
        except Exception as err:  # noqa: BLE001 - one listing's failure must not stop the others
            return Fetched(error=(explain(err) if explain else None) or self.describe(err, need))

    def fetch(self, name: str, need: str, fn: Callable[[], T], *,
              explain: Callable[[BaseException], str | None] | None = None) -> T | None:
        """Run one inventory's I/O; a failure becomes a gap (its reason kept in ``last_reason``) and None."""
        out = self.attempt(need, fn, explain=explain)
        if not out.ok:
            self.last_reason = out.error or ""
            self.gap(name, self.last_reason)
            return None
        return out.data

    def read(self, name: str, need: str, fn: Callable[[], Batch | tuple[Batch, int]], *,
             explain: Callable[[BaseException], str | None] | None = None, authority: int = AUTHORITY_LISTED) -> bool:
        """Run one inventory's get+transform; any failure becomes a gap with a clear reason.

        ``fn`` returns the Batch, or ``(batch, count)`` where the count is not the records'.
        """
        out = self.attempt(need, fn, explain=explain)
        if not out.ok:
            self.gap(name, out.error or "")
            return False
        batch, count = out.data if isinstance(out.data, tuple) else (out.data, None)
        self.ok(name, batch, count, authority=authority)
        return True
