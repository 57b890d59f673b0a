"""The contract register and the HR export: parsing, derivation and every validation path."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from scanner.config import ConfigError
from scanner.records import Contract, MatchRules, Person
from scanner.registers import load_contracts, load_people

TODAY = date(2025, 6, 1)

CONTRACTS_TOML = """
[[contract]]
id = "C-100"
counterparty = "Globex Corp"
kind = "vendor"
start = 2024-01-01
end = 2026-12-31
status = "active"
sponsor = "Alice@Corp.example"
last_attestation = 2025-03-01
match_domains = ["globex.example", "@Globex-Support.example"]
match_names = ["globex-*", "svc-globex*"]
match_keys = ["github:deploy_key:acme/api/123"]

[[contract]]
id = "C-200"
counterparty = "Initech"
kind = "managed_service"
start = "2023-02-01"
end = "2025-01-31"
sponsor = "bob@corp.example"
match_names = ["initech-*"]
"""

CONTRACTS_CSV_HEADER = "id,counterparty,kind,start,end,status,sponsor,last_attestation,match_domains,match_names,match_keys\n"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def contracts_csv(tmp_path: Path, *rows: str, header: str = CONTRACTS_CSV_HEADER) -> Path:
    return write(tmp_path, "contracts.csv", header + "".join(r + "\n" for r in rows))


def hr_csv(tmp_path: Path, *rows: str, header: str = "email,status,end_date,manager,worker_type\n") -> Path:
    return write(tmp_path, "people.csv", header + "".join(r + "\n" for r in rows))


# --- contract register: TOML ------------------------------------------------------


def test_toml_register_gives_full_contract_records(tmp_path):
    path = write(tmp_path, "contracts.toml", CONTRACTS_TOML)
    contracts, warnings = load_contracts(path, today=TODAY)

    assert warnings == []
    assert contracts[0] == Contract(
        key="contracts:contract:C-100",
        source="contracts",
        inventory="contracts:register",
        name="C-100 Globex Corp",
        contract_id="C-100",
        counterparty="Globex Corp",
        contract_type="vendor",
        start=date(2024, 1, 1),
        end=date(2026, 12, 31),
        status="active",
        sponsor_email="alice@corp.example",
        last_attestation=date(2025, 3, 1),
        match=MatchRules(
            email_domains=("globex.example", "globex-support.example"),
            name_patterns=("globex-*", "svc-globex*"),
            keys=("github:deploy_key:acme/api/123",),
        ),
    )
    # Dates written as strings parse too; an end before today with no status means "ended".
    second = contracts[1]
    assert (second.contract_type, second.start, second.end, second.status) == (
        "managed_service",
        date(2023, 2, 1),
        date(2025, 1, 31),
        "ended",
    )
    assert second.match == MatchRules(name_patterns=("initech-*",))
    assert len(contracts) == 2


def test_toml_bad_rows_are_skipped_with_index_key_value_and_expectation(tmp_path):
    path = write(
        tmp_path,
        "contracts.toml",
        CONTRACTS_TOML
        + """
