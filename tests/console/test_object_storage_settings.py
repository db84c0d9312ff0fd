"""The object stores in Settings: the secondary's own bucket and the demo's
buckets are saved as the configuration's nested tables and load back, their
secret access key kept by the token store and never written to the file; a
bad bucket name, endpoint or key pair is told under its field and saves
nothing; the bucket's fields are off unless the site has a bucket of its
own; "Test connection" checks the bucket on a real S3-protocol server;
any change of an object store takes a reconnect."""
import tomllib

import pytest

from app import token_store
from app.settings import RECONNECT, change_between, load_settings
from app.settings_dialog import SECRET_PLACEHOLDER
from tests.console.test_settings import connection_test, dialog_for, local_settings, told
from tests.support.s3_server import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY

sqlite_only = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
ENDPOINT = "http://minio.example:9000"
SECRET = "wJalrXUtnFEMI-the-secret-access-key"


@pytest.fixture
def home(tmp_path, keyring_in_memory):
    return tmp_path / "home"


def give_a_bucket(dialog, bucket="geo-replicas", endpoint=ENDPOINT, key_id="AKIAGEO",
                  secret=SECRET) -> None:
    dialog.object_storage.setChecked(True)
    dialog.own_bucket.setChecked(True)
    dialog.bucket.setText(bucket)
    connection = dialog.store_connection
    connection.endpoint.setText(endpoint)
    connection.region.setText("eu-central-1")
    connection.path_style.setChecked(True)
    connection.key_id.setText(key_id)
    connection.secret.setText(secret)


def test_the_secondarys_bucket_is_saved_as_nested_tables_and_its_secret_in_the_token_store(
        qtbot, tmp_path, home, keyring_in_memory):
    dialog = dialog_for(qtbot, local_settings(tmp_path))
    give_a_bucket(dialog)
    dialog.accept()
    assert not dialog.isVisible() and dialog.problem is None
    text = (home / "console.toml").read_text()
    assert SECRET not in text
    written = tomllib.loads(text)["secondary"]
    assert written["sync_object_storage"] is True
    assert written["object_store"] == {"enabled": True, "bucket": "geo-replicas", "connection": {
        "endpoint": ENDPOINT, "region": "eu-central-1", "path_style": True,
        "aws_access_key_id": "AKIAGEO"}}
    key = f"object store {ENDPOINT} geo-replicas AKIAGEO"
    assert keyring_in_memory.passwords == {(token_store.SERVICE, key): SECRET}

    token_store._session.clear()  # a new run of the console
    loaded = load_settings()
    assert loaded["secondary"]["object_store"]["connection"]["aws_secret_access_key"] == SECRET
    again = dialog_for(qtbot, loaded)
    assert again.own_bucket.isChecked() and again.bucket.text() == "geo-replicas"
    fields = again.store_connection
    assert (fields.endpoint.text(), fields.region.text(), fields.path_style.isChecked(),
            fields.key_id.text()) == (ENDPOINT, "eu-central-1", True, "AKIAGEO")
    assert fields.secret.text() == "" and fields.secret.placeholderText() == SECRET_PLACEHOLDER
    assert fields.secret.echoMode() == fields.secret.EchoMode.Password
    # Left empty, the saved secret is kept.
    assert again.result_settings()["secondary"]["object_store"] == \
        loaded["secondary"]["object_store"]


def test_the_demos_buckets_are_saved_and_loaded_the_same_way(qtbot, home, keyring_in_memory):
    dialog = dialog_for(qtbot, {"mode": "demo"})
    dialog.demo_primary_bucket.setText("demo-primary")
    dialog.demo_secondary_bucket.setText("demo-secondary")
    dialog.demo_connection.endpoint.setText(ENDPOINT)
    dialog.demo_connection.key_id.setText("AKIADEMO")
    dialog.demo_connection.secret.setText(SECRET)
    dialog.accept()
    assert dialog.problem is None
    text = (home / "console.toml").read_text()
    assert SECRET not in text and "[demo.object_store.connection]" in text
    assert keyring_in_memory.passwords == {
        (token_store.SERVICE, f"object store {ENDPOINT} demo-primary AKIADEMO"): SECRET}
    token_store._session.clear()
    store = load_settings()["demo"]["object_store"]
    assert (store["primary_bucket"], store["secondary_bucket"]) == ("demo-primary",
                                                                   "demo-secondary")
    assert store["connection"]["aws_secret_access_key"] == SECRET
    # The plain demo saves no object storage at all.
    plain = dialog_for(qtbot, {"mode": "demo"})
    assert plain.result_settings() == {"mode": "demo"}


