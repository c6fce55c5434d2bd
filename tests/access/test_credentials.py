from backend.access import credentials
from backend.settings import Settings
from backend.store.admin_credentials import load_credentials
from backend.store.admin_sessions import create_session, load_session


def _settings(tmp_path, **kw):
    return Settings.from_env({}, data_dir=str(tmp_path / "var"), **kw)


def test_the_environment_password_wins_and_is_checked(engine, tmp_path):
    settings = _settings(tmp_path, admin_password="from the environment")
    creds = load_credentials(engine)
    assert credentials.password_source(settings, creds) == "env"
    assert credentials.check_password(settings, creds, "from the environment")
    assert not credentials.check_password(settings, creds, "from the environmenT")
    assert credentials.ensure_setup_code(engine, settings) is None


def test_setup_code_is_written_once_privately_and_unlocks_the_first_password(engine, tmp_path):
    settings = _settings(tmp_path)
    path = credentials.ensure_setup_code(engine, settings)
    code = path.read_text().strip()
    assert len(code) >= 20 and path.stat().st_mode & 0o777 == 0o600
    assert credentials.ensure_setup_code(engine, settings) == path and path.read_text().strip() == code
    creds = load_credentials(engine)
    assert credentials.password_source(settings, creds) == "unset"
    assert credentials.check_setup_code(creds, code)
    assert not credentials.check_setup_code(creds, code + "x")
    assert not credentials.check_password(settings, creds, "anything")   # no password yet: nothing logs in

    credentials.finish_setup(engine, settings, "a brand new password")
    creds = load_credentials(engine)
    assert credentials.password_source(settings, creds) == "stored"
    assert credentials.check_password(settings, creds, "a brand new password")
    assert not path.exists() and not credentials.check_setup_code(creds, code)
    assert credentials.ensure_setup_code(engine, settings) is None


def test_a_lost_setup_code_file_gets_a_new_code(engine, tmp_path):
    settings = _settings(tmp_path)
    path = credentials.ensure_setup_code(engine, settings)
    old = path.read_text().strip()
    path.unlink()
    new = credentials.ensure_setup_code(engine, settings).read_text().strip()
    creds = load_credentials(engine)
    assert new != old and credentials.check_setup_code(creds, new) and not credentials.check_setup_code(creds, old)


def test_changing_the_password_ends_every_session(engine, tmp_path):
    token, _ = create_session(engine)
    assert load_session(engine, token) is not None
    credentials.set_password(engine, "another long password")
    assert load_session(engine, token) is None


def test_a_password_can_be_set_before_anything_else_touched_the_row(engine, tmp_path):
    settings = _settings(tmp_path)
    credentials.set_password(engine, "set from a script")
    creds = load_credentials(engine)
    assert credentials.password_source(settings, creds) == "stored"
    assert credentials.check_password(settings, creds, "set from a script")
