"""Unit tests of the pure rule functions (SPEC §2–§3): no server, no database.

Expected instants are written as UTC literals worked out by hand (the local
wall time is in the comment), so the tests do not reuse the conversion code
they check.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from workflows import rules
from compliance import screen_text  # the screen moved to compliance/; these phrases still hold
from workflows.rules import (
    LADDER,
    ContactRules,
    cap_reason,
    in_quiet_hours,
    initial_grade,
    installment_plan,
    installment_schedule,
    is_time_barred,
    limitation_expiry,
    next_contact_window,
    next_local_day_opening,
    regrade,
    restart_limitation,
    retain_until,
    route_team,
    step_due,
    verify_debt,
)

UTC = timezone.utc
SHANGHAI = "Asia/Shanghai"  # UTC+8, no DST
NEW_YORK = "America/New_York"  # EST -5 / EDT -4; 2024 DST: 10 Mar 02:00 -> 03:00, 3 Nov 02:00 -> 01:00
LONDON = "Europe/London"  # GMT +0 / BST +1 (2024: 31 Mar – 27 Oct)
KOLKATA = "Asia/Kolkata"  # UTC+5:30, no DST


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=UTC)


def wall(at: datetime, tz: str) -> datetime:
    """Local wall-clock reading of ``at`` (stdlib only, independent of rules.py)."""
    return at.astimezone(ZoneInfo(tz))


def assert_utc(at: datetime) -> None:
    assert at.tzinfo is not None and at.utcoffset() == timedelta(0), f"{at!r} is not aware UTC"


# --------------------------------------------------------------------------
# Quiet hours: no contact 22:00–08:00 debtor-local
# --------------------------------------------------------------------------

QUIET_CASES = [
    # Asia/Shanghai (+8)
    (SHANGHAI, utc(2024, 6, 3, 13, 59, 59), False, "21:59:59"),
    (SHANGHAI, utc(2024, 6, 3, 14, 0, 0), True, "22:00:00"),
    (SHANGHAI, utc(2024, 6, 3, 16, 0, 0), True, "00:00 midnight"),
    (SHANGHAI, utc(2024, 6, 3, 19, 0, 0), True, "03:00"),
    (SHANGHAI, utc(2024, 6, 3, 23, 59, 59), True, "07:59:59"),
    (SHANGHAI, utc(2024, 6, 4, 0, 0, 0), False, "08:00:00"),
    (SHANGHAI, utc(2024, 6, 4, 4, 0, 0), False, "12:00"),
    # America/New_York in winter (EST, -5)
    (NEW_YORK, utc(2024, 1, 16, 2, 59, 59), False, "21:59:59 EST"),
    (NEW_YORK, utc(2024, 1, 16, 3, 0, 0), True, "22:00:00 EST"),
    (NEW_YORK, utc(2024, 1, 16, 12, 59, 59), True, "07:59:59 EST"),
    (NEW_YORK, utc(2024, 1, 16, 13, 0, 0), False, "08:00:00 EST"),
    # America/New_York on the spring-forward day (EDT, -4 after 02:00)
    (NEW_YORK, utc(2024, 3, 10, 11, 59, 59), True, "07:59:59 EDT"),
    (NEW_YORK, utc(2024, 3, 10, 12, 0, 0), False, "08:00:00 EDT (would be 07:00 EST)"),
    (NEW_YORK, utc(2024, 3, 11, 1, 59, 59), False, "21:59:59 EDT"),
    (NEW_YORK, utc(2024, 3, 11, 2, 0, 0), True, "22:00:00 EDT"),
    # America/New_York on the fall-back day (EST, -5 after 02:00)
    (NEW_YORK, utc(2024, 11, 3, 12, 59, 59), True, "07:59:59 EST (would be 08:59 EDT)"),
    (NEW_YORK, utc(2024, 11, 3, 13, 0, 0), False, "08:00:00 EST"),
    # Europe/London: GMT in winter, BST in summer
    (LONDON, utc(2024, 1, 15, 21, 59, 59), False, "21:59:59 GMT"),
    (LONDON, utc(2024, 1, 15, 22, 0, 0), True, "22:00:00 GMT"),
    (LONDON, utc(2024, 7, 1, 20, 59, 59), False, "21:59:59 BST"),
    (LONDON, utc(2024, 7, 1, 21, 0, 0), True, "22:00:00 BST"),
    (LONDON, utc(2024, 7, 2, 6, 59, 59), True, "07:59:59 BST"),
    (LONDON, utc(2024, 7, 2, 7, 0, 0), False, "08:00:00 BST"),
    # Asia/Kolkata (+5:30, a half-hour offset)
    (KOLKATA, utc(2024, 6, 3, 16, 29, 59), False, "21:59:59 IST"),
    (KOLKATA, utc(2024, 6, 3, 16, 30, 0), True, "22:00:00 IST"),
    (KOLKATA, utc(2024, 6, 4, 2, 29, 59), True, "07:59:59 IST"),
    (KOLKATA, utc(2024, 6, 4, 2, 30, 0), False, "08:00:00 IST"),
]


@pytest.mark.parametrize(("tz", "at", "quiet", "local"), QUIET_CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in QUIET_CASES])
def test_in_quiet_hours_boundaries(tz, at, quiet, local):
    assert in_quiet_hours(at, tz) is quiet


def test_one_instant_is_judged_by_each_debtors_own_zone():
    at = utc(2024, 6, 3, 14, 30)
    assert in_quiet_hours(at, SHANGHAI)  # 22:30
    assert not in_quiet_hours(at, LONDON)  # 15:30 BST
    assert not in_quiet_hours(at, NEW_YORK)  # 10:30 EDT
    assert not in_quiet_hours(at, KOLKATA)  # 20:00 IST


def test_quiet_hours_follow_a_custom_rule_set():
    stricter = ContactRules(quiet_start=time(21, 0), quiet_end=time(9, 0))
    assert in_quiet_hours(utc(2024, 6, 3, 13, 0), SHANGHAI, stricter)  # 21:00
    assert not in_quiet_hours(utc(2024, 6, 3, 12, 59, 59), SHANGHAI, stricter)  # 20:59:59
    assert in_quiet_hours(utc(2024, 6, 4, 0, 59, 59), SHANGHAI, stricter)  # 08:59:59
    assert not in_quiet_hours(utc(2024, 6, 4, 1, 0), SHANGHAI, stricter)  # 09:00
    # A window that does not wrap midnight.
    early = ContactRules(quiet_start=time(0, 0), quiet_end=time(7, 0))
    assert not in_quiet_hours(utc(2024, 6, 3, 15, 30), SHANGHAI, early)  # 23:30
    assert in_quiet_hours(utc(2024, 6, 3, 16, 0), SHANGHAI, early)  # 00:00
    assert in_quiet_hours(utc(2024, 6, 3, 22, 59, 59), SHANGHAI, early)  # 06:59:59
    assert not in_quiet_hours(utc(2024, 6, 3, 23, 0), SHANGHAI, early)  # 07:00


# --------------------------------------------------------------------------
# next_contact_window / next_local_day_opening
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("tz", "at"), [
    (SHANGHAI, utc(2024, 6, 4, 0, 0)),  # exactly 08:00
    (SHANGHAI, utc(2024, 6, 3, 13, 59, 59)),  # 21:59:59
    (NEW_YORK, utc(2024, 3, 10, 12, 0)),  # 08:00 EDT on the spring-forward day
    (LONDON, utc(2024, 7, 1, 20, 59, 59)),  # 21:59:59 BST
    (KOLKATA, utc(2024, 6, 4, 2, 30)),  # 08:00 IST
])
def test_next_contact_window_returns_the_same_instant_when_allowed(tz, at):
    result = next_contact_window(at, tz)
    assert result == at
    assert_utc(result)


NEXT_WINDOW_CASES = [
    # early morning: today's 08:00
    (SHANGHAI, utc(2024, 6, 3, 19, 0), utc(2024, 6, 4, 0, 0), "03:00 -> 08:00 same day"),
    (SHANGHAI, utc(2024, 6, 3, 23, 59, 59), utc(2024, 6, 4, 0, 0), "07:59:59 -> 08:00"),
    (SHANGHAI, utc(2024, 6, 3, 16, 30), utc(2024, 6, 4, 0, 0), "00:30 (after midnight) -> 08:00"),
    # late evening: tomorrow's 08:00
    (SHANGHAI, utc(2024, 6, 3, 14, 0), utc(2024, 6, 4, 0, 0), "22:00 -> 08:00 tomorrow"),
    (SHANGHAI, utc(2024, 6, 3, 15, 59, 59), utc(2024, 6, 4, 0, 0), "23:59:59 -> 08:00 tomorrow"),
    # New York across DST changes: the offset of the *opening* day applies
    (NEW_YORK, utc(2024, 3, 10, 4, 0), utc(2024, 3, 10, 12, 0), "Sat 23:00 EST -> Sun 08:00 EDT"),
    (NEW_YORK, utc(2024, 3, 10, 6, 30), utc(2024, 3, 10, 12, 0), "01:30 EST -> 08:00 EDT"),
    (NEW_YORK, utc(2024, 11, 3, 3, 0), utc(2024, 11, 3, 13, 0), "Sat 23:00 EDT -> Sun 08:00 EST"),
    (NEW_YORK, utc(2024, 11, 3, 5, 30), utc(2024, 11, 3, 13, 0), "01:30 EDT (first) -> 08:00 EST"),
    (NEW_YORK, utc(2024, 11, 3, 6, 30), utc(2024, 11, 3, 13, 0), "01:30 EST (second) -> 08:00 EST"),
    # London, including the year boundary
    (LONDON, utc(2024, 7, 1, 22, 0), utc(2024, 7, 2, 7, 0), "23:00 BST -> 08:00 BST"),
    (LONDON, utc(2024, 12, 31, 23, 0), utc(2025, 1, 1, 8, 0), "New Year's Eve 23:00 -> 1 Jan 08:00"),
    # Kolkata's half-hour offset
    (KOLKATA, utc(2024, 6, 3, 17, 30), utc(2024, 6, 4, 2, 30), "23:00 IST -> 08:00 IST"),
    (KOLKATA, utc(2024, 6, 3, 21, 0), utc(2024, 6, 4, 2, 30), "02:30 IST -> 08:00 IST"),
]


@pytest.mark.parametrize(("tz", "at", "expected", "what"), NEXT_WINDOW_CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in NEXT_WINDOW_CASES])
def test_next_contact_window_in_quiet_hours(tz, at, expected, what):
    result = next_contact_window(at, tz)
    assert result == expected
    assert_utc(result)


@pytest.mark.parametrize("tz", [SHANGHAI, NEW_YORK, LONDON, KOLKATA])
@pytest.mark.parametrize("start", [utc(2024, 3, 9), utc(2024, 3, 30), utc(2024, 6, 3),
                                   utc(2024, 10, 26), utc(2024, 11, 2)])
def test_next_contact_window_sweep(tz, start):
    """Every 7 minutes over two days (DST weekends included): the result is the
    instant itself when allowed, else the first local 08:00 after it."""
    step = timedelta(minutes=7)
    at = start
    while at < start + timedelta(days=2):
        local = wall(at, tz)
        allowed = time(8) <= local.time() < time(22)
        assert in_quiet_hours(at, tz) is not allowed, local
        result = next_contact_window(at, tz)
        assert_utc(result)
        if allowed:
            assert result == at
        else:
            opened = wall(result, tz)
            assert opened.time() == time(8, 0), (local, opened)
            expected_day = local.date() if local.time() < time(8) else local.date() + timedelta(days=1)
            assert opened.date() == expected_day, (local, opened)
            assert at < result <= at + timedelta(hours=11)
            assert not in_quiet_hours(result, tz)
        at += step


def test_next_contact_window_honours_custom_quiet_end():
    rules_9am = ContactRules(quiet_start=time(21, 0), quiet_end=time(9, 0))
    assert next_contact_window(utc(2024, 6, 3, 13, 30), SHANGHAI, rules_9am) == utc(2024, 6, 4, 1, 0)  # 21:30
    assert next_contact_window(utc(2024, 6, 3, 23, 30), SHANGHAI, rules_9am) == utc(2024, 6, 4, 1, 0)  # 07:30


NEXT_DAY_CASES = [
    (SHANGHAI, utc(2024, 6, 3, 2, 0), utc(2024, 6, 4, 0, 0), "10:00 -> tomorrow 08:00"),
    (SHANGHAI, utc(2024, 6, 3, 15, 30), utc(2024, 6, 4, 0, 0), "23:30 -> tomorrow 08:00"),
    (SHANGHAI, utc(2024, 6, 3, 17, 0), utc(2024, 6, 5, 0, 0), "01:00 -> the day after, not today's 08:00"),
    (NEW_YORK, utc(2024, 3, 9, 20, 0), utc(2024, 3, 10, 12, 0), "Sat 15:00 EST -> Sun 08:00 EDT"),
    (NEW_YORK, utc(2024, 11, 2, 19, 0), utc(2024, 11, 3, 13, 0), "Sat 15:00 EDT -> Sun 08:00 EST"),
    (LONDON, utc(2024, 3, 30, 12, 0), utc(2024, 3, 31, 7, 0), "Sat 12:00 GMT -> Sun 08:00 BST"),
    (KOLKATA, utc(2024, 6, 3, 6, 30), utc(2024, 6, 4, 2, 30), "12:00 IST -> tomorrow 08:00 IST"),
]


@pytest.mark.parametrize(("tz", "at", "expected", "what"), NEXT_DAY_CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in NEXT_DAY_CASES])
def test_next_local_day_opening(tz, at, expected, what):
    result = next_local_day_opening(at, tz)
    assert result == expected
    assert_utc(result)


# --------------------------------------------------------------------------
# Contact caps
# --------------------------------------------------------------------------


def test_cap_allows_up_to_two_connected_calls_and_blocks_the_fourth():
    assert cap_reason(0, 0) is None
    assert cap_reason(2, 0) is None
    reason = cap_reason(3, 0)
    assert reason is not None and "connected" in reason and "cap 3" in reason
    assert cap_reason(4, 0) is not None  # over the cap stays over the cap


def test_cap_allows_five_dials_and_blocks_the_seventh():
    assert cap_reason(0, 5) is None
    reason = cap_reason(0, 6)
    assert reason is not None and "dialled" in reason and "cap 6" in reason
    assert cap_reason(0, 7) is not None


def test_cap_reports_the_debtor_cap_first_when_both_are_reached():
    reason = cap_reason(3, 6)
    assert reason is not None and "connected" in reason


def test_cap_follows_a_custom_rule_set():
    strict = ContactRules(max_connected_calls_per_debtor_per_day=1, max_dial_attempts_per_number_per_day=2)
    assert cap_reason(0, 1, strict) is None
    assert "cap 1" in cap_reason(1, 0, strict)
    assert "cap 2" in cap_reason(0, 2, strict)
    loose = ContactRules(max_connected_calls_per_debtor_per_day=5, max_dial_attempts_per_number_per_day=10)
    assert cap_reason(3, 6, loose) is None
    assert cap_reason(5, 0, loose) is not None
    assert cap_reason(0, 10, loose) is not None


# --------------------------------------------------------------------------
# Ladder timing
# --------------------------------------------------------------------------

OPENED = utc(2024, 6, 3, 2, 0)  # Monday 10:00 Shanghai


def test_ladder_is_voice_human_letter_on_days_0_3_7():
    assert [(s.name, s.day, s.channel) for s in LADDER] == [
        ("voice_robot", 0, "voice"), ("human_call", 3, "human"), ("legal_notice", 7, "letter"),
    ]


def test_step_due_on_schedule_is_days_0_3_7_from_the_default():
    assert step_due(0, opened_at=OPENED, tz=SHANGHAI) == OPENED
    voice_ran = OPENED
    human = step_due(1, opened_at=OPENED, tz=SHANGHAI, previous_step_at=voice_ran)
    assert human == utc(2024, 6, 6, 2, 0)  # Thursday 10:00
    letter = step_due(2, opened_at=OPENED, tz=SHANGHAI, previous_step_at=human)
    assert letter == utc(2024, 6, 10, 2, 0)  # next Monday 10:00


def test_a_delayed_step_pushes_the_next_one_by_its_spacing():
    # The human call (due day 3) actually ran on day 5 (Sat 8 June 15:00 local).
    human_ran = utc(2024, 6, 8, 7, 0)
    letter = step_due(2, opened_at=OPENED, tz=SHANGHAI, previous_step_at=human_ran)
    # Not day 7 (10 June) but 4 local days after the call: Wed 12 June 00:00 local.
    assert letter == utc(2024, 6, 11, 16, 0)


def test_a_voice_robot_delayed_by_quiet_hours_keeps_the_human_call_off_its_day():
    opened = utc(2024, 6, 3, 15, 30)  # Mon 23:30 Shanghai: voice waits for Tue 08:00
    voice_ran = utc(2024, 6, 4, 0, 0)  # Tue 08:00
    human = step_due(1, opened_at=opened, tz=SHANGHAI, previous_step_at=voice_ran)
    assert human == utc(2024, 6, 6, 16, 0)  # Fri 7 June 00:00 local (Tue + 3), not Thu 23:30


@pytest.mark.parametrize("tz", [SHANGHAI, NEW_YORK, LONDON, KOLKATA])
def test_two_steps_never_share_a_local_day(tz):
    opened = utc(2024, 3, 6, 12, 0)
    for index in (1, 2):
        gap = LADDER[index].day - LADDER[index - 1].day
        ran = opened
        while ran < opened + timedelta(days=12):
            due = step_due(index, opened_at=opened, tz=tz, previous_step_at=ran)
            # Quiet hours may only push it later, never back onto the same day.
            contact = next_contact_window(due, tz)
            days_apart = (wall(contact, tz).date() - wall(ran, tz).date()).days
            assert days_apart >= gap, (index, wall(ran, tz), wall(contact, tz))
            ran += timedelta(hours=5)


def test_step_due_defers_to_the_day_after_a_promised_date():
    promised = date(2024, 6, 14)
    for index in range(len(LADDER)):
        due = step_due(index, opened_at=OPENED, tz=SHANGHAI, previous_step_at=OPENED if index else None,
                       promised_date=promised)
        assert due == utc(2024, 6, 14, 16, 0)  # Sat 15 June 00:00 Shanghai
    # Promise in another zone: the day after, at that debtor's local midnight.
    ny = step_due(1, opened_at=utc(2024, 3, 1, 15, 0), tz=NEW_YORK, promised_date=date(2024, 3, 9))
    assert ny == utc(2024, 3, 10, 5, 0)  # Sun 10 March 00:00 EST


def test_a_promise_before_the_due_day_does_not_bring_a_step_forward():
    due = step_due(2, opened_at=OPENED, tz=SHANGHAI, previous_step_at=utc(2024, 6, 6, 2, 0),
                   promised_date=date(2024, 6, 4))
    assert due == utc(2024, 6, 10, 2, 0)


def test_step_due_is_spaced_after_the_last_response():
    # Partial payment on Sun 9 June 14:00 local, one day before the letter was due.
    response = utc(2024, 6, 9, 6, 0)
    letter = step_due(2, opened_at=OPENED, tz=SHANGHAI, previous_step_at=utc(2024, 6, 6, 2, 0),
                      last_response_at=response)
    assert letter == utc(2024, 6, 12, 16, 0)  # Thu 13 June 00:00 local (9 + 4)
    human = step_due(1, opened_at=OPENED, tz=SHANGHAI, previous_step_at=OPENED,
                     last_response_at=utc(2024, 6, 4, 6, 0))  # Tue 14:00 local
    assert human == utc(2024, 6, 6, 16, 0)  # Fri 7 June 00:00 local (4 + 3)


def test_an_old_response_does_not_delay_a_step():
    letter = step_due(2, opened_at=OPENED, tz=SHANGHAI, previous_step_at=utc(2024, 6, 6, 2, 0),
                      last_response_at=utc(2024, 6, 3, 4, 0))
    assert letter == utc(2024, 6, 10, 2, 0)


def test_ladder_days_are_local_calendar_days_across_dst():
    # Opened Tue 5 March 2024 21:30 EST in New York; DST starts Sun 10 March.
    opened = utc(2024, 3, 6, 2, 30)
    human_ran = utc(2024, 3, 9, 2, 30)  # Fri 8 March 21:30 EST, on schedule (day 3)
    letter = step_due(2, opened_at=opened, tz=NEW_YORK, previous_step_at=human_ran)
    contact = next_contact_window(letter, NEW_YORK)
    assert wall(contact, NEW_YORK).date() == date(2024, 3, 12)  # day 7
    assert letter == utc(2024, 3, 13, 1, 30)  # Tue 12 March 21:30 EDT


# --------------------------------------------------------------------------
# Limitation period (3 years, restarted by an interruption)
# --------------------------------------------------------------------------


def test_limitation_expiry_is_three_years_after_the_start():
    assert limitation_expiry(date(2021, 5, 10)) == date(2024, 5, 10)
    assert limitation_expiry(date(2021, 12, 31)) == date(2024, 12, 31)
    assert limitation_expiry(date(2022, 1, 1), years=2) == date(2024, 1, 1)


def test_limitation_expiry_from_29_february():
    assert limitation_expiry(date(2024, 2, 29)) == date(2027, 2, 28)
    assert limitation_expiry(date(2020, 2, 29)) == date(2023, 2, 28)
    assert limitation_expiry(date(2020, 2, 29), years=4) == date(2024, 2, 29)  # into a leap year


def test_restart_limitation_extends_from_the_interruption():
    current = limitation_expiry(date(2021, 5, 10))  # 2024-05-10
    assert restart_limitation(current, date(2023, 8, 1)) == date(2026, 8, 1)


def test_restart_limitation_never_shortens():
    current = date(2026, 8, 1)
    assert restart_limitation(current, date(2021, 1, 1)) == current  # an older interruption
    assert restart_limitation(current, date(2023, 8, 1)) == current  # the same one, replayed


def test_is_time_barred_only_after_the_expiry_day():
    expiry = date(2024, 5, 10)
    assert not is_time_barred(expiry, date(2024, 5, 9))
    assert not is_time_barred(expiry, date(2024, 5, 10))  # the last enforceable day
    assert is_time_barred(expiry, date(2024, 5, 11))


# --------------------------------------------------------------------------
# Debt verification
# --------------------------------------------------------------------------

TODAY = date(2024, 6, 3)


def verify(**overrides):
    kw = dict(amount_due="1200.50", currency="CNY", contract_id="K-2024-0001",
              due_date=date(2024, 4, 19), today=TODAY)
    kw.update(overrides)
    return verify_debt(**kw)


def test_a_valid_debt_passes():
    assert verify() is None
    assert verify(amount_due="0.01") is None
    assert verify(amount_due="1200.500") is None  # trailing zeros are still whole cents
    assert verify(currency="USD", due_date=TODAY) is None  # due today is not in the future


@pytest.mark.parametrize("amount", ["0", "0.00", "-0.01", "-100", "abc", "", "NaN", "Infinity", "-Infinity"])
def test_verify_rejects_a_non_positive_or_non_numeric_amount(amount):
    reason = verify(amount_due=amount)
    assert reason is not None and "positive" in reason


@pytest.mark.parametrize("amount", ["0.001", "10.005", "1200.501"])
def test_verify_rejects_fractions_of_a_cent(amount):
    reason = verify(amount_due=amount)
    assert reason is not None and "fractions of a cent" in reason


@pytest.mark.parametrize("currency", ["XYZ", "cny", "", "RMB"])
def test_verify_rejects_an_unknown_currency(currency):
    reason = verify(currency=currency)
    assert reason is not None and "currency" in reason


@pytest.mark.parametrize("contract", ["", "   ", "\t\n"])
def test_verify_rejects_a_blank_contract(contract):
    assert verify(contract_id=contract) == "missing contract reference"


def test_verify_rejects_a_future_due_date():
    reason = verify(due_date=TODAY + timedelta(days=1))
    assert reason is not None and "future" in reason and "2024-06-04" in reason


# --------------------------------------------------------------------------
# Installment plans (grade I)
# --------------------------------------------------------------------------


def test_plan_is_30_percent_of_income_when_that_fits_in_12_periods():
    assert installment_plan(Decimal("1000.00"), Decimal("500.00")) == (Decimal("150.00"), 7)
    assert installment_schedule(Decimal("1000.00"), Decimal("150.00"), 7) == [Decimal("150.00")] * 6 + [
        Decimal("100.00")]


def test_plan_falls_back_to_a_twelfth_rounded_up_when_30_percent_is_too_small():
    # 30 % of 200 = 60 would need 17 periods: 1000 / 12 = 83.333… -> 83.34.
    assert installment_plan(Decimal("1000.00"), Decimal("200.00")) == (Decimal("83.34"), 12)
    schedule = installment_schedule(Decimal("1000.00"), Decimal("83.34"), 12)
    assert schedule == [Decimal("83.34")] * 11 + [Decimal("83.26")]
    assert sum(schedule) == Decimal("1000.00")


@pytest.mark.parametrize("income", [None, Decimal("0")])
def test_plan_with_unknown_income_is_a_twelfth_rounded_up(income):
    assert installment_plan(Decimal("1000.00"), income) == (Decimal("83.34"), 12)
    assert installment_plan(Decimal("1200.00"), income) == (Decimal("100.00"), 12)


def test_plan_boundary_at_exactly_twelve_periods():
    # Outstanding 1200: a twelfth is exactly 100.00.
    assert installment_plan(Decimal("1200.00"), Decimal("333.40")) == (Decimal("100.02"), 12)  # share fits
    assert installment_plan(Decimal("1200.00"), Decimal("333.30")) == (Decimal("100.00"), 12)  # 99.99 does not
    assert installment_schedule(Decimal("1200.00"), Decimal("100.02"), 12)[-1] == Decimal("99.78")


def test_plan_never_exceeds_the_outstanding_amount():
    assert installment_plan(Decimal("1200.00"), Decimal("4000.00")) == (Decimal("1200.00"), 1)
    assert installment_plan(Decimal("1200.00"), Decimal("100000.00")) == (Decimal("1200.00"), 1)


@pytest.mark.parametrize("outstanding", [Decimal("0"), Decimal("-1.00")])
def test_plan_needs_something_outstanding(outstanding):
    with pytest.raises(ValueError):
        installment_plan(outstanding, Decimal("500.00"))


OUTSTANDINGS = ["0.01", "0.05", "0.11", "1.00", "11.99", "12.00", "12.01", "99.99", "100.00", "1000.00",
                "1200.50", "12345.67", "999999.99"]
INCOMES = [None, "0", "1.00", "100.00", "333.30", "333.40", "1000.00", "5000.00", "1000000.00"]


@pytest.mark.parametrize("outstanding", [Decimal(o) for o in OUTSTANDINGS])
def test_plan_and_schedule_invariants(outstanding):
    """For every income: at most 12 periods, whole cents, the rule's installment,
    and a schedule that sums exactly to the outstanding amount."""
    cents = int(outstanding * 100)
    twelfth = Decimal(-(-cents // 12)) / 100  # ceil(outstanding / 12) to the cent, integer arithmetic
    for raw in INCOMES:
        income = Decimal(raw) if raw is not None else None
        installment, periods = installment_plan(outstanding, income)
        share = income * Decimal("0.30") if income else Decimal(0)  # exact for these incomes
        if share > 0 and share * 12 >= outstanding:
            assert installment == min(share, outstanding), raw
        else:
            assert installment == twelfth, raw
        assert isinstance(installment, Decimal)
        assert installment == installment.quantize(Decimal("0.01")) and installment > 0
        assert 1 <= periods <= 12
        schedule = installment_schedule(outstanding, installment, periods)
        assert len(schedule) == periods
        assert all(isinstance(a, Decimal) for a in schedule)
        assert sum(schedule, Decimal(0)) == outstanding
        assert schedule[:-1] == [installment] * (periods - 1)
        assert Decimal("0") < schedule[-1] <= installment


def test_installment_schedule_single_period_and_remainder():
    assert installment_schedule(Decimal("100.00"), Decimal("100.00"), 1) == [Decimal("100.00")]
    assert installment_schedule(Decimal("100.00"), Decimal("30.00"), 4) == [
        Decimal("30.00"), Decimal("30.00"), Decimal("30.00"), Decimal("10.00")]


# --------------------------------------------------------------------------
# Grading, routing, retention
# --------------------------------------------------------------------------


def test_initial_grade():
    assert initial_grade("I", asset_flight_risk=True) == "I"  # upstream's grade wins
    assert initial_grade("III", asset_flight_risk=False) == "III"
    assert initial_grade(None, asset_flight_risk=False) == "II"
    assert initial_grade(None, asset_flight_risk=True) == "III"
    assert initial_grade("IV", asset_flight_risk=False) == "II"  # not a grade: ignored


@pytest.mark.parametrize(("grade", "answered", "promised", "paid", "unanswered", "expected"), [
    ("II", True, True, False, 0, "I"),     # promise -> cooperative
    ("III", False, False, True, 0, "I"),   # payment -> cooperative
    ("III", True, False, False, 0, "II"),  # answers again -> standard
    ("II", True, False, False, 0, "II"),
    ("I", True, False, False, 0, "I"),     # answering is cooperative (SPEC §2.2)
    ("II", False, False, False, 1, "II"),  # one missed contact is not lost contact
    ("I", False, False, False, 1, "I"),
    ("II", False, False, False, 2, "III"),  # two in a row -> lost contact
    ("I", False, False, False, 3, "III"),
    ("III", False, False, False, 1, "III"),
])
def test_regrade(grade, answered, promised, paid, unanswered, expected):
    assert regrade(grade, answered=answered, promised=promised, paid=paid,
                   unanswered_in_a_row=unanswered) == expected


def test_route_team_sends_debtors_aged_60_plus_to_their_dialect_team():
    assert route_team(59, "Cantonese", "team-7") == "team-7"
    assert route_team(59, None, None) == "general"
    assert route_team(60, "Cantonese", "team-7") == "dialect-cantonese"
    assert route_team(85, " Hokkien ", None) == "dialect-hokkien"
    assert route_team(60, None, "team-7") == "dialect-mandarin"
    assert route_team(60, "", "team-7") == "dialect-mandarin"


def test_route_team_follows_a_custom_age():
    older = ContactRules(dialect_team_min_age=65)
    assert route_team(64, "wu", "team-7", older) == "team-7"
    assert route_team(65, "wu", "team-7", older) == "dialect-wu"


def test_route_team_blank_dialect_falls_back_to_mandarin():
    assert route_team(70, "   ", "team-7") == "dialect-mandarin"


def test_retain_until_is_at_least_730_days():
    at = utc(2024, 2, 29, 10, 0)
    assert retain_until(at) == at + timedelta(days=730)
    assert retain_until(at, ContactRules(recording_retention_days=30)) == at + timedelta(days=730)
    assert retain_until(at, ContactRules(recording_retention_days=0)) == at + timedelta(days=730)
    assert retain_until(at, ContactRules(recording_retention_days=1095)) == at + timedelta(days=1095)
    assert_utc(retain_until(at))


# --------------------------------------------------------------------------
# Compliance screen
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind"), [
    ("Pay today or else.", "threat"),
    ("We will find you.", "threat"),
    ("You will regret ignoring this.", "threat"),
    ("We will call your employer tomorrow.", "third_party_contact"),
    ("We are going to tell your family.", "third_party_contact"),
    ("I am contacting your boss next.", "third_party_contact"),
    ("We will inform your parents.", "third_party_contact"),
    ("You are a deadbeat.", "insult"),
    ("Don't be STUPID.", "insult"),
    ("You will be arrested.", "false_legal_claim"),
    ("The police will come to your house.", "false_legal_claim"),
    ("This goes on your criminal record.", "false_legal_claim"),
    ("再不还钱，否则后果自负。", "threat"),
    ("我们会联系你的家人。", "third_party_contact"),
    ("明天通知单位。", "third_party_contact"),
    ("你就是个老赖。", "insult"),
    ("你这个骗子！", "insult"),
    ("不还钱你会坐牢。", "false_legal_claim"),
    ("你会被拘留。", "false_legal_claim"),
    ("要追究你的刑事责任。", "false_legal_claim"),
])
def test_screen_flags_prohibited_content(text, kind):
    assert kind in screen_text(text)


def test_screen_reports_each_kind_once():
    text = "You idiot, pay or else, or we will call your boss and you will go to jail. 老赖，否则后果自负！"
    found = screen_text(text)
    assert sorted(found) == ["false_legal_claim", "insult", "third_party_contact", "threat"]
    assert len(found) == len(set(found))


@pytest.mark.parametrize("text", [
    "Hello, can we agree a payment date?",
    "Please contact us within 15 days.",
    "Stupidity is not a word we use.",  # no word boundary after 'stupid'
    "The goods came with a warranty.",
    "您好，请问您方便什么时候还款？我们可以商量分期计划。",
])
def test_screen_passes_clean_text(text):
    assert screen_text(text) == []


def test_screen_flags_third_party_contact_in_the_polite_form():
    assert "third_party_contact" in screen_text("我们会联系您的家人。")


# --------------------------------------------------------------------------
# Protections: suspension bounds, calendar months, force-majeure suspension
# --------------------------------------------------------------------------


def test_suspension_refusal_bounds():
    assert rules.suspension_refusal(1) is None and rules.suspension_refusal(24) is None
    assert "25 months refused" in rules.suspension_refusal(25)
    assert "0 months refused" in rules.suspension_refusal(0)
    assert "whole number" in rules.suspension_refusal(True)
    assert "whole number" in rules.suspension_refusal("3")


def test_add_months_clamps_to_the_end_of_the_month():
    assert rules.add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert rules.add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert rules.add_months(date(2026, 11, 25), 24) == date(2028, 11, 25)
    assert rules.add_months(date(2026, 3, 31), -6) == date(2025, 9, 30)


def test_force_majeure_suspends_the_limitation_only_inside_its_last_six_months():
    expiry = date(2027, 6, 30)
    # wholly inside the last 6 months: the expiry moves by the whole pause
    assert rules.suspend_limitation(expiry, date(2027, 2, 1), date(2027, 3, 3)) == date(2027, 7, 30)
    # straddling the window (it opens 2026-12-30): only the 10 days inside count
    assert rules.suspend_limitation(expiry, date(2026, 12, 20), date(2027, 1, 9)) == date(2027, 7, 10)
    # before the window: no effect
    assert rules.suspend_limitation(expiry, date(2026, 6, 1), date(2026, 7, 1)) == expiry
