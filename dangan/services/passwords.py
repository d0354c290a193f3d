"""Password hashing with argon2id (argon2-cffi's recommended parameters)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dangan.services.errors import BadUserInput

_hasher = PasswordHasher()
# Checked when the e-mail is unknown, so that a miss costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("dangan-timing-equaliser")

MIN_LENGTH = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise BadUserInput(f"password must be at least {MIN_LENGTH} characters", field="password")
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False