def test_a_secret_written_into_the_file_by_hand_is_moved_to_the_token_store(
        home, keyring_in_memory):
    home.mkdir()
    (home / "console.toml").write_text(
        'mode = "demo"\n\n[demo.object_store]\nprimary_bucket = "demo-primary"\n\n'
        f'[demo.object_store.connection]\naws_access_key_id = "AKIADEMO"\n'
        f'aws_secret_access_key = "{SECRET}"\n')
    assert load_settings()["demo"]["object_store"]["connection"]["aws_secret_access_key"] \
        == SECRET
    assert SECRET not in (home / "console.toml").read_text()
    assert keyring_in_memory.passwords == {
        (token_store.SERVICE, "object store AWS S3 demo-primary AKIADEMO"): SECRET}


def test_a_secondary_object_store_problem_is_told_under_its_field_and_nothing_is_saved(
        qtbot, tmp_path, home):
    dialog = dialog_for(qtbot, local_settings(tmp_path))
    give_a_bucket(dialog, bucket="Geo_Replicas")
    dialog.accept()
    assert told(dialog) == ("object_store.bucket", "Bucket must name an S3 bucket (3 to 63 "
                                                   "lower-case letters, digits, dots and "
                                                   "hyphens).")
    assert dialog.focusWidget() is dialog.bucket

    give_a_bucket(dialog, endpoint="minio.example:9000/blobs")
    dialog.accept()
    assert told(dialog) == ("object_store.connection.endpoint",
                            "Endpoint must be an http:// or https:// URL of the service, "
                            "without a path.")

    give_a_bucket(dialog, secret="")
    dialog.accept()
    assert told(dialog) == ("object_store.connection.aws_secret_access_key",
                            "Secret access key is missing: give the access key ID and the "
                            "secret access key both, or neither (to use this machine's own "
                            "AWS credentials).")
    assert dialog.isVisible() and not (home / "console.toml").exists()


def test_a_demo_bucket_problem_is_told_under_its_field_and_nothing_is_saved(qtbot, home):
    dialog = dialog_for(qtbot, {"mode": "demo"})
    dialog.demo_secondary_bucket.setText("demo-secondary")
    dialog.accept()
    assert told(dialog)[0] == "demo.object_store.primary_bucket"
    dialog.demo_primary_bucket.setText("x")
    dialog.accept()
    assert told(dialog) == ("demo.object_store.primary_bucket",
                            "Primary's bucket must name an S3 bucket (3 to 63 lower-case "
                            "letters, digits, dots and hyphens).")
    dialog.demo_primary_bucket.setText("demo-primary")
    dialog.demo_secondary_bucket.setText("Demo..Secondary")
    dialog.accept()
    assert told(dialog)[0] == "demo.object_store.secondary_bucket"
    dialog.demo_secondary_bucket.setText("")
    dialog.demo_connection.endpoint.setText("ftp://minio.example")
    dialog.accept()
    assert told(dialog) == ("demo.object_store.connection.endpoint",
                            "Endpoint must be an http:// or https:// URL of the service, "
                            "without a path.")
    assert dialog.isVisible() and not (home / "console.toml").exists()


