"""Validate, normalise and generate Chinese identifiers.

Every ``normalize_*`` function takes what a person typed and returns the one canonical
spelling stored in the archive, or raises :class:`InvalidIdentifier` with a reason that
says what is wrong without repeating the whole value back.

Standards: mobile numbers follow the mainland numbering plan (11 digits, ``1[3-9]``);
resident ID numbers follow GB 11643-1999 (ISO 7064 MOD 11-2 check character); unified
social credit codes follow GB 32100-2015 (MOD 31 check character over a 31-symbol
alphabet). The ``make_*`` generators are deterministic given a ``random.Random`` and
exist for tests and demo data.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, timedelta
from types import MappingProxyType
from typing import Final

# GB/T 2260 province-level codes: 31 mainland divisions plus Taiwan, Hong Kong, Macao.
PROVINCE_CODES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "11": "北京市",
        "12": "天津市",
        "13": "河北省",
        "14": "山西省",
        "15": "内蒙古自治区",
        "21": "辽宁省",
        "22": "吉林省",
        "23": "黑龙江省",
        "31": "上海市",
        "32": "江苏省",
        "33": "浙江省",
        "34": "安徽省",
        "35": "福建省",
        "36": "江西省",
        "37": "山东省",
        "41": "河南省",
        "42": "湖北省",
        "43": "湖南省",
        "44": "广东省",
        "45": "广西壮族自治区",
        "46": "海南省",
        "50": "重庆市",
        "51": "四川省",
        "52": "贵州省",
        "53": "云南省",
        "54": "西藏自治区",
        "61": "陕西省",
        "62": "甘肃省",
        "63": "青海省",
        "64": "宁夏回族自治区",
        "65": "新疆维吾尔自治区",
        "71": "台湾省",
        "81": "香港特别行政区",
        "82": "澳门特别行政区",
    }
)

# Three-digit prefixes that mainland operators (and virtual operators) assign to phones.
MOBILE_PREFIXES: Final[tuple[str, ...]] = (
    *(f"13{d}" for d in range(10)),
    "145", "147", "150", "151", "152", "153", "155", "156", "157", "158", "159",
    "162", "165", "166", "167", "170", "171", "172", "173", "175", "176", "177", "178",
    *(f"18{d}" for d in range(10)),
    "190", "191", "192", "193", "195", "196", "197", "198", "199",
)  # fmt: skip

USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# GB 32100 registration authorities: 1 机构编制, 2 外交, 3 司法行政, 4 文化, 5 民政, 6 旅游,
# 7 宗教, 8 工会, 9 市场监管 (工商), A 中央军委改革和编制办公室, N 农业, Y 其他.
USCC_AUTHORITIES: Final = "123456789ANY"

_ID_WEIGHTS: Final = tuple(pow(2, 17 - i, 11) for i in range(17))
_ID_CHECK_CHARS: Final = "10X98765432"
_USCC_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_CODE_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)
_USCC_BODY_LETTERS: Final = "ABCDEFGHJKLMNPQRTUWXY"

_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_EMAIL_DOMAIN = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})"
)

_ID_BIRTH_MIN: Final = date(1950, 1, 1)
_ID_BIRTH_MAX: Final = date(2004, 12, 31)


class InvalidIdentifier(ValueError):
    """An identifier that cannot be stored; ``reason`` is safe to show the caller."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"invalid {kind}: {reason}")
        self.kind = kind
        self.reason = reason


def _compact(raw: str, drop: str) -> str:
    """Fold full-width characters to ASCII (NFKC) and remove the characters in ``drop``."""
    folded = unicodedata.normalize("NFKC", raw)
    return "".join(ch for ch in folded if ch not in drop and not ch.isspace())


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def normalize_mobile(raw: str) -> str:
    """Return the 11 digits of a mainland mobile number.

    Accepts an optional ``+86``, ``0086`` or ``86`` country prefix, spaces and dashes,
    and full-width digits.
    """
    number = _compact(raw, "-()")
    if number.startswith("+"):
        if not number.startswith("+86"):
            raise InvalidIdentifier("mobile number", "only mainland (+86) numbers are accepted")
        number = number[3:]
    elif number.startswith("0086"):
        number = number[4:]
    elif number.startswith("86") and len(number) == 13:
        number = number[2:]
    if not number:
        raise InvalidIdentifier("mobile number", "is empty")
    if not _is_ascii_digits(number):
        raise InvalidIdentifier(
            "mobile number", "may contain only digits, spaces, dashes and a +86 prefix"
        )
    if len(number) != 11:
        raise InvalidIdentifier("mobile number", f"must have 11 digits, got {len(number)}")
    if number[0] != "1" or number[1] not in "3456789":
        raise InvalidIdentifier("mobile number", "must start with 1 and a second digit 3-9")
    return number