[[contract]]
id = "C-300"
counterparty = "Hooli"
kind = "vendr"
start = 2024-01-01
sponsor = "not-an-email"
""",
    )
    contracts, warnings = load_contracts(path, today=TODAY)

    assert [c.contract_id for c in contracts] == ["C-100", "C-200"]
    assert warnings == [
        f"{path}: contract[2] (id 'C-300'): row skipped: "
        "key 'kind': 'vendr' is not a known contract kind; expected one of vendor, partner, contractor, "
        "customer, reseller, managed_service; "
        "key 'sponsor': 'not-an-email' is not an email address (expected name@domain.tld)"
    ]


def test_toml_unknown_key_is_named_and_row_kept(tmp_path):
    path = write(
        tmp_path,
        "contracts.toml",
        '[[contract]]\nid = "C-1"\ncounterparty = "Globex"\nkind = "vendor"\nstart = 2024-01-01\n'
        'sponser = "a@corp.example"\nmatch_names = ["globex-*"]\n',
    )
    contracts, warnings = load_contracts(path, today=TODAY)

    assert [c.sponsor_email for c in contracts] == [None]
    assert warnings[0].startswith(f"{path}: contract[0] (id 'C-1'): unknown key(s) 'sponser' ignored")
    assert warnings[1] == f"{path}: contract[0] (id 'C-1'): key 'sponsor' is missing; contract 'C-1' has no accountable sponsor (kept)"
    assert len(warnings) == 2


def test_toml_duplicate_id_raises_naming_both_tables(tmp_path):
    path = write(tmp_path, "contracts.toml", CONTRACTS_TOML + '\n[[contract]]\nid = "C-100"\ncounterparty = "Again"\n')
    with pytest.raises(ConfigError) as err:
        load_contracts(path, today=TODAY)
    assert str(err.value) == f"{path}: duplicate contract id(s): id 'C-100' at contract[0], contract[2]; each contract id must be unique"


def test_toml_without_contract_tables_or_with_single_brackets_raises(tmp_path):
    empty = write(tmp_path, "empty.toml", 'title = "contracts"\n')
    with pytest.raises(ConfigError, match=r"empty\.toml: no \[\[contract\]\] tables found"):
        load_contracts(empty, today=TODAY)
    single = write(tmp_path, "single.toml", '[contract]\nid = "C-1"\n')
    with pytest.raises(ConfigError, match=r"single\.toml: 'contract' must be an array of tables: write \[\[contract\]\]"):
        load_contracts(single, today=TODAY)


def test_toml_syntax_error_raises_with_position(tmp_path):
    path = write(tmp_path, "contracts.toml", '[[contract]]\nid = "C-1\n')
    with pytest.raises(ConfigError) as err:
        load_contracts(path, today=TODAY)
    assert str(err.value).startswith(f"{path}: contract register is not valid TOML:")
    assert "line 2" in str(err.value)


# --- contract register: CSV ------------------------------------------------------


def test_csv_register_parses_lists_and_normalises_values(tmp_path):
    path = contracts_csv(
        tmp_path,
        "C-1,Globex,vendor,2024-01-01,,,ALICE@corp.example,2025-02-01,globex.example; globex.example ;GLOBEX-eu.example,globex-*;*-globex,github:app_installation:acme/42",
        "C-2,Umbrella,Managed Service,2024-05-01,2027-01-01,suspended,bob@corp.example,,,umbrella-*,",
    )
    contracts, warnings = load_contracts(path, today=TODAY)

    assert warnings == []
    first, second = contracts
    assert first.key == "contracts:contract:C-1"
    assert first.sponsor_email == "alice@corp.example"
    assert first.status == "active"  # open-ended, no status given
    assert first.end is None
    assert first.last_attestation == date(2025, 2, 1)
    assert first.match == MatchRules(
        email_domains=("globex.example", "globex-eu.example"),  # de-duplicated, lower-cased, order kept
        name_patterns=("globex-*", "*-globex"),
        keys=("github:app_installation:acme/42",),
    )
    assert (second.contract_type, second.status) == ("managed_service", "suspended")


@pytest.mark.parametrize(
    ("end", "status", "expected"),
    [
        ("2025-05-31", "", "ended"),  # ended yesterday
        ("2025-06-01", "", "active"),  # the end date is the last day covered
        ("2025-06-02", "", "active"),
        ("", "", "active"),  # open-ended
        ("2025-07-01", "terminated", "terminated"),  # an explicit status wins
    ],
)
def test_status_is_derived_from_end_against_today(tmp_path, end, status, expected):
    path = contracts_csv(tmp_path, f"C-1,Globex,vendor,2024-01-01,{end},{status},a@corp.example,,globex.example,,")
    contracts, warnings = load_contracts(path, today=TODAY)
    assert [c.status for c in contracts] == [expected]
    assert warnings == []


def test_explicit_active_status_after_end_is_kept_with_warning(tmp_path):
    path = contracts_csv(tmp_path, "C-1,Globex,vendor,2024-01-01,2025-01-31,active,a@corp.example,,globex.example,,")
    contracts, warnings = load_contracts(path, today=TODAY)
    assert [c.status for c in contracts] == ["active"]
    assert warnings == [
        f"{path}:2: column 'status' is 'active' but end '2025-01-31' is past; kept as active: update the status or the end date"
    ]


def test_status_derivation_uses_the_injected_today(tmp_path):
    path = contracts_csv(tmp_path, "C-1,Globex,vendor,2024-01-01,2025-01-31,,a@corp.example,,globex.example,,")
    assert load_contracts(path, today=date(2025, 1, 1))[0][0].status == "active"
    assert load_contracts(path, today=date(2025, 2, 1))[0][0].status == "ended"


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (
            "C-9,Globex,vendor,2024-02-30,,,a@corp.example,,,,",
            "column 'start': '2024-02-30' is not a valid date (expected YYYY-MM-DD)",
        ),
        (
            "C-9,Globex,vendor,01/02/2024,,,a@corp.example,,,,",
            "column 'start': '01/02/2024' is not an ISO date (expected YYYY-MM-DD)",
        ),
        (
            "C-9,Globex,vendor,2024-01-01,someday,,a@corp.example,,,,",
            "column 'end': 'someday' is not an ISO date (expected YYYY-MM-DD)",
        ),
        (
            "C-9,Globex,supplier,2024-01-01,,,a@corp.example,,,,",
            "column 'kind': 'supplier' is not a known contract kind; expected one of vendor, partner, contractor, "
            "customer, reseller, managed_service",
        ),
        (
            "C-9,Globex,vendor,2024-01-01,,paused,a@corp.example,,,,",
            "column 'status': 'paused' is not a known contract status; expected one of active, ended, terminated, suspended",
        ),
        (
            "C-9,Globex,vendor,2024-01-01,,,alice@corp,,,,",
            "column 'sponsor': 'alice@corp' is not an email address (expected name@domain.tld)",
        ),
        (
            "C-9,Globex,vendor,2024-01-01,,,a@corp.example,,globex,,",
            "column 'match_domains': 'globex' is not a domain; expected e.g. 'globex.example'",
        ),
        (
            'C-9,Globex,vendor,2024-01-01,,,a@corp.example,,"globex.example, initech.example",,',
            "column 'match_domains': 'globex.example, initech.example' is not a domain; expected e.g. 'globex.example' "
            "(separate several with ';')",
        ),
        (
            "C-9,Globex,vendor,2024-01-01,,,a@corp.example,,,,deploy_key-123",
            "column 'match_keys': 'deploy_key-123' is not a record key; expected '<source>:<kind>:<id>', "
            "e.g. 'github:deploy_key:acme/api/123'",
        ),
        (
            "C-9,,vendor,2024-01-01,,,a@corp.example,,,,",
            "column 'counterparty': missing; a value is required",
        ),
        (
            "C-9,Globex,vendor,2024-06-01,2024-05-01,,a@corp.example,,,,",
            "column 'end': '2024-05-01' is before start '2024-06-01'",
        ),
    ],
)
def test_csv_bad_value_skips_the_row_naming_line_column_value_and_expectation(tmp_path, row, problem):
    good = "C-1,Globex,vendor,2024-01-01,,,a@corp.example,,globex.example,,"
    path = contracts_csv(tmp_path, good, row)
    contracts, warnings = load_contracts(path, today=TODAY)
    assert [c.contract_id for c in contracts] == ["C-1"]
    assert warnings == [f"{path}:3: row skipped: {problem}"]


def test_csv_row_with_too_many_cells_is_skipped(tmp_path):
    path = contracts_csv(tmp_path, "C-1,Globex,vendor,2024-01-01,,,a@corp.example,,globex.example,,,extra")
    contracts, warnings = load_contracts(path, today=TODAY)
    assert contracts == []
    assert warnings == [f"{path}:2: row skipped: it has 12 cells but the header has 11; quote a value that contains ','"]


def test_csv_short_rows_and_blank_lines_are_tolerated_and_lines_still_counted(tmp_path):
    path = write(
        tmp_path,
        "contracts.csv",
        "\nid,counterparty,kind,start,match_names\n\nC-1,Globex,vendor,2024-01-01,globex-*\nC-2,Initech,partner,2024-01-01\n"
        'C-3,"Multi\nline",vendr,2024-01-01,x\nC-4,Hooli,reseller,bad,x\n',
    )
    contracts, warnings = load_contracts(path, today=TODAY)
    assert [c.contract_id for c in contracts] == ["C-1", "C-2"]
    # The quoted cell spans lines 6-7: the warning names the line the row starts on, the next row is line 8.
    skipped = [w for w in warnings if "row skipped" in w]
    assert skipped[0].startswith(f"{path}:6: row skipped: column 'kind': 'vendr'")
    assert skipped[1].startswith(f"{path}:8: row skipped: column 'start': 'bad'")
    assert len(skipped) == 2


def test_csv_duplicate_id_raises_naming_both_lines(tmp_path):
    path = contracts_csv(
        tmp_path,
        "C-1,Globex,vendor,2024-01-01,,,a@corp.example,,globex.example,,",
        "C-2,Initech,vendor,2024-01-01,,,a@corp.example,,initech.example,,",
        "C-1,Globex again,vendr,2024-01-01,,,,,,,",  # a duplicate even though the row itself is bad
    )
    with pytest.raises(ConfigError) as err:
        load_contracts(path, today=TODAY)
    assert str(err.value) == f"{path}: duplicate contract id(s): id 'C-1' at line 2, line 4; each contract id must be unique"


def test_csv_missing_required_column_raises(tmp_path):
    path = contracts_csv(tmp_path, "C-1,Globex,2024-01-01", header="id,counterparty,start\n")
    with pytest.raises(ConfigError) as err:
        load_contracts(path, today=TODAY)
    assert str(err.value) == (
        f"{path}:1: contract register header lacks required column(s) kind; found 'id', 'counterparty', 'start'"
    )


def test_csv_without_recognisable_header_raises(tmp_path):
    path = write(tmp_path, "contracts.csv", "C-1,Globex,vendor,2024-01-01\n")
    with pytest.raises(ConfigError, match=r"contracts\.csv:1: no recognisable header in contract register: 'C-1,Globex,vendor,2024-01-01'"):
        load_contracts(path, today=TODAY)


def test_csv_repeated_column_raises(tmp_path):
    path = contracts_csv(tmp_path, header="id,counterparty,kind,start,kind\n")
    with pytest.raises(ConfigError) as err:
        load_contracts(path, today=TODAY)
    assert str(err.value) == f"{path}:1: column 'kind' appears more than once (columns 3 and 5); keep one"


def test_csv_unknown_column_warns_once(tmp_path):
    path = contracts_csv(
        tmp_path, "C-1,Globex,vendor,2024-01-01,a@corp.example,globex.example,x", header="id,counterparty,kind,start,sponsor,match_domains,Notes\n"
    )
    contracts, warnings = load_contracts(path, today=TODAY)
    assert len(contracts) == 1
    assert warnings == [
        f"{path}: unknown column(s) 'Notes' ignored; known columns are id, counterparty, kind, start, end, status, "
        "sponsor, last_attestation, match_domains, match_names, match_keys"
    ]


def test_missing_sponsor_and_missing_match_rules_warn_but_keep(tmp_path):
    path = contracts_csv(tmp_path, "C-1,Globex,vendor,2024-01-01,,,,,,,")
    contracts, warnings = load_contracts(path, today=TODAY)
    assert [(c.contract_id, c.sponsor_email, c.match) for c in contracts] == [("C-1", None, MatchRules())]
    assert warnings == [
        f"{path}:2: column 'sponsor' is missing; contract 'C-1' has no accountable sponsor (kept)",
        f"{path}:2: no match_domains, match_names or match_keys; contract 'C-1' covers no NHI (kept)",
    ]


def test_semicolon_delimited_register_with_bom(tmp_path):
    text = "id;counterparty;kind;start;match_domains\nC-1;Globex;vendor;2024-01-01;\"globex.example;globex.test\"\n"
    path = write(tmp_path, "contracts.csv", b"\xef\xbb\xbf" + text.encode())
    contracts, warnings = load_contracts(path, today=TODAY)
    assert [(c.contract_id, c.match.email_domains) for c in contracts] == [("C-1", ("globex.example", "globex.test"))]


def test_register_needs_a_known_extension_and_a_readable_file(tmp_path):
    with pytest.raises(ConfigError, match=r"contracts\.xlsx: contract register must be a \.toml or \.csv file"):
        load_contracts(write(tmp_path, "contracts.xlsx", "x"), today=TODAY)
    missing = tmp_path / "nope.csv"
    with pytest.raises(ConfigError) as err:
        load_contracts(missing, today=TODAY)
    assert str(err.value) == f"{missing}: cannot read contract register: No such file or directory"


def test_non_utf8_file_raises_naming_the_line(tmp_path):
    path = write(tmp_path, "contracts.csv", CONTRACTS_CSV_HEADER.encode() + "C-1,Soci\u00e9t\u00e9,vendor,2024-01-01\n".encode("cp1252"))
    with pytest.raises(ConfigError) as err:
        load_contracts(path, today=TODAY)
    assert str(err.value).startswith(f"{path}:2: contract register is not UTF-8 text (byte 0xe9")


# --- HR export ------------------------------------------------------------------------


def test_hr_export_gives_person_records(tmp_path):
    path = hr_csv(
        tmp_path,
        "Alice@Corp.example,active,,boss@corp.example,Employee",
        "bob@corp.example,departed,2025-03-31,BOSS@corp.example,contractor",
    )
    people, warnings = load_people(path, today=TODAY)
    assert warnings == []
    assert people == [
        Person(
            key="hr:person:alice@corp.example",
            source="hr",
            inventory="hr:people",
            name="alice@corp.example",
            email="alice@corp.example",
            status="active",
            end_date=None,
            manager_email="boss@corp.example",
            worker_type="employee",
        ),
        Person(
            key="hr:person:bob@corp.example",
            source="hr",
            inventory="hr:people",
            name="bob@corp.example",
            email="bob@corp.example",
            status="departed",
            end_date=date(2025, 3, 31),
            manager_email="boss@corp.example",
            worker_type="contractor",
        ),
    ]


@pytest.mark.parametrize(
    ("written", "kept"),
    [("active", "active"), ("Departed", "departed"), ("terminated", "departed"), ("INACTIVE", "departed"), ("leave", "leave")],
)
def test_hr_status_normalisation(tmp_path, written, kept):
    people, _ = load_people(hr_csv(tmp_path, f"a@corp.example,{written},,,"), today=TODAY)
    assert [p.status for p in people] == [kept]


def test_hr_active_with_past_end_date_stays_active_with_warning(tmp_path):
    path = hr_csv(tmp_path, "a@corp.example,active,2025-05-31,,", "b@corp.example,active,2025-06-01,,")
    people, warnings = load_people(path, today=TODAY)
    assert [(p.email, p.status) for p in people] == [("a@corp.example", "active"), ("b@corp.example", "active")]
    assert warnings == [
        f"{path}:2: a@corp.example has status 'active' but end_date '2025-05-31' is past; kept as active: check the HR record"
    ]


def test_hr_bad_rows_are_skipped_naming_line_column_value(tmp_path):
    path = hr_csv(
        tmp_path,
        "a@corp.example,active,,,",
        "not-an-email,active,,,",
        "c@corp.example,retired,,,",
        "d@corp.example,departed,31/03/2025,,",
        ",active,,,",
    )
    people, warnings = load_people(path, today=TODAY)
    assert [p.email for p in people] == ["a@corp.example"]
    assert warnings == [
        f"{path}:3: row skipped: column 'email': 'not-an-email' is not an email address (expected name@domain.tld)",
        f"{path}:4: row skipped: column 'status': 'retired' is not a known HR status; "
        "expected one of active, departed, terminated, inactive, leave",
        f"{path}:5: row skipped: column 'end_date': '31/03/2025' is not an ISO date (expected YYYY-MM-DD)",
        f"{path}:6: row skipped: column 'email': missing; expected an email address (name@domain.tld)",
    ]


def test_hr_bad_manager_keeps_the_person_without_manager(tmp_path):
    path = hr_csv(tmp_path, "a@corp.example,departed,2025-01-01,Jane Smith,")
    people, warnings = load_people(path, today=TODAY)
    assert [(p.email, p.status, p.manager_email) for p in people] == [("a@corp.example", "departed", None)]
    assert warnings == [
        f"{path}:2: column 'manager': 'Jane Smith' is not an email address (expected name@domain.tld); manager left empty (row kept)"
    ]


def test_hr_duplicate_email_keeps_last_row_and_warns(tmp_path):
    path = hr_csv(tmp_path, "a@corp.example,active,,,", "b@corp.example,active,,,", "A@CORP.example,departed,2025-05-01,,")
    people, warnings = load_people(path, today=TODAY)
    assert [(p.email, p.status, p.end_date) for p in people] == [
        ("a@corp.example", "departed", date(2025, 5, 1)),
        ("b@corp.example", "active", None),
    ]
    assert warnings == [f"{path}:4: email 'a@corp.example' also on line 2; keeping line 4, the last one"]


def test_hr_bom_semicolons_header_case_name_column_and_extra_columns(tmp_path):
    text = (
        "Employee ID;Display Name;EMAIL;Status;End Date;Manager;Worker Type;Cost Centre\n"
        "17;Alice Example;alice@corp.example;Terminated;2025-04-30 00:00:00;boss@corp.example;Contractor;CC-1\n"
    )
    path = write(tmp_path, "people.csv", b"\xef\xbb\xbf" + text.encode("utf-8"))
    people, warnings = load_people(path, today=TODAY)
    assert warnings == []
    assert people == [
        Person(
            key="hr:person:alice@corp.example",
            source="hr",
            inventory="hr:people",
            name="Alice Example",
            email="alice@corp.example",
            status="departed",
            end_date=date(2025, 4, 30),
            manager_email="boss@corp.example",
            worker_type="contractor",
        )
    ]


def test_hr_only_email_and_status_columns_are_required(tmp_path):
    path = hr_csv(tmp_path, "a@corp.example,leave", header="email,status\n")
    people, warnings = load_people(path, today=TODAY)
    assert [(p.email, p.status, p.end_date, p.manager_email, p.worker_type) for p in people] == [
        ("a@corp.example", "leave", None, None, None)
    ]
    assert warnings == []


def test_hr_missing_status_column_raises(tmp_path):
    path = hr_csv(tmp_path, "a@corp.example,2025-01-01", header="email,end_date\n")
    with pytest.raises(ConfigError) as err:
        load_people(path, today=TODAY)
    assert str(err.value) == f"{path}:1: HR export header lacks required column(s) status; found 'email', 'end_date'"


def test_hr_without_header_or_empty_raises(tmp_path):
    no_header = write(tmp_path, "people.csv", "a@corp.example,active\n")
    with pytest.raises(ConfigError, match=r"people\.csv:1: no recognisable header in HR export"):
        load_people(no_header, today=TODAY)
    empty = write(tmp_path, "empty.csv", "\ufeff\n  \n")
    with pytest.raises(ConfigError, match=r"empty\.csv: HR export is empty"):
        load_people(empty, today=TODAY)
