"""Property-based tests: configuration and command line refuse bad input with
one clear line and change nothing.

Configuration: any text, any TOML document, a value of the wrong type in any
known key and any environment override end in a Config or a ConfigError
with a one-line message, never another exception. Command line: any argv,
any bad configuration and unreachable URLs exit non-zero with one line on
stderr and no traceback, and leave the databases as they were (real SQLite
and PostgreSQL). Hand-picked cases live in test_config.py and test_cli.py.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, select, text

from backend.cli import main
from backend.config import (ENV_PREFIX, ConfigError, PrimaryConfig, SecondaryConfig,
                            load_config, parse_config)
from backend.db.engine import create_db_engine
from backend.replicables import replicator_for
from tests.support.module_sites import module_databases  # noqa: F401 (fixture)

CoolWidgets = replicator_for("cool_widget")
SECRET = "x" * 32
IN_PROCESS = settings(max_examples=120, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])
CLI = settings(max_examples=40, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])

# --- TOML documents -------------------------------------------------------------------


def toml_string(value: str) -> str:
    escaped = []
    for char in value:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_document(document: dict) -> str:
    plain = [f"{toml_string(k)} = {toml_value(v)}" for k, v in document.items()
             if not isinstance(v, dict)]
    tables = [f"[{toml_string(k)}]\n" + "\n".join(f"{toml_string(key)} = {toml_value(value)}"
                                                  for key, value in v.items())
              for k, v in document.items() if isinstance(v, dict)]
    return "\n".join(plain + tables) + "\n"


scalars = (st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats() | st.text(max_size=20)
           | st.datetimes() | st.dates() | st.times())
toml_values = st.recursive(scalars, lambda children: st.lists(children, max_size=3)
                           | st.dictionaries(st.text(max_size=6), children, max_size=3),
                           max_leaves=8)

SECONDARY = {"name": "s", "primary_url": "http://127.0.0.1:9", "access_key": "k",
             "secret": SECRET, "tracking_database_url": "sqlite:///t.db",
             "storage_path": "/tmp/s"}
PRIMARY = {"database_url": "sqlite:///p.db", "storage_path": "/tmp/p",
           "secondaries": [{"name": "s", "access_key": "k", "secret": SECRET}]}


def base_document() -> dict:
    return {"primary": {**PRIMARY, "secondaries": [dict(PRIMARY["secondaries"][0])]},
            "secondary": dict(SECONDARY),
            "feature_flags": {"geo_cool_widget_replication": True}}


def field_kinds() -> dict[str, str]:
    """Every key's kind, the object store's tables included
    (`primary.object_store.connection.region`)."""
    def of(cls, prefix):
        for spec in dataclasses.fields(cls):
            if dataclasses.is_dataclass(spec.default):
                kinds[f"{prefix}.{spec.name}"] = "table"
                of(type(spec.default), f"{prefix}.{spec.name}")
            else:
                kinds[f"{prefix}.{spec.name}"] = str(spec.type)

    kinds = {}
    for section, cls in (("primary", PrimaryConfig), ("secondary", SecondaryConfig)):
        of(cls, section)
    kinds["feature_flags.geo_cool_widget_replication"] = "flag"
    return kinds


def put(document: dict, key: str, value) -> None:
    """Set a dotted key in a document, making the tables on its way."""
    *tables, name = key.split(".")
    for table in tables:
        document = document.setdefault(table, {})
        if not isinstance(document, dict):
            return  # a value already stands where a table would go
    document[name] = value


KINDS = field_kinds()
FLAG_WORDS = ("true", "1", "yes", "on", "false", "0", "no", "off")


def fits(kind: str, value) -> bool:
    """Whether a TOML value has the type a key of this kind takes."""
    integer = isinstance(value, int) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return integer
    if kind == "float":
        return integer or isinstance(value, float)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "flag":
        return isinstance(value, bool) or (isinstance(value, str)
                                           and value.lower() in FLAG_WORDS)
    if kind == "tuple[int, ...]":
        return isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value)
    if kind == "tuple[str, ...]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "tuple[PeerConfig, ...]":
        return isinstance(value, list) and all(isinstance(v, dict) for v in value)
    if kind == "table":
        return isinstance(value, dict)
    raise AssertionError(f"a new setting type {kind}: teach fits() about it")


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def config_or_error(path, environ=None):
    """load_config's answer: a Config, or a ConfigError of one line."""
    try:
        return load_config(path, environ={} if environ is None else environ)
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        assert "Traceback" not in message
        return exc


