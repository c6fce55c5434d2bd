"""The request of a tuning run (``trials=N[,jobs=J][,name=value...]``) and the study it continues; the run
itself, as a real background process, is tested from the admin page (tests/web/admin/test_models_page.py)."""
import pytest

from backend.retraining.supervisor import RunSupervisor
from backend.retraining.tuning_run import parse_request, request_string, study_name
from backend.settings import Settings
from backend.store import runs
from backend.tuning import TuneError


def test_a_request_round_trips():
    assert parse_request(request_string(20, "n_epochs=3,layers=64", jobs=2)) == (20, 2, "n_epochs=3,layers=64")
    assert parse_request("trials=5") == (5, None, "")


def test_fixed_parameters_get_their_own_study():
    assert study_name("shop", "") == "site-shop"
    assert study_name("shop", "n_epochs=3") == "site-shop-n_epochs=3"


@pytest.mark.parametrize("text, message", [
    ("", "trials: between 1 and 1000"), ("trials=0", "between 1 and 1000"), ("trials=1001", "between"),
    ("trials=x", "trials: a whole number"), ("trials=3,jobs=0", "jobs: at least 1"),
    ("trials=3,layers=banana", "layers"), ("trials=3,diginetica", "name=value pairs only"),
])
def test_bad_requests_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_request(text)


def test_a_tune_run_is_refused_by_the_supervisor_before_it_exists(engine, site, tmp_path):
    supervisor = RunSupervisor(engine, Settings.from_env({}, data_dir=str(tmp_path)))
    with pytest.raises(TuneError):
        supervisor.start_run(site.site_id, "trials=0", trigger="tune")
    assert runs.list_runs(engine, site.site_id) == []
