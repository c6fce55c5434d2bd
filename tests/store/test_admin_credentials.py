from backend.store.admin_credentials import load_credentials, replace_setup_code_hash, save_password_hash
from backend.store.admin_sessions import create_session, load_session


def test_the_row_and_its_secret_are_made_once(engine):
    a = load_credentials(engine)
    b = load_credentials(engine)
    assert a.secret == b.secret and len(a.secret) == 64
    assert a.password_hash is None


def test_the_setup_code_hash_is_replaced_only_from_the_value_read(engine):
    assert load_credentials(engine).setup_code_hash is None
    assert replace_setup_code_hash(engine, None, "first")
    assert not replace_setup_code_hash(engine, None, "second")              # another process won
    assert replace_setup_code_hash(engine, "first", "third")
    assert load_credentials(engine).setup_code_hash == "third"


def test_a_saved_password_hash_drops_the_setup_code_and_every_session(engine):
    replace_setup_code_hash(engine, None, "code")
    token, _ = create_session(engine)
    save_password_hash(engine, "scrypt$hash")
    creds = load_credentials(engine)
    assert (creds.password_hash, creds.setup_code_hash) == ("scrypt$hash", None)
    assert load_session(engine, token) is None
    assert not replace_setup_code_hash(engine, None, "late")                 # no setup code once a password is set
