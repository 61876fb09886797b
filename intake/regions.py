"""Where a debtor lives: the supported regions, each with the debtor's default
IANA time zone and currency, and a check of a phone number's country code
against the region.

Regions are ISO 3166-2 subdivision codes (``CN-GD``, ``US-NY``, ``GB-LND``)
or, where one time zone and one currency cover the whole country, its ISO
3166-1 code (``HK``, ``SG``, ``TW``; any ``GB-…`` subdivision too). A region
this table cannot place (``US``: six time zones) is refused by
``collections default`` unless the operator names the zone and currency.
Phone numbers are read with ``phonenumbers`` (Google's libphonenumber
metadata): writing our own country-code table would be a worse copy of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import phonenumbers

from workflows import rules
from workflows.presentation import local_stamp


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    country: str  # ISO 3166-1 alpha-2: the phone numbering region
    timezone: str  # IANA
    currency: str  # ISO 4217


def _mainland(code: str, name: str, timezone: str = "Asia/Shanghai") -> Region:
    return Region(f"CN-{code}", name, "CN", timezone, "CNY")


def _us(code: str, name: str, timezone: str) -> Region:
    return Region(f"US-{code}", name, "US", timezone, "USD")


_MAINLAND = [
    ("AH", "Anhui"), ("BJ", "Beijing"), ("CQ", "Chongqing"), ("FJ", "Fujian"), ("GD", "Guangdong"),
    ("GS", "Gansu"), ("GX", "Guangxi"), ("GZ", "Guizhou"), ("HA", "Henan"), ("HB", "Hubei"), ("HE", "Hebei"),
    ("HI", "Hainan"), ("HL", "Heilongjiang"), ("HN", "Hunan"), ("JL", "Jilin"), ("JS", "Jiangsu"),
    ("JX", "Jiangxi"), ("LN", "Liaoning"), ("NM", "Inner Mongolia"), ("NX", "Ningxia"), ("QH", "Qinghai"),
    ("SC", "Sichuan"), ("SD", "Shandong"), ("SH", "Shanghai"), ("SN", "Shaanxi"), ("SX", "Shanxi"),
    ("TJ", "Tianjin"), ("XZ", "Tibet"), ("YN", "Yunnan"), ("ZJ", "Zhejiang"),
]
# Whole countries (one zone, one currency): the country code, and any of its subdivisions.
_COUNTRIES = [
    Region("HK", "Hong Kong", "HK", "Asia/Hong_Kong", "HKD"),
    Region("MO", "Macao", "MO", "Asia/Macau", "MOP"),
    Region("TW", "Taiwan", "TW", "Asia/Taipei", "TWD"),
    Region("SG", "Singapore", "SG", "Asia/Singapore", "SGD"),
    Region("GB", "United Kingdom", "GB", "Europe/London", "GBP"),
    Region("JP", "Japan", "JP", "Asia/Tokyo", "JPY"),
    Region("CH", "Switzerland", "CH", "Europe/Zurich", "CHF"),
    Region("DE", "Germany", "DE", "Europe/Berlin", "EUR"),
]
_SUBDIVISIONS = [
    *(_mainland(code, name) for code, name in _MAINLAND),
    # Xinjiang keeps its own local time, as the debtors there do (samples/events.jsonl).
    _mainland("XJ", "Xinjiang", "Asia/Urumqi"),
    _us("NY", "New York", "America/New_York"), _us("NJ", "New Jersey", "America/New_York"),
    _us("MA", "Massachusetts", "America/New_York"), _us("PA", "Pennsylvania", "America/New_York"),
    _us("GA", "Georgia", "America/New_York"), _us("DC", "District of Columbia", "America/New_York"),
    _us("IL", "Illinois", "America/Chicago"), _us("CA", "California", "America/Los_Angeles"),
    _us("WA", "Washington", "America/Los_Angeles"), _us("HI", "Hawaii", "Pacific/Honolulu"),
    Region("GB-LND", "London", "GB", "Europe/London", "GBP"),
]
REGIONS: dict[str, Region] = {r.code: r for r in (*_COUNTRIES, *_SUBDIVISIONS)}
# ISO 3166-2:CN also names Hong Kong, Macao and Taiwan; cases use the short code.
ALIASES = {"CN-HK": "HK", "CN-MO": "MO", "CN-TW": "TW"}


def find(code: str) -> Region | None:
    """The region for a code (any letter case; ``CN-HK`` is ``HK``), or None if it cannot be placed."""
    key = code.strip().upper()
    key = ALIASES.get(key, key)
    if key in REGIONS:
        return REGIONS[key]
    country = REGIONS.get(key.partition("-")[0])
    if country is not None and "-" in key:  # a subdivision of a one-zone country
        return Region(key, country.name, country.country, country.timezone, country.currency)
    return None


class PlacementError(ValueError):
    """The debtor cannot be placed: the message names the option to give."""


@dataclass(frozen=True)
class Placement:
    region: str
    timezone: str
    currency: str


def phone_country_code(phone: str, default_country: str | None = None) -> int:
    """A phone number's country calling code (``+1 212 …``: 1). Raises
    PlacementError if it cannot be a phone number (too short or long for its country)."""
    try:
        number = phonenumbers.parse(phone, default_country)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise PlacementError(f"--phone {phone!r} is not a phone number: give it with its country code, "
                             "e.g. '+86 138 0013 8000'")
    return number.country_code


def place_debtor(region: str, phone: str, *, timezone: str | None = None, currency: str | None = None) -> Placement:
    """The debtor's region code, time zone and currency.

    From the table when the region is known and the phone's country code
    belongs to it; otherwise ``timezone`` and ``currency`` must both be
    given (the error names the missing options). Given options always win."""
    known = find(region)
    code = phone_country_code(phone, known.country if known else None)
    problem = None
    if known is None:
        problem = f"region {region!r} is not one this product can place (`collections regions` lists them)"
    elif known.country not in phonenumbers.region_codes_for_country_code(code):
        home = phonenumbers.country_code_for_region(known.country)
        problem = (f"--phone {phone!r} is a +{code} ({phonenumbers.region_code_for_country_code(code)}) number, "
                   f"but region {known.code} is in {known.country} (+{home})")
    if problem is not None:
        missing = [option for option, given in (("--timezone", timezone), ("--currency", currency)) if not given]
        if missing:
            raise PlacementError(f"{problem}: give {' and '.join(missing)} to say where the debtor is")
    if known is None:
        return Placement(region.strip(), str(timezone), str(currency))  # both given (else refused above)
    return Placement(known.code, timezone or known.timezone, currency or known.currency)


def zone_of(region: str) -> str | None:
    """The region's time zone, if the table knows it (for a region-wide event's times)."""
    known = find(region)
    return known.timezone if known is not None else None


def local_time(at: datetime, tz: str | None) -> str:
    """An instant as people read it: local time with the year and the zone's
    name, ``2026-12-25 05:20 Asia/Urumqi`` (UTC when no zone is known). The
    one rule for times shown to people; JSON for scripts keeps UTC ISO 8601."""
    zone = tz if tz and rules.is_valid_timezone(tz) else "UTC"
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return local_stamp(at, zone)