def id_number_check_char(first17: str) -> str:
    """GB 11643 check character (ISO 7064 MOD 11-2) for the first 17 digits."""
    if len(first17) != 17 or not _is_ascii_digits(first17):
        raise ValueError("expected exactly 17 ASCII digits")
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def normalize_id_number(raw: str, *, today: date | None = None) -> str:
    """Return an 18-character resident ID number (居民身份证号) with an upper-case ``X``.

    Checks the province code, the birth date (a real date, year 1900 or later, not after
    ``today``) and the GB 11643 check character. The old 15-digit numbers are refused.
    """
    number = _compact(raw, "-").upper()
    if len(number) != 18:
        raise InvalidIdentifier("ID number", f"must be 18 characters, got {len(number)}")
    if not _is_ascii_digits(number[:17]):
        raise InvalidIdentifier("ID number", "the first 17 characters must be digits")
    if number[17] not in "0123456789X":
        raise InvalidIdentifier("ID number", "the last character must be a digit or X")
    if number[:2] not in PROVINCE_CODES:
        raise InvalidIdentifier("ID number", f"province code {number[:2]} is unknown")
    birth_text = number[6:14]
    try:
        birth = date(int(birth_text[:4]), int(birth_text[4:6]), int(birth_text[6:]))
    except ValueError:
        raise InvalidIdentifier("ID number", f"birth date {birth_text} is not a date") from None
    if birth.year < 1900:
        raise InvalidIdentifier("ID number", f"birth year {birth.year} is before 1900")
    if birth > (today or date.today()):
        raise InvalidIdentifier("ID number", f"birth date {birth_text} is in the future")
    if id_number_check_char(number[:17]) != number[17]:
        raise InvalidIdentifier("ID number", "checksum does not match")
    return number


def uscc_check_char(first17: str) -> str:
    """GB 32100 check character (weighted sum mod 31) for the first 17 characters."""
    if len(first17) != 17 or any(ch not in USCC_ALPHABET for ch in first17):
        raise ValueError("expected exactly 17 characters from the USCC alphabet")
    total = sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[-total % 31]


def normalize_uscc(raw: str) -> str:
    """Return an upper-case 18-character unified social credit code (统一社会信用代码)."""
    code = _compact(raw, "-").upper()
    if len(code) != 18:
        raise InvalidIdentifier("USCC", f"must be 18 characters, got {len(code)}")
    for position, ch in enumerate(code, start=1):
        if ch not in USCC_ALPHABET:
            shown = ch if ch.isascii() and ch.isprintable() else f"U+{ord(ch):04X}"
            raise InvalidIdentifier(
                "USCC",
                f"character {shown!r} at position {position} is not allowed "
                "(digits and upper-case letters except I, O, S, V, Z)",
            )
    if code[0] not in USCC_AUTHORITIES:
        raise InvalidIdentifier("USCC", f"registration authority code {code[0]!r} is unknown")
    if code[1] not in "123456789":
        raise InvalidIdentifier("USCC", "organisation type code (character 2) must be 1-9")
    if not code[2:8].isdigit():
        raise InvalidIdentifier("USCC", "region code (characters 3-8) must be digits")
    if uscc_check_char(code[:17]) != code[17]:
        raise InvalidIdentifier("USCC", "checksum does not match")
    return code


def normalize_account_email(raw: str) -> str:
    """An e-mail used as a sign-in name: normalised and wholly lower-case, so that
    ``Admin@corp.cn`` and ``admin@corp.cn`` are one account."""
    return normalize_email(raw).lower()


