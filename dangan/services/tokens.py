"""Bearer tokens for people: JWTs bound to one tenant, signed with DANGAN_SECRET_KEY.

Partner-app keys start with ``dgk_``; anything else presented as a bearer credential is
taken for a JWT. A token names its tenant, so a token for tenant A used on tenant B is
refused (403) even if its holder is a member of both.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from dangan.services.errors import Unauthenticated

ALGORITHM = "HS256"
ISSUER = "dangan"


@dataclass(frozen=True)
class TokenClaims:
    identity_id: int
    tenant_slug: str


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


def issue_token(
    identity_id: int, tenant_slug: str, *, secret: str, ttl_seconds: int
) -> IssuedToken:
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=ttl_seconds)
    claims = {
        "iss": ISSUER,
        "sub": str(identity_id),
        "ten": tenant_slug,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_hex(8),
    }
    return IssuedToken(jwt.encode(claims, secret, algorithm=ALGORITHM), expires)


def read_token(token: str, *, secret: str) -> TokenClaims:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "ten", "iss"]},
        )
        return TokenClaims(identity_id=int(claims["sub"]), tenant_slug=str(claims["ten"]))
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("the token has expired; sign in again") from exc
    except (jwt.InvalidTokenError, ValueError) as exc:
        raise Unauthenticated("the bearer token is not valid") from exc
