from pathlib import Path

import pytest

from backend.settings import Settings, SettingsError


def test_defaults():
    s = Settings.from_env({})
    assert s.port == 8000 and s.host == "127.0.0.1" and s.retention_days == 90
    assert s.sqlalchemy_url == "sqlite:///var/upnext.db"


def test_values_are_typed_from_the_environment():
    s = Settings.from_env({"UPNEXT_PORT": " 9000 ", "UPNEXT_DATA_DIR": "/srv/upnext", "UPNEXT_LOG_LEVEL": "debug",
                           "UPNEXT_RATE_KEY_EVENTS": "1.5e3", "UNRELATED": "x"})
    assert s.port == 9000 and s.data_dir == Path("/srv/upnext") and s.log_level == "DEBUG"
    assert s.rate_key_events == 1500.0 and s.sqlalchemy_url == "sqlite:////srv/upnext/upnext.db"


@pytest.mark.parametrize("var, value, message", [
    ("UPNEXT_PORT", "abc", "UPNEXT_PORT must be an integer, got 'abc'"),
    ("UPNEXT_PORT", "70000", "UPNEXT_PORT must be between 1 and 65535"),
    ("UPNEXT_RETENTION_DAYS", "0", "UPNEXT_RETENTION_DAYS must be between"),
    ("UPNEXT_STATE_MB", "1.5", "UPNEXT_STATE_MB must be an integer"),
    ("UPNEXT_COMMIT_INTERVAL_MS", "nan", "must be a number"),
    ("UPNEXT_LOG_FORMAT", "xml", "must be one of text, json"),
    ("UPNEXT_TRAIN_DEVICE", "gpu", "UPNEXT_TRAIN_DEVICE must be one of auto, cpu, cuda"),
    ("UPNEXT_DATABASE_URL", "upnext.db", "must be a URL"),
    ("UPNEXT_DATA_DIR", "", "must be a path"),
])
def test_bad_values_name_the_variable(var, value, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        Settings.from_env({var: value})


def test_describe_masks_the_admin_password():
    rows = dict((v, val) for v, val, _ in Settings.from_env({"UPNEXT_ADMIN_PASSWORD": "hunter2"}).describe())
    assert rows["UPNEXT_ADMIN_PASSWORD"] == "***"


@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg://upnext:s3cr%40t@db.example:5432/upnext", "postgresql+psycopg://upnext:***@db.example:5432/upnext"),
    ("postgresql://upnext:s3cret@db/upnext?sslmode=require", "postgresql://upnext:***@db/upnext?sslmode=require"),
    ("postgresql://db/upnext?user=upnext&password=s3cret&sslmode=require",
     "postgresql://db/upnext?user=upnext&password=***&sslmode=require"),
    ("postgresql://upnext@db/upnext", "postgresql://upnext@db/upnext"),
    ("sqlite:///var/upnext.db", "sqlite:///var/upnext.db"),
])
def test_describe_masks_the_database_password(url, shown):
    rows = dict((v, val) for v, val, _ in Settings.from_env({"UPNEXT_DATABASE_URL": url}).describe())
    assert rows["UPNEXT_DATABASE_URL"] == shown