def test_the_bucket_fields_are_off_unless_the_site_has_a_bucket_of_its_own(qtbot, tmp_path,
                                                                          home):
    dialog = dialog_for(qtbot, local_settings(tmp_path))
    fields = [dialog.bucket, *dialog.store_connection.widgets()]
    assert not dialog.own_bucket.isChecked()
    assert not any(field.isEnabled() for field in fields)
    assert not dialog.labels["object_store.bucket"].isEnabled()
    assert dialog.object_storage.isEnabled() and dialog.own_bucket.isEnabled()
    dialog.own_bucket.setChecked(True)
    assert all(field.isEnabled() for field in fields)
    assert dialog.labels["object_store.connection.endpoint"].isEnabled()
    dialog.own_bucket.setChecked(False)
    assert not any(field.isEnabled() for field in fields)
    # Off, a bucket not filled in is not the site's: the settings save.
    dialog.accept()
    assert dialog.problem is None
    assert load_settings()["secondary"]["object_store"]["enabled"] is False


def test_any_object_store_change_takes_a_reconnect():
    store = {"enabled": True, "bucket": "a-bucket", "connection": {"region": "us-east-1"}}
    local = {"mode": "local", "secondary": {"name": "a", "object_store": store}}
    for changed in ({**store, "enabled": False}, {**store, "bucket": "b-bucket"},
                    {**store, "connection": {"region": "eu-west-1"}}):
        assert change_between(local, {**local, "secondary": {
            "name": "a", "object_store": changed}}) == RECONNECT
    demo = {"mode": "demo", "demo": {"object_store": {"primary_bucket": "a-bucket"}}}
    assert change_between({"mode": "demo"}, demo) == RECONNECT


def s3_connection(s3_server) -> tuple[str, str, str]:
    return s3_server.endpoint, DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY


@sqlite_only
def test_test_connection_checks_the_sites_own_bucket(qtbot, tmp_path, home, primary,
                                                     credentials, s3_server):
    dialog = dialog_for(qtbot, local_settings(tmp_path, primary.url, credentials["access_key"],
                                              credentials["secret"]))
    endpoint, key_id, secret = s3_connection(s3_server)
    bucket = s3_server.make_bucket()
    give_a_bucket(dialog, bucket=bucket, endpoint=endpoint, key_id=key_id, secret=secret)
    assert connection_test(qtbot, dialog) == (
        "✓ the tracking database and the primary answer; the primary accepts the access key "
        f"and secret; the bucket {bucket} at {endpoint} answers and takes these credentials.")
    give_a_bucket(dialog, bucket="not-made-yet", endpoint=endpoint, key_id=key_id,
                  secret=secret)
    assert connection_test(qtbot, dialog) == (
        f"✗ the bucket not-made-yet at {endpoint} does not exist")
    dialog.own_bucket.setChecked(False)  # no bucket of its own: none is tried
    assert connection_test(qtbot, dialog).endswith("accepts the access key and secret.")
    assert not (home / "console.toml").exists()  # testing saves nothing


def test_test_connection_checks_the_demos_buckets(qtbot, home, s3_server):
    dialog = dialog_for(qtbot, {"mode": "demo"})
    assert not dialog.test_button.isEnabled()  # the plain demo has nothing to try
    endpoint, key_id, secret = s3_connection(s3_server)
    first, second = s3_server.make_bucket(), s3_server.make_bucket()
    dialog.demo_primary_bucket.setText(first)
    assert dialog.test_button.isEnabled()
    connection = dialog.demo_connection
    connection.endpoint.setText(endpoint)
    connection.path_style.setChecked(True)
    connection.key_id.setText(key_id)
    connection.secret.setText(secret)
    dialog.demo_secondary_bucket.setText(second)
    assert connection_test(qtbot, dialog) == (
        f"✓ the bucket {first} at {endpoint} and the bucket {second} at {endpoint} answer "
        "and take these credentials.")
    dialog.demo_secondary_bucket.setText("gone-bucket")
    assert connection_test(qtbot, dialog) == f"✗ the bucket gone-bucket at {endpoint} does " \
                                             "not exist"
    nowhere = "http://127.0.0.1:9"
    connection.endpoint.setText(nowhere)
    assert connection_test(qtbot, dialog) == (
        f"✗ cannot reach the bucket {first} at {nowhere}: no answer at its endpoint")