# --- configuration, in process -------------------------------------------------------------

toml_like = st.lists(st.sampled_from(
    ["[primary]", "[secondary]", "[feature_flags]", "[[primary.secondaries]]", "[x]",
     "name = ", "secret = ", "listen = ", "status_interval = ", "files_max_capacity = ",
     '"a"', "'b'", "1", "-1", "1.5", "nan", "inf", "true", "[1, 2]", "{a = 1}",
     "1979-05-27T07:32:00Z", '"""', "\n", "=", "#", "\\u0000", "\\"]) | st.text(max_size=6),
    max_size=30).map(" ".join)


@IN_PROCESS
@given(content=st.text(max_size=300) | toml_like | st.binary(max_size=100))
def test_any_file_content_is_a_config_or_one_config_error(tmp_path, content):
    config_or_error(write(tmp_path, "any.toml", content))


@IN_PROCESS
@given(document=st.dictionaries(
    st.sampled_from(["primary", "secondary", "feature_flags"]) | st.text(max_size=8),
    toml_values | st.dictionaries(st.sampled_from(sorted({k.split(".", 1)[1] for k in KINDS}))
                                  | st.text(max_size=8), toml_values, max_size=6),
    max_size=4))
def test_any_toml_document_is_a_config_or_one_config_error(tmp_path, document):
    config_or_error(write(tmp_path, "doc.toml", toml_document(document)))


@IN_PROCESS
@given(key=st.sampled_from(sorted(KINDS)), data=st.data())
def test_a_wrong_type_in_any_known_key_names_that_key(tmp_path, key, data):
    value = data.draw(toml_values.filter(lambda v: not fits(KINDS[key], v)), label="value")
    document = base_document()
    put(document, key, value)
    result = config_or_error(write(tmp_path, "wrong.toml", toml_document(document)))
    assert isinstance(result, ConfigError), f"{key} = {value!r} was accepted"
    assert key in str(result) and str(result).startswith(str(tmp_path)), str(result)


@IN_PROCESS
@given(overrides=st.dictionaries(st.sampled_from(sorted(KINDS)), toml_values, min_size=1,
                                 max_size=3))
def test_any_values_in_a_valid_document_give_a_config_or_one_config_error(tmp_path,
                                                                          overrides):
    document = base_document()
    for key, value in overrides.items():
        put(document, key, value)
    config_or_error(write(tmp_path, "values.toml", toml_document(document)))


env_text = (st.text(max_size=20) | st.integers(-10**30, 10**30).map(str)
            | st.sampled_from(["--5", "²", "٣", " 7 ", "1e3", "nan", "-inf", "1,2,x", ",",
                               "yes", "TRUE", "", "-", "0x10", "1_000"]))


@IN_PROCESS
@given(environ=st.dictionaries(
    st.sampled_from(sorted(KINDS)).map(
        lambda k: ENV_PREFIX + k.replace(".", "_").upper())
    | st.text(max_size=10).map(lambda s: ENV_PREFIX + "SECONDARY_" + s),
    env_text, min_size=1, max_size=4), with_file=st.booleans())
def test_any_environment_override_is_a_config_or_one_config_error(tmp_path, environ,
                                                                  with_file):
    path = write(tmp_path, "env.toml", toml_document(base_document())) if with_file else None
    config_or_error(path, environ)


# --- the command line --------------------------------------------------------------------------

def config_text(primary_db: str, tracking_db: str, base, primary_url="http://127.0.0.1:9",
                extra: str = "") -> str:
    return f"""
[primary]
database_url = {toml_string(primary_db)}
storage_path = {toml_string(str(base / 'primary-blobs'))}
listen = "127.0.0.1:0"
[[primary.secondaries]]
name = "cli-secondary"
access_key = "cli-key"
secret = "{SECRET}"

[secondary]
name = "cli-secondary"
primary_url = {toml_string(primary_url)}
access_key = "cli-key"
secret = "{SECRET}"
tracking_database_url = {toml_string(tracking_db)}
storage_path = {toml_string(str(base / 'secondary-blobs'))}
{extra}
"""


def snapshot(engines) -> dict:
    """Every row of every table of the given databases."""
    state = {}
    for name, engine in engines.items():
        with engine.connect() as connection:
            for table in sorted(inspect(connection).get_table_names()):
                rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()
                state[(name, table)] = sorted(map(repr, rows))
    return state


