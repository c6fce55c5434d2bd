"""The admin side of Upnext: login and sessions, settings overrides, background training runs, their supervisor
and the retraining scheduler. State lives in the store (tables of migration 0003), so every server process sees
the same admin sessions, runs and settings. The web pages are in backend/web/admin/."""
