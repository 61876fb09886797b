"""Lengths of the text columns that events fill, in one place: the models
(db/models.py) and the event contract (intake/events.py) both use these, so
anything the intake accepts fits the database."""

ID = 64  # account_id, debtor_id, contract_id, team_id
EVENT_ID = 128
PAYMENT_ID = 128
PHONE = 32
TIMEZONE = 64
REGION = 32
DIALECT = 32
CURRENCY = 3
ACTOR = 128
ADDRESS = 500  # stored as text; bounded here so one line cannot carry megabytes
FREE_TEXT = 2000  # reasons, complaint texts
