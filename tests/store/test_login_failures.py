from backend.store.login_failures import clear_failures, delete_attempt, recent_failures, record_attempt

T0 = 1_800_000_000_000


def test_recent_failures_are_counted_per_client_and_for_everybody(engine):
    for k in range(3):
        record_attempt(engine, "a", T0 + k, forget_until_ms=0)
    record_attempt(engine, "b", T0 + 10, forget_until_ms=0)
    recent = recent_failures(engine, "a", T0, client_limit=5, global_limit=10)
    assert recent.client_times == [T0 + 2, T0 + 1] and recent.global_oldest_counted is None   # T0 is not after T0
    recent = recent_failures(engine, "a", T0 - 1, client_limit=2, global_limit=3)
    assert recent.client_times == [T0 + 2, T0 + 1] and recent.global_oldest_counted == T0 + 1


def test_old_failures_are_forgotten_and_a_client_can_be_cleared(engine):
    record_attempt(engine, "a", T0, forget_until_ms=0)
    record_attempt(engine, "b", T0 + 5, forget_until_ms=T0)
    assert recent_failures(engine, "a", 0, client_limit=5, global_limit=5).client_times == []
    clear_failures(engine, "b")
    assert recent_failures(engine, "b", 0, client_limit=5, global_limit=1).global_oldest_counted is None


def test_an_attempt_can_be_deleted_by_its_id(engine):
    first = record_attempt(engine, "a", T0, forget_until_ms=0)
    second = record_attempt(engine, "a", T0 + 1, forget_until_ms=0)
    delete_attempt(engine, second)
    assert first != second
    assert recent_failures(engine, "a", 0, client_limit=5, global_limit=5).client_times == [T0]
