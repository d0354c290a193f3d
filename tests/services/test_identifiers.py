"""Chinese identifiers: published examples, every refusal reason, and checksum properties."""

from __future__ import annotations

import random
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dangan.services.identifiers import (
    PROVINCE_CODES,
    USCC_ALPHABET,
    InvalidIdentifier,
    id_number_check_char,
    make_id_number,
    make_mobile,
    make_uscc,
    normalize_email,
    normalize_id_number,
    normalize_mobile,
    normalize_uscc,
    uscc_check_char,
)

GB11643_SAMPLE = "11010519491231002X"  # the example in GB 11643-1999
PUBLISHED_USCC = "91350100M000100Y43"
TODAY = date(2024, 6, 1)


def reason(call, *args, **kwargs) -> str:
    with pytest.raises(InvalidIdentifier) as caught:
        call(*args, **kwargs)
    return caught.value.reason


def with_check(first17: str) -> str:
    return first17 + id_number_check_char(first17)


# --- mobile -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "+86 138 0013 8000",
        "+86-13800138000",
        "008613800138000",
        "8613800138000",
        " 13800138000 ",
        "１３８００１３８０００",  # full-width digits from a Chinese input method
    ],
)
def test_mobile_prefixes_spaces_and_dashes_are_removed(raw: str) -> None:
    assert normalize_mobile(raw) == "13800138000"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 415 555 0100", "only mainland (+86) numbers are accepted"),
        ("138OO138000", "may contain only digits, spaces, dashes and a +86 prefix"),
        ("1380013800", "must have 11 digits, got 10"),
        ("+86 1380013800", "must have 11 digits, got 10"),
        ("138001380001", "must have 11 digits, got 12"),
        ("12800138000", "must start with 1 and a second digit 3-9"),
        ("23800138000", "must start with 1 and a second digit 3-9"),
        (" - ", "is empty"),
    ],
)
def test_mobile_refusals_say_why(raw: str, expected: str) -> None:
    assert reason(normalize_mobile, raw) == expected


def test_landline_with_area_code_is_not_a_mobile() -> None:
    assert reason(normalize_mobile, "010-12345678") == "must start with 1 and a second digit 3-9"


# --- resident ID number (GB 11643) -----------------------------------------------------


def test_gb11643_sample_is_valid() -> None:
    assert normalize_id_number(GB11643_SAMPLE) == GB11643_SAMPLE


def test_id_number_lower_case_x_spaces_and_full_width_are_normalised() -> None:
    assert normalize_id_number(" 110105 19491231 002x ") == GB11643_SAMPLE
    assert normalize_id_number("１１０１０５１９４９１２３１００２ｘ") == GB11643_SAMPLE


def test_check_char_of_gb11643_sample() -> None:
    assert id_number_check_char(GB11643_SAMPLE[:17]) == "X"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("11010519491231002", "must be 18 characters, got 17"),
        ("110105194912310021X", "must be 18 characters, got 19"),
        ("110105194912310A2X", "the first 17 characters must be digits"),
        ("11010519491231002Y", "the last character must be a digit or X"),
        (with_check("99010519491231002"), "province code 99 is unknown"),
        (with_check("10010519491231002"), "province code 10 is unknown"),
        (with_check("11010519991332002"), "birth date 19991332 is not a date"),
        (with_check("11010520230229002"), "birth date 20230229 is not a date"),
        (with_check("11010518991231002"), "birth year 1899 is before 1900"),
        (with_check("11010520240602002"), "birth date 20240602 is in the future"),
        ("110105194912310021", "checksum does not match"),
    ],
)
def test_id_number_refusals_say_why(raw: str, expected: str) -> None:
    assert reason(normalize_id_number, raw, today=TODAY) == expected


def test_gb11643_second_sample_is_refused_for_its_1880_birth_year() -> None:
    # GB 11643's other example is correct per the standard but predates our 1900 floor.
    assert reason(normalize_id_number, "440524188001010014") == "birth year 1880 is before 1900"