@pytest.fixture(scope="module")
def workspace(module_databases, tmp_path_factory):
    """Migrated primary and tracking databases holding a widget and registries."""
    from tests.support.registries import Registries
    base = tmp_path_factory.mktemp("cli")
    urls = {"primary": module_databases.url("primary"),
            "tracking": module_databases.url("tracking")}
    path = base / "geo.toml"
    path.write_text(config_text(urls["primary"], urls["tracking"], base))
    assert main(["db", "upgrade", "--config", str(path)]) == 0
    blob = base / "blob.bin"
    blob.write_bytes(b"blob")
    assert main(["primary", "add", str(blob), "--config", str(path)]) == 0
    engines = {name: create_db_engine(url) for name, url in urls.items()}
    store = Registries(engines["tracking"], CoolWidgets)
    store.insert_pending([10, 20, 30])
    claim = store.claim_sync_batch(1)[0]
    store.mark_sync_failed(claim, "Non-success HTTP response status code 500")
    yield {"config": str(path), "engines": engines, "base": base,
           "kind": module_databases.kind, "databases": module_databases}
    for engine in engines.values():
        engine.dispose()


def run(capsys, argv) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:  # only --help / --version style exits
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err) -> str:
    assert code not in (0, None), code
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("geo-console: error: "), lines[0]
    assert "Traceback" not in err and 'File "' not in err, err
    return lines[0]


COMMANDS = ["primary", "project", "add", "delete", "list", "secondary", "status", "check",
            "registries", "resync", "reverify", "report", "db", "upgrade"]
OPTIONS = ["--config", "--type", "--json", "--limit", "--all", "--replication-state",
           "--verification-state", "--format", "--output", "--namespace", "--shard",
           "--project-id", "--object-storage", "--", "-", "-x", "--frobnicate"]
VALUES = ["failed", "synced", "pending", "done", "csv", "json", "xml", "cool_widget",
          "gadget", "1", "2", "999", "-1", "0", "abc", "9" * 30, "out.csv", ".", "/",
          "nope.toml", "acme/sub", ""]
BLOCKING = {"serve", "run", "demo", "-h", "--help"}  # would not return, or print help
argv_tokens = st.lists(st.sampled_from(COMMANDS + OPTIONS + VALUES)
                       | st.text(max_size=8).filter(lambda t: t not in BLOCKING),
                       max_size=8)


@CLI
@given(argv=argv_tokens)
def test_any_argv_is_one_line_or_success_and_failures_change_nothing(
        workspace, capsys, monkeypatch, tmp_path, argv):
    monkeypatch.chdir(tmp_path)  # where `report --output` may write
    monkeypatch.delenv("GEO_CONSOLE_CONFIG", raising=False)
    before = snapshot(workspace["engines"])
    code, out, err = run(capsys, ["--config", workspace["config"], *argv])
    assert "Traceback" not in out + err
    if code == 0:
        assert not err.strip(), err
        return
    if code == 1 and not err and "Replication is not up-to-date." in out:
        return  # `check` reporting, not failing
    assert_one_line_error(code, err)
    assert snapshot(workspace["engines"]) == before, argv


REFUSING_COMMANDS = [["status"], ["check"], ["registries", "--json"], ["resync", "--all"],
                     ["reverify", "1"], ["db", "upgrade"], ["primary", "list"],
                     ["primary", "serve"], ["secondary", "run"],
                     ["primary", "project", "add", "p", "--namespace", "g"],
                     ["report", "--format", "csv", "--output", "r.csv"]]


@CLI
@given(command=st.sampled_from(REFUSING_COMMANDS), key=st.sampled_from(sorted(KINDS)),
       data=st.data())
