"""The debtor's own time zone and currency (intake/regions.py): the table of
supported regions, the phone's country code checked against the region, and
``collections default`` taking its defaults from them or refusing (exit 2,
naming the option) when it cannot place the debtor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from intake.regions import REGIONS, PlacementError, find, place_debtor
from workflows import rules

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "events.jsonl"


def test_every_region_has_a_real_zone_and_a_known_currency():
    for region in REGIONS.values():
        assert rules.is_valid_timezone(region.timezone), region
        assert region.currency in rules.KNOWN_CURRENCIES, region
    assert {"CN-GD", "CN-XJ", "CN-SC", "HK", "TW", "US-NY", "SG", "GB-LND"} <= set(REGIONS)


def test_the_sample_debtors_are_placed_where_the_samples_put_them():
    """Every default event of samples/events.jsonl: the table gives its zone and currency, the phone agrees."""
    for line in SAMPLES.read_text().splitlines():
        event = json.loads(line)
        if event["type"] != "account.defaulted" or event["currency"] not in rules.KNOWN_CURRENCIES:
            continue
        debtor = event["debtor"]
        placed = place_debtor(debtor["region"], debtor["phone"])
        assert (placed.timezone, placed.currency) == (debtor["timezone"], event["currency"]), event["account_id"]


@pytest.mark.parametrize("region,phone,expected", [
    ("US-NY", "+1 212 555 0100", ("US-NY", "America/New_York", "USD")),
    ("cn-xj", "+86 138 0013 8521", ("CN-XJ", "Asia/Urumqi", "CNY")),
    ("CN-HK", "+852 5550 0107", ("HK", "Asia/Hong_Kong", "HKD")),
    ("TW", "+886 912 345 678", ("TW", "Asia/Taipei", "TWD")),
    ("GB-MAN", "+44 161 555 0100", ("GB-MAN", "Europe/London", "GBP")),
    ("CN-GD", "13800138000", ("CN-GD", "Asia/Shanghai", "CNY")),  # a national number: read in the region's country
])
def test_a_known_region_gives_zone_and_currency(region, phone, expected):
    placed = place_debtor(region, phone)
    assert (placed.region, placed.timezone, placed.currency) == expected


@pytest.mark.parametrize("region,phone,given,message", [
    ("US", "+1 212 555 0100", {}, "region 'US' is not one this product can place"),
    ("US-TX", "+1 512 555 0100", {"timezone": "America/Chicago"}, "give --currency to say"),
    ("CN-GD", "+1 212 555 0100", {}, "is a +1 (US) number, but region CN-GD is in CN (+86): give --timezone and "
                                     "--currency"),
    ("SG", "+86 138 0013 8000", {"currency": "SGD"}, "give --timezone to say"),
    ("CN-GD", "12", {"timezone": "Asia/Shanghai", "currency": "CNY"}, "--phone '12' is not a phone number"),
])
def test_a_debtor_it_cannot_place_is_refused_naming_the_option(region, phone, given, message):
    with pytest.raises(PlacementError) as refused:
        place_debtor(region, phone, **given)
    assert message in str(refused.value)


def test_given_options_win_over_the_table():
    assert place_debtor("US-TX", "+1 512 555 0100", timezone="America/Chicago", currency="USD").timezone == \
        "America/Chicago"
    moved = place_debtor("CN-GD", "+1 212 555 0100", timezone="America/New_York", currency="USD")
    assert (moved.region, moved.timezone, moved.currency) == ("CN-GD", "America/New_York", "USD")
    assert place_debtor("HK", "+852 5550 0107", currency="USD").currency == "USD"
    assert find("US") is None and find("XX-YY") is None


DEFAULT = ["default", "ACC-9", "--amount", "1200.50", "--due-date", "2026-09-30", "--contract", "K-9",
           "--debtor-id", "DEB-9", "--age", "41", "--dry-run"]


async def test_default_takes_the_zone_and_currency_of_the_region(capsys):
    assert await main(DEFAULT + ["--region", "US-NY", "--phone", "+1 212 555 0100"]) == 0
    event = json.loads(capsys.readouterr().out)
    assert event["debtor"]["timezone"] == "America/New_York" and event["currency"] == "USD"
    assert await main(DEFAULT + ["--region", "cn-xj", "--phone", "+86 138 0013 8521"]) == 0
    event = json.loads(capsys.readouterr().out)
    assert (event["debtor"]["region"], event["debtor"]["timezone"], event["currency"]) == \
        ("CN-XJ", "Asia/Urumqi", "CNY")


@pytest.mark.parametrize("argv,message", [
    (["--region", "US", "--phone", "+1 212 555 0100"], "give --timezone and --currency"),
    (["--region", "CN-GD", "--phone", "+1 212 555 0100", "--timezone", "America/New_York"], "give --currency"),
    (["--region", "US-NY", "--phone", "+1"], "is not a phone number"),
])
async def test_default_refuses_what_it_cannot_place_with_exit_2(argv, message, capsys):
    assert await main(DEFAULT + argv) == 2
    out, err = capsys.readouterr()
    assert message in err and out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err


async def test_regions_command_lists_the_table(capsys):
    assert await main(["regions", "--json"]) == 0
    listed = {r["region"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["US-NY"] == {"region": "US-NY", "name": "New York", "timezone": "America/New_York",
                               "currency": "USD", "phone": "+1"}
    assert await main(["regions"]) == 0
    assert "Asia/Urumqi" in capsys.readouterr().out
