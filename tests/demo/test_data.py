"""Demo customers: deterministic per seed, unique, valid and roughly realistic."""

from __future__ import annotations

from collections import Counter
from dataclasses import FrozenInstanceError

import pytest

from dangan.demo.data import CITIES, DemoCustomer, demo_customers
from dangan.services.identifiers import (
    PROVINCE_CODES,
    normalize_email,
    normalize_id_number,
    normalize_mobile,
    normalize_uscc,
)
from dangan.services.regions import REGIONS


@pytest.fixture(scope="module")
def east() -> list[DemoCustomer]:
    return demo_customers("east", 1000)


def test_same_seed_gives_the_same_customers() -> None:
    assert demo_customers("north", 50) == demo_customers("north", 50)


def test_a_shorter_run_is_a_prefix_of_a_longer_one() -> None:
    assert demo_customers("north", 200)[:50] == demo_customers("north", 50)


def test_different_tenants_get_different_customers() -> None:
    east, north, south = (demo_customers(slug, 100) for slug in ("east", "north", "south"))

    assert len({c.phone for c in east} & {c.phone for c in north}) < 5
    assert [c.name for c in east] != [c.name for c in north] != [c.name for c in south]


def test_count_zero_and_negative() -> None:
    assert demo_customers("east", 0) == []
    with pytest.raises(ValueError):
        demo_customers("east", -1)


def test_customers_are_frozen(east: list[DemoCustomer]) -> None:
    with pytest.raises(FrozenInstanceError):
        east[0].name = "改名"  # type: ignore[misc]


def test_phones_ids_usccs_emails_and_company_names_are_unique(east: list[DemoCustomer]) -> None:
    for values in (
        [c.phone for c in east],
        [c.id_number for c in east if c.id_number],
        [c.uscc for c in east if c.uscc],
        [c.email for c in east if c.email],
        [c.name for c in east if c.kind == "ENTERPRISE"],
    ):
        assert len(values) == len(set(values))


def test_every_identifier_validates(east: list[DemoCustomer]) -> None:
    for customer in east:
        assert normalize_mobile(customer.phone) == customer.phone
        if customer.email is not None:
            assert normalize_email(customer.email) == customer.email
        if customer.kind == "INDIVIDUAL":
            assert customer.uscc is None
            assert customer.id_number is not None
            assert normalize_id_number(customer.id_number) == customer.id_number
        else:
            assert customer.id_number is None
            assert customer.uscc is not None
            assert normalize_uscc(customer.uscc) == customer.uscc


def test_identifiers_match_the_customer_region(east: list[DemoCustomer]) -> None:
    for customer in east:
        code = REGIONS[customer.region]
        assert customer.address.startswith(customer.region)
        identifier = customer.id_number or customer.uscc
        assert identifier is not None
        area = identifier[:6] if customer.kind == "INDIVIDUAL" else identifier[2:8]
        assert area.startswith(code)
        district = next(
            d.name for city in CITIES[customer.region] for d in city.districts if d.code == area
        )
        assert district in customer.address


def test_individuals_were_born_1950_to_2004(east: list[DemoCustomer]) -> None:
    births = [c.id_number[6:14] for c in east if c.id_number]
    assert min(births) >= "19500101"
    assert max(births) <= "20041231"


def test_names_look_chinese(east: list[DemoCustomer]) -> None:
    for customer in east:
        assert all("\u4e00" <= ch <= "\u9fff" for ch in customer.name)
        if customer.kind == "INDIVIDUAL":
            assert 2 <= len(customer.name) <= 4
        else:
            assert customer.name.endswith(("有限公司", "股份有限公司"))
    surnames = Counter(c.name[0] for c in east if c.kind == "INDIVIDUAL")
    assert {"王", "李", "张"} <= {s for s, _ in surnames.most_common(8)}


def test_ratios_are_roughly_as_specified(east: list[DemoCustomer]) -> None:
    kinds = Counter(c.kind for c in east)
    tiers = Counter(c.tier for c in east)
    without_email = sum(c.email is None for c in east)

    assert 630 <= kinds["INDIVIDUAL"] <= 770
    assert 60 <= tiers["KEY"] <= 140
    assert 630 <= tiers["ORDINARY"] <= 770
    assert 150 <= tiers["POTENTIAL"] <= 250
    assert 150 <= without_email <= 250


def test_customers_spread_over_many_regions(east: list[DemoCustomer]) -> None:
    assert len({c.region for c in east}) >= 25


def test_region_table_covers_all_34_province_level_regions() -> None:
    assert len(REGIONS) == 34
    assert REGIONS["浙江省"] == "33"
    assert REGIONS["北京市"] == "11"
    assert {code: name for name, code in REGIONS.items()} == dict(PROVINCE_CODES)
    assert set(CITIES) == set(REGIONS)
    for region, cities in CITIES.items():
        assert 1 <= len(cities) <= 3
        for city in cities:
            assert city.districts
            assert all(d.code.startswith(REGIONS[region]) for d in city.districts)


def test_ten_thousand_customers_stay_unique() -> None:
    customers = demo_customers("south", 10_000)
    assert len({c.phone for c in customers}) == 10_000
