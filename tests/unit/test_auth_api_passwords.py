"""argon2id password hashing and the operator password policy."""

import pytest

from auth_api import passwords


def test_hash_is_argon2id_and_verifies():
    hashed = passwords.hash("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify(hashed, "correct horse battery staple") is True


def test_wrong_password_is_false():
    assert passwords.verify(passwords.hash("correct horse battery staple"), "wrong") is False


@pytest.mark.parametrize("bad_hash", ["", "not a hash", "$argon2id$v=19$m=1,t=1,p=1$broken"])
def test_unreadable_hash_is_false_not_an_exception(bad_hash):
    assert passwords.verify(bad_hash, "anything") is False


def test_dummy_verification_is_always_false():
    assert passwords.verify_dummy("anything") is False
    assert passwords._DUMMY_HASH.startswith("$argon2id$")


def test_policy():
    with pytest.raises(ValueError, match="at least 12"):
        passwords.check_policy("elevenchars")
    assert passwords.check_policy("twelve chars") == "twelve chars"


def test_generated_passwords_pass_the_policy_and_differ():
    first, second = passwords.generate(), passwords.generate()
    assert first != second
    assert passwords.check_policy(first) == first