def normalize_email(raw: str) -> str:
    """Return a trimmed e-mail address with its domain lower-cased (the local part keeps case)."""
    address = raw.strip()
    if not address:
        raise InvalidIdentifier("email", "is empty")
    if len(address) > 254:
        raise InvalidIdentifier("email", f"must be at most 254 characters, got {len(address)}")
    if address.count("@") != 1:
        raise InvalidIdentifier("email", "must contain exactly one @")
    local, domain = address.split("@")
    domain = domain.lower()
    if not local or len(local) > 64 or not _EMAIL_LOCAL.fullmatch(local):
        raise InvalidIdentifier("email", "the part before @ is not a valid mailbox name")
    if not _EMAIL_DOMAIN.fullmatch(domain):
        raise InvalidIdentifier("email", "the part after @ is not a domain such as example.com")
    return f"{local}@{domain}"


def make_mobile(rng: random.Random) -> str:
    """A random, valid mainland mobile number using a real operator prefix."""
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _area_code(rng: random.Random, region: str | None) -> str:
    """A six-digit GB/T 2260 area code inside ``region`` (a province or area code)."""
    if region is None:
        region = rng.choice(sorted(PROVINCE_CODES))
    if not _is_ascii_digits(region) or len(region) not in (2, 6):
        raise ValueError("region must be a 2-digit province code or a 6-digit area code")
    if region[:2] not in PROVINCE_CODES:
        raise ValueError(f"province code {region[:2]} is unknown")
    if len(region) == 6:
        return region
    if region in ("71", "81", "82"):
        # GB/T 2260 lists Taiwan, Hong Kong and Macao only as a whole (710000, ...).
        return f"{region}0000"
    return f"{region}{rng.randint(1, 12):02d}{rng.randint(1, 20):02d}"


def make_id_number(
    rng: random.Random,
    birth: date | None = None,
    region: str | None = None,
    *,
    female: bool | None = None,
) -> str:
    """A valid resident ID number.

    ``birth`` defaults to a random day in 1950-2004; ``region`` is a 2-digit province
    code or a 6-digit area code (random province if omitted); ``female`` sets the parity
    of the 17th digit (odd for men, even for women) and is random if omitted.
    """
    if birth is None:
        span = (_ID_BIRTH_MAX - _ID_BIRTH_MIN).days
        birth = _ID_BIRTH_MIN + timedelta(days=rng.randint(0, span))
    if female is None:
        female = rng.random() < 0.5
    sex_digit = rng.choice("02468" if female else "13579")
    first17 = f"{_area_code(rng, region)}{birth:%Y%m%d}{rng.randrange(100):02d}{sex_digit}"
    return first17 + id_number_check_char(first17)


def _org_code_check_char(body: str) -> str:
    """GB 11714 check character for an 8-character organisation code body."""
    total = sum(
        (int(ch) if ch.isdigit() else ord(ch) - ord("A") + 10) * w
        for ch, w in zip(body, _ORG_CODE_WEIGHTS, strict=True)
    )
    check = -total % 11
    return "X" if check == 10 else str(check)


def make_uscc(rng: random.Random, region: str | None = None, *, category: str = "91") -> str:
    """A valid unified social credit code.

    ``category`` is the authority and type pair (``"91"`` company, ``"92"`` sole
    proprietorship, ``"12"`` public institution, ...); ``region`` is a 2-digit province
    or 6-digit area code, random if omitted. The organisation code (characters 9-17)
    carries its own GB 11714 check character, as issued codes do.
    """
    if len(category) != 2 or category[0] not in USCC_AUTHORITIES or category[1] not in "123456789":
        raise ValueError("category must be an authority code followed by a type digit 1-9")
    if rng.random() < 0.6:
        # Codes issued since 2015 start with "MA"; older ones reuse a numeric code.
        body = "MA" + "".join(
            rng.choice(_USCC_BODY_LETTERS) if rng.random() < 0.3 else str(rng.randrange(10))
            for _ in range(6)
        )
    else:
        body = f"{rng.randrange(10**8):08d}"
    first17 = f"{category}{_area_code(rng, region)}{body}{_org_code_check_char(body)}"
    return first17 + uscc_check_char(first17)
