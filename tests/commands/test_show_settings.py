"""`upnext settings`: every setting with its value, secrets masked."""
from backend.cli import main


def test_the_database_and_admin_passwords_are_not_printed(monkeypatch, capsys):
    monkeypatch.setenv("UPNEXT_DATABASE_URL", "postgresql+psycopg://upnext:s3cret-db@db.example/upnext")
    monkeypatch.setenv("UPNEXT_ADMIN_PASSWORD", "s3cret-admin")
    assert main(["settings"]) in (0, None)
    out = capsys.readouterr().out
    assert "UPNEXT_DATABASE_URL" in out and "postgresql+psycopg://upnext:***@db.example/upnext" in out
    assert "s3cret" not in out
