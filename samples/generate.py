"""Write the sample event stream (SPEC §5) to stdout, deterministically.

    python samples/generate.py > samples/events.jsonl

36 ``account.defaulted`` events for 30 pseudonymous debtors (DEB-503 and
DEB-520 hold three accounts, DEB-510 and DEB-516 two, to exercise the
per-debtor call cap), then follow-ups: payments, a recall, an accepted
installment plan and every protection.  Profiles also drive the legal branch
(DEB-510 objects to a payment order; DEB-527's preservation ruling is late).  ``debtor.simulation`` drives the
simulated adapters (activities/adapters.py); no profile = never answers.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

CURRENCY = {"HK": "HKD", "SG": "SGD", "US-NY": "USD", "GB-LND": "GBP"}  # CN-* -> CNY

# debtor_id: (timezone, region, age, dialect, phone, monthly income, address, simulation)
DEBTORS = {
    "DEB-501": ("Asia/Shanghai", "CN-GD", 34, None, "+86 138 0013 8501", "6500.00", "Rm 1203, 88 Tianhe Rd, Guangzhou", None),
    "DEB-502": ("Asia/Shanghai", "CN-GD", 67, "cantonese", "+86 138 0013 8502", None, "12 Xiguan Ln, Liwan, Guangzhou", {"answers": False}),
    "DEB-503": ("Asia/Shanghai", "CN-SH", 41, None, "+86 138 0013 8503", "12000.00", "Apt 5B, 200 Huaihai Rd, Shanghai", {"answers": True}),
    "DEB-504": ("Asia/Shanghai", "CN-SC", 72, "sichuanese", "+86 138 0013 8504", "2100.00", None, {"answers": True, "promises_in_days": 5}),
    "DEB-505": ("Asia/Urumqi", "CN-XJ", 63, "uyghur", "+86 138 0013 8505", None, "7 Jiefang Rd, Urumqi", {"pays_after": "human_call"}),
    "DEB-506": ("Asia/Shanghai", "CN-BJ", 22, None, "+86 138 0013 8506", "3000.00", None, {"pays_after": "voice"}),
    "DEB-507": ("Asia/Hong_Kong", "HK", 58, None, "+852 5550 0107", "18000.00", "Flat 9C, 33 Nathan Rd, Kowloon", {"answers": True}),
    "DEB-508": ("Asia/Singapore", "SG", 45, None, "+65 9000 0108", "4200.00", "Blk 21 Tampines St 11, #04-12", {"pays_after": "letter", "pays_amount": "100.00"}),
    "DEB-509": ("America/New_York", "US-NY", 39, None, "+1 212 555 0109", None, "410 W 57th St, New York", {"answers": True, "agent_misconduct": True}),
    "DEB-510": ("Europe/London", "GB-LND", 52, None, "+44 20 7946 0110", "1900.00", "Flat 2, 14 Mare St, London", {"answers": True, "objects_to_payment_order": True}),
    "DEB-511": ("Asia/Shanghai", "CN-SC", 29, None, "+86 138 0013 8511", None, None, {"skip_trace_phone": "+86 139 0028 6511"}),
    "DEB-512": ("Asia/Hong_Kong", "HK", 82, "cantonese", "+852 5550 0112", None, "Rm 1502, 8 Shek Kip Mei St, Sham Shui Po", {"answers": ["human_call"]}),
    "DEB-513": ("Asia/Urumqi", "CN-XJ", 31, None, "+86 138 0013 8513", "2500.00", None, {"answers": False}),
    "DEB-514": ("Asia/Shanghai", "CN-SH", 76, "shanghainese", "+86 138 0013 8514", "1500.00", "No. 6, Lane 300 Fuxing Rd, Shanghai", {"answers": True, "promises_in_days": 5}),
    "DEB-515": ("Asia/Shanghai", "CN-GD", 27, None, "+86 138 0013 8515", None, None, None),
    "DEB-516": ("Asia/Shanghai", "CN-GD", 48, None, "+86 138 0013 8516", "9000.00", "18 Shennan Blvd, Futian, Shenzhen", {"pays_after": "human_call"}),
    "DEB-517": ("Asia/Shanghai", "CN-SC", 61, "sichuanese", "+86 138 0013 8517", None, "45 Chunxi Rd, Chengdu", {"answers": True, "agent_misconduct": True}),
    "DEB-518": ("Asia/Singapore", "SG", 33, None, "+65 9000 0118", None, None, {"answers": False}),
    "DEB-519": ("Asia/Shanghai", "CN-BJ", 55, None, "+86 138 0013 8519", "7000.00", "3 Jianguomen Outer St, Beijing", {"answers": True}),
    "DEB-520": ("Asia/Shanghai", "CN-GD", 36, None, "+86 138 0013 8520", "5200.00", "Rm 808, 1 Zhujiang New Town, Guangzhou", {"answers": True}),
    "DEB-521": ("Asia/Urumqi", "CN-XJ", 69, "uyghur", "+86 138 0013 8521", None, None, {"skip_trace_phone": "+86 139 0099 6521"}),
    "DEB-522": ("America/New_York", "US-NY", 44, None, "+1 212 555 0122", "2600.00", "77 Court St, Brooklyn", {"pays_after": "voice"}),
    "DEB-523": ("Asia/Shanghai", "CN-SH", 50, None, "+86 138 0013 8523", None, None, {"answers": True}),
    "DEB-524": ("Europe/London", "GB-LND", 38, None, "+44 20 7946 0124", None, None, {"answers": True}),
    "DEB-525": ("Asia/Shanghai", "CN-SC", 64, "sichuanese", "+86 138 0013 8525", None, "9 Wenshu Ln, Chengdu", {"answers": True}),
    "DEB-526": ("Asia/Hong_Kong", "HK", 47, None, "+852 5550 0126", None, None, None),
    "DEB-527": ("Asia/Shanghai", "CN-GD", 71, "cantonese", "+86 138 0013 8527", "1800.00", "22 Enning Rd, Guangzhou", {"preservation_responds_in_hours": 30}),
    "DEB-528": ("Asia/Singapore", "SG", 26, None, "+65 9000 0128", "2200.00", None, {"answers": True, "promises_in_days": 5}),
    "DEB-529": ("Asia/Shanghai", "CN-BJ", 58, None, "+86 138 0013 8529", "8800.00", "16 Xizhimen South St, Beijing", {"pays_after": "human_call"}),
    "DEB-530": ("America/New_York", "US-NY", 24, None, "+1 212 555 0130", None, None, {"answers": False}),
}

# (debtor_id, amount_due, due_date, grade, asset_flight_risk, team_id[, currency override])
ACCOUNTS = [
    ("DEB-501", "8600.00", "2026-10-15", None, False, None),
    ("DEB-502", "3250.40", "2026-09-30", "II", False, None),
    ("DEB-503", "15000.00", "2026-10-01", "I", False, "team-a"),
    ("DEB-503", "4200.00", "2026-10-20", "I", False, "team-a"),
    ("DEB-503", "980.50", "2026-11-05", "I", False, "team-a"),
    ("DEB-504", "5600.00", "2026-09-12", "I", False, None),
    ("DEB-505", "2890.00", "2026-10-08", "II", False, None),
    ("DEB-506", "1200.50", "2026-11-10", None, False, None),
    ("DEB-507", "42000.00", "2026-08-25", "II", False, "team-b"),
    ("DEB-508", "3100.00", "2026-10-28", "II", False, None),
    ("DEB-509", "2750.00", "2026-09-18", "II", False, "team-b"),
    ("DEB-510", "1480.00", "2026-08-14", "II", False, None),
    ("DEB-510", "620.75", "2026-10-31", "II", False, None),
    ("DEB-511", "23800.00", "2026-08-01", "III", True, None),
    ("DEB-512", "7600.00", "2026-09-05", "II", False, None),
    ("DEB-513", "1999.99", "2026-10-12", None, False, "team-a"),
    ("DEB-514", "4400.00", "2026-11-02", "I", False, None),
    ("DEB-515", "66000.00", "2026-08-19", "III", True, None),
    ("DEB-516", "12500.00", "2026-09-22", "II", False, "team-a"),
    ("DEB-516", "3300.00", "2026-10-22", "II", False, "team-a"),
    ("DEB-517", "9100.00", "2026-09-09", "II", False, "team-b"),
    ("DEB-518", "860.00", "2026-10-03", None, False, None),
    ("DEB-519", "18250.00", "2026-08-30", "II", True, None),
    ("DEB-520", "7000.00", "2026-09-15", "II", False, "team-a"),
    ("DEB-520", "2500.00", "2026-10-10", "II", False, "team-a"),
    ("DEB-520", "1350.25", "2026-11-01", "II", False, "team-a"),
    ("DEB-521", "14800.00", "2026-08-11", "III", False, None),
    ("DEB-522", "540.00", "2026-11-03", None, False, None),
    ("DEB-523", "0.00", "2026-10-05", "II", False, None),  # invalid: zero amount
    ("DEB-524", "2300.00", "2026-09-27", "II", False, None, "XXX"),  # invalid: unknown currency
    ("DEB-525", "6200.00", "2021-03-15", "II", False, None),  # time-barred
    ("DEB-526", "11000.00", "2021-07-01", None, False, "team-b"),  # time-barred
    ("DEB-527", "3900.00", "2026-09-01", "II", False, "team-b"),
    ("DEB-528", "1750.00", "2026-10-18", "I", False, None),
    ("DEB-529", "27500.00", "2026-08-07", "II", True, "team-a"),
    ("DEB-530", "1320.00", "2026-10-25", None, False, None),
]

START = datetime(2026, 11, 24, 0, 15, tzinfo=timezone.utc)


def account_id(n: int) -> str:
    return f"ACC-{1000 + n}"


def default_event(n: int, row: tuple) -> dict:
    debtor_id, amount, due, grade, flight, team, *cur = row
    tz, region, age, dialect, phone, income, address, sim = DEBTORS[debtor_id]
    debtor = {"debtor_id": debtor_id, "phone": phone, "timezone": tz, "region": region, "age": age}
    for key, value in (("dialect", dialect), ("monthly_disposable_income", income), ("address", address), ("simulation", sim)):
        if value is not None:
            debtor[key] = value
    event = {
        "event_id": f"evt-{n:04d}", "type": "account.defaulted",
        "occurred_at": (START + timedelta(minutes=35 * (n - 1))).isoformat(),
        "account_id": account_id(n), "amount_due": amount,
        "currency": cur[0] if cur else CURRENCY.get(region, "CNY"),
        "due_date": due, "contract_id": f"K-{due[:4]}-{n:04d}", "debtor": debtor,
    }
    if grade:
        event["grade"] = grade
    if flight:
        event["asset_flight_risk"] = True
    if team:
        event["team_id"] = team
    return event


def main() -> None:
    events = [default_event(n, row) for n, row in enumerate(ACCOUNTS, start=1)]
    at = lambda hh, mm: datetime(2026, 11, 24, hh, mm, tzinfo=timezone.utc).isoformat()  # noqa: E731
    follow_ups = [
        {"type": "payment.received", "occurred_at": at(21, 5), "account_id": account_id(1),
         "payment_id": "PAY-90001", "amount": "3000.00"},  # partial: 3000.00 of 8600.00
        {"type": "payment.received", "occurred_at": at(21, 40), "account_id": account_id(22),
         "payment_id": "PAY-90002", "amount": "860.00"},  # full
        {"type": "case.recalled", "occurred_at": at(22, 10), "account_id": account_id(13)},
        {"type": "payment.received", "occurred_at": at(22, 45), "account_id": account_id(31),
         "payment_id": "PAY-90003", "amount": "500.00"},  # late payment on a time-barred debt
        # Protections (SPEC §4)
        {"type": "dispute.opened", "occurred_at": at(23, 0), "account_id": account_id(2),
         "reason": "debtor says the loan was repaid in cash"},  # paused until resolved
        {"type": "dispute.opened", "occurred_at": at(23, 5), "account_id": account_id(20),
         "reason": "identity theft"},
        {"type": "dispute.resolved", "occurred_at": at(23, 10), "account_id": account_id(20),
         "upheld": True},  # closes dispute_upheld
        {"type": "plan.accepted", "occurred_at": at(23, 12), "account_id": account_id(3),
         "periods": 6},  # grade I negotiation: 6 monthly installments
        {"type": "suspension.granted", "occurred_at": at(23, 15), "account_id": account_id(19),
         "months": 6, "reason": "hospitalised; honest-debtor protection"},
        {"type": "disaster.declared", "occurred_at": at(23, 20), "region": "CN-XJ", "days": 30},
        *[{"type": "complaint.filed", "occurred_at": at(23, 25 + i), "account_id": account_id(9),
           "team_id": "team-b", "text": f"complaint {i + 1}: called repeatedly"} for i in range(6)],
    ]
    for i, event in enumerate(follow_ups, start=len(events) + 1):
        events.append({"event_id": f"evt-{i:04d}", **event})
    for event in events:
        print(json.dumps(event, ensure_ascii=False))


if __name__ == "__main__":
    main()