def test_id_number_born_today_and_leap_day_are_accepted() -> None:
    assert normalize_id_number(with_check("11010520240601002"), today=TODAY)
    assert normalize_id_number(with_check("11010520000229002"), today=TODAY)


def test_old_15_digit_id_numbers_are_refused() -> None:
    assert reason(normalize_id_number, "110105491231002") == "must be 18 characters, got 15"


def test_refusal_does_not_echo_the_whole_id_number() -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        normalize_id_number("110105194912310021")
    assert "110105194912310021" not in str(caught.value)
    assert caught.value.kind == "ID number"


def test_id_number_check_char_requires_17_digits() -> None:
    with pytest.raises(ValueError):
        id_number_check_char("1101051949123100")


# --- unified social credit code (GB 32100) ---------------------------------------------


def test_published_uscc_is_valid() -> None:
    assert normalize_uscc(PUBLISHED_USCC) == PUBLISHED_USCC
    assert uscc_check_char(PUBLISHED_USCC[:17]) == "3"


def test_uscc_is_upper_cased_and_spaces_removed() -> None:
    assert normalize_uscc(" 91350100 m000100y4 3 ") == PUBLISHED_USCC
    assert normalize_uscc("９１３５０１００Ｍ０００１００Ｙ４３") == PUBLISHED_USCC


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("91350100M000100Y4", "must be 18 characters, got 17"),
        (
            "91350100I000100Y43",
            "character 'I' at position 9 is not allowed"
            " (digits and upper-case letters except I, O, S, V, Z)",
        ),
        (
            "9135010OM000100Y43",
            "character 'O' at position 8 is not allowed"
            " (digits and upper-case letters except I, O, S, V, Z)",
        ),
        (
            "91350100M000100Y4#",
            "character '#' at position 18 is not allowed"
            " (digits and upper-case letters except I, O, S, V, Z)",
        ),
        ("01350100M000100Y43", "registration authority code '0' is unknown"),
        ("B1350100M000100Y43", "registration authority code 'B' is unknown"),
        ("90350100M000100Y43", "organisation type code (character 2) must be 1-9"),
        ("913501A0M000100Y43", "region code (characters 3-8) must be digits"),
        ("91350100M000100Y44", "checksum does not match"),
    ],
)
def test_uscc_refusals_say_why(raw: str, expected: str) -> None:
    assert reason(normalize_uscc, raw) == expected


def test_uscc_check_char_rejects_characters_outside_the_alphabet() -> None:
    with pytest.raises(ValueError):
        uscc_check_char("91350100M000100YZ")


# --- email -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("zhang.wei@qq.com", "zhang.wei@qq.com"),
        ("  Zhang.Wei@QQ.COM\n", "Zhang.Wei@qq.com"),
        ("li+crm@mail.example.com.cn", "li+crm@mail.example.com.cn"),
        ("a@xn--fiqs8s.xn--fiqs8s", "a@xn--fiqs8s.xn--fiqs8s"),
    ],
)
def test_email_is_trimmed_and_domain_lower_cased(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("   ", "is empty"),
        ("zhang.wei.qq.com", "must contain exactly one @"),
        ("a@b@qq.com", "must contain exactly one @"),
        ("@qq.com", "the part before @ is not a valid mailbox name"),
        ("zhang..wei@qq.com", "the part before @ is not a valid mailbox name"),
        ("zhang wei@qq.com", "the part before @ is not a valid mailbox name"),
        ("x" * 65 + "@qq.com", "the part before @ is not a valid mailbox name"),
        ("zhang@qq", "the part after @ is not a domain such as example.com"),
        ("zhang@-qq.com", "the part after @ is not a domain such as example.com"),
        ("zhang@qq..com", "the part after @ is not a domain such as example.com"),
        ("zhang@qq.c", "the part after @ is not a domain such as example.com"),
    ],
)
def test_email_refusals_say_why(raw: str, expected: str) -> None:
    assert reason(normalize_email, raw) == expected


