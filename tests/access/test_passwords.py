import pytest

from backend.access.passwords import PasswordRejected, check_new_password, hash_password, same_secret, verify_password

FAST = 10   # log2 n: a cheap hash for tests


def test_a_hash_verifies_its_password_only():
    stored = hash_password("correct horse battery", log2_n=FAST)
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert not verify_password("", stored)


def test_hashes_are_salted_and_say_their_cost():
    a, b = hash_password("same password", log2_n=FAST), hash_password("same password", log2_n=FAST)
    assert a != b
    assert a.startswith(f"scrypt${FAST}$8$1$")
    assert "same password" not in a


def test_the_default_cost_is_the_documented_one():
    assert hash_password("correct horse battery").startswith("scrypt$15$8$1$")


@pytest.mark.parametrize("stored", ["", "plain", "scrypt$x$8$1$AAAA$AAAA", "md5$10$8$1$AAAA$AAAA",
                                    "scrypt$40$8$1$AAAA$AAAA", "scrypt$10$8$1$%%%$AAAA"])
def test_malformed_stored_hashes_never_verify(stored):
    assert not verify_password("anything at all", stored)


def test_new_passwords_have_a_minimum_length():
    with pytest.raises(PasswordRejected, match="at least 10"):
        check_new_password("short")
    check_new_password("long enough!")


def test_same_secret_compares_whole_strings():
    assert same_secret("abc", "abc")
    assert not same_secret("abc", "abcd")
    assert not same_secret("", "abc")