def test_bad_configuration_is_one_line_and_creates_no_database(workspace, capsys, tmp_path,
                                                               monkeypatch, command, key,
                                                               data):
    """Even `primary serve` and `db upgrade` stop at a bad file: the
    databases it names are neither created nor migrated."""
    monkeypatch.chdir(tmp_path)
    if workspace["kind"] == "sqlite":
        urls = {name: f"sqlite:///{tmp_path / (name + '-new.db')}"
                for name in ("primary", "tracking")}
    else:
        urls = {name: workspace["databases"].url(name + "_new")
                for name in ("primary", "tracking")}
    section, name = key.split(".", 1)
    value = data.draw(toml_values.filter(lambda v: not fits(KINDS[key], v)), label="value")
    document = base_document()
    document["primary"]["database_url"] = urls["primary"]
    document["secondary"]["tracking_database_url"] = urls["tracking"]
    document[section][name] = value
    bad = data.draw(st.sampled_from(["wrong type", "malformed"]), label="how")
    content = toml_document(document)
    if bad == "malformed":
        content = content.replace("[secondary]", "[secondary", 1)
    path = write(tmp_path, "bad.toml", content)
    with pytest.raises(ConfigError):  # never start a server on a good file by mistake
        load_config(path, environ={})
    code, _, err = run(capsys, [*command, "--config", str(path)])
    line = assert_one_line_error(code, err)
    assert str(path) in line
    if workspace["kind"] == "sqlite":
        assert not any((tmp_path / (n + "-new.db")).exists() for n in ("primary", "tracking"))
    else:
        for url in urls.values():
            engine = create_db_engine(url)
            try:
                with engine.connect() as connection:
                    assert inspect(connection).get_table_names() == []
            finally:
                engine.dispose()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(host=st.sampled_from(["127.0.0.1", "localhost", "[::1]"]), path=st.text(
    alphabet="abc/", max_size=6), which=st.sampled_from(["primary", "database"]))
def test_unreachable_urls_are_one_clear_line(workspace, capsys, tmp_path, host, path, which):
    port = closed_port()
    base = workspace["base"]
    tracking = workspace["engines"]["tracking"].url.render_as_string(hide_password=False)
    primary = workspace["engines"]["primary"].url.render_as_string(hide_password=False)
    before = snapshot(workspace["engines"])
    if which == "primary":
        # `check` fails on one line saying so (`secondary run` starts and
        # keeps retrying: tests/test_cli.py).
        content = config_text(primary, tracking, base, f"http://{host}:{port}/{path}")
        config = write(tmp_path, "unreachable.toml", content)
        code, out, err = run(capsys, ["check", "--config", str(config)])
        assert code == 1 and err == "", err
        told = [line for line in out.splitlines() if "cannot reach the primary" in line.lower()]
        assert len(told) == 1 and told[0].startswith("ERROR - "), out
        assert "Error:" not in out and "Traceback" not in out
    else:
        content = config_text(primary, f"postgresql://postgres@{host}:{port}/geo", base)
        config = write(tmp_path, "unreachable.toml", content)
        code, _, err = run(capsys, ["status", "--config", str(config)])
        line = assert_one_line_error(code, err)
        assert "database error" in line, line
    assert snapshot(workspace["engines"]) == before


def test_registry_rows_are_there_to_protect(workspace):
    """The CLI properties compare real rows: the workspace is not empty."""
    engine = workspace["engines"]["tracking"]
    with engine.connect() as connection:
        assert len(connection.execute(select(CoolWidgets.registry_table())).all()) == 3


# --- hand-picked cases the properties found -------------------------------------------------

def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path):
    """tomllib raised UnicodeDecodeError, not a ConfigError."""
    result = config_or_error(write(tmp_path, "latin1.toml", "name = 'café'".encode("latin-1")))
    assert isinstance(result, ConfigError) and "not UTF-8" in str(result)


@pytest.mark.parametrize("content,shown", [
    ('["a\\nb"]\n', "unknown section ['a\\nb']"),
    ('[secondary]\n"x\\ry" = 1\n', "unknown key secondary.'x\\ry'"),
    ('[feature_flags]\n"f\\n" = 3\n', "feature_flags.'f\\n' must be true or false"),
])
def test_names_with_line_breaks_stay_on_one_line(tmp_path, content, shown):
    result = config_or_error(write(tmp_path, "names.toml", content))
    assert isinstance(result, ConfigError) and shown in str(result), str(result)


@pytest.mark.parametrize("value", ["--5", "²", "1" * 5000, "1_0"])
def test_integer_overrides_that_are_not_integers(value):
    """`"--5".lstrip("-").isdigit()` passed, then int() raised ValueError."""
    with pytest.raises(ConfigError, match=r"^GEO_CONSOLE_SECONDARY_FILES_MAX_CAPACITY "
                       r"\(secondary.files_max_capacity\) must be an integer"):
        parse_config({"secondary": dict(SECONDARY)},
                     environ={"GEO_CONSOLE_SECONDARY_FILES_MAX_CAPACITY": value})