def test_email_longer_than_254_characters_is_refused() -> None:
    address = "zhang@" + ".".join(["mail" * 13] * 5) + ".com"

    assert len(address) == 274
    assert reason(normalize_email, address) == "must be at most 254 characters, got 274"


# --- generators and checksum properties ------------------------------------------------

rngs = st.randoms(use_true_random=False)
id_alphabet = "0123456789X"


@given(rngs)
def test_generated_mobiles_validate(rng: random.Random) -> None:
    mobile = make_mobile(rng)
    assert normalize_mobile(mobile) == mobile


@given(rngs, st.dates(min_value=date(1900, 1, 1), max_value=date.today()))
def test_generated_id_numbers_validate(rng: random.Random, birth: date) -> None:
    number = make_id_number(rng, birth)
    assert normalize_id_number(number) == number
    assert number[6:14] == f"{birth:%Y%m%d}"


@given(rngs, st.sampled_from(sorted(PROVINCE_CODES)), st.booleans())
def test_generated_id_number_follows_region_and_sex(
    rng: random.Random, province: str, female: bool
) -> None:
    number = make_id_number(rng, region=province, female=female)
    assert normalize_id_number(number) == number
    assert number.startswith(province)
    assert int(number[16]) % 2 == (0 if female else 1)


def test_generated_id_number_keeps_a_six_digit_area_code() -> None:
    assert make_id_number(random.Random(1), region="330106").startswith("330106")


def test_generator_refuses_unknown_region() -> None:
    with pytest.raises(ValueError):
        make_id_number(random.Random(1), region="99")


@given(rngs, st.sampled_from(["91", "92", "93", "12", "51", "52", "N2", "Y1"]))
def test_generated_usccs_validate(rng: random.Random, category: str) -> None:
    code = make_uscc(rng, category=category)
    assert normalize_uscc(code) == code
    assert code.startswith(category)


def test_generated_uscc_keeps_its_region() -> None:
    assert make_uscc(random.Random(1), "330106")[2:8] == "330106"


def test_generators_are_deterministic() -> None:
    def batch(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [make_mobile(rng), make_id_number(rng), make_uscc(rng)]

    assert batch(7) == batch(7)
    assert batch(7) != batch(8)


@given(rngs, st.integers(0, 17), st.sampled_from(id_alphabet))
def test_any_single_character_change_breaks_an_id_number(
    rng: random.Random, position: int, replacement: str
) -> None:
    number = make_id_number(rng)
    mutated = number[:position] + replacement + number[position + 1 :]
    if mutated == number:
        return
    with pytest.raises(InvalidIdentifier):
        normalize_id_number(mutated)


@given(rngs, st.integers(0, 16), st.sampled_from("0123456789"))
def test_id_number_checksum_alone_catches_every_digit_substitution(
    rng: random.Random, position: int, replacement: str
) -> None:
    first17 = make_id_number(rng)[:17]
    mutated = first17[:position] + replacement + first17[position + 1 :]
    if mutated != first17:
        assert id_number_check_char(mutated) != id_number_check_char(first17)


@given(rngs, st.integers(0, 17), st.sampled_from(USCC_ALPHABET + "IOSVZ"))
def test_any_single_character_change_breaks_a_uscc(
    rng: random.Random, position: int, replacement: str
) -> None:
    code = make_uscc(rng)
    mutated = code[:position] + replacement + code[position + 1 :]
    if mutated == code:
        return
    with pytest.raises(InvalidIdentifier):
        normalize_uscc(mutated)


@given(rngs, st.integers(0, 16), st.sampled_from(USCC_ALPHABET))
def test_uscc_checksum_alone_catches_every_substitution(
    rng: random.Random, position: int, replacement: str
) -> None:
    first17 = make_uscc(rng)[:17]
    mutated = first17[:position] + replacement + first17[position + 1 :]
    if mutated != first17:
        assert uscc_check_char(mutated) != uscc_check_char(first17)


def test_there_are_34_province_level_codes() -> None:
    assert len(PROVINCE_CODES) == 34
    assert PROVINCE_CODES["33"] == "浙江省"
