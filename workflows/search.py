"""Search attributes of a case (SPEC §6, fixed names).

Values are pseudonymous by design: never put a name, phone or ID number in
a search attribute (they are stored unencrypted).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes

CASE_STAGE = SearchAttributeKey.for_keyword("CaseStage")
DEBTOR_GRADE = SearchAttributeKey.for_keyword("DebtorGrade")
REGION = SearchAttributeKey.for_keyword("Region")
PAUSED_BY = SearchAttributeKey.for_keyword_list("PausedBy")
OUTSTANDING_AMOUNT = SearchAttributeKey.for_float("OutstandingAmount")
DEBTOR_ID = SearchAttributeKey.for_keyword("DebtorId")
RECOVERY_SCORE = SearchAttributeKey.for_float("RecoveryScore")  # only on scored cases (COLLECTIONS_SCORE_MODEL)
STRATEGY = SearchAttributeKey.for_keyword("Strategy")  # name@version of the case's strategy (SPEC §9)

KEYS = {k.name: k for k in (CASE_STAGE, DEBTOR_GRADE, REGION, PAUSED_BY, OUTSTANDING_AMOUNT, DEBTOR_ID, STRATEGY,
                            RECOVERY_SCORE)}

# For `temporal server start-dev --search-attribute` and the operator service.
DEFINITIONS = {
    "CaseStage": "Keyword", "DebtorGrade": "Keyword", "Region": "Keyword",
    "PausedBy": "KeywordList", "OutstandingAmount": "Double", "DebtorId": "Keyword",
    "Strategy": "Keyword", "RecoveryScore": "Double",
}


def _typed(name: str, value: Any) -> Any:
    if name == "OutstandingAmount":
        # The only float in the product: visibility has no decimal type, and
        # the amount here only sorts and filters; the case keeps the Decimal.
        return float(Decimal(value))
    return value


def search_attribute_updates(values: dict[str, Any], published: dict[str, Any]) -> list[SearchAttributeUpdate]:
    """Updates for the values that changed since the last publication."""
    return [KEYS[n].value_set(_typed(n, v)) for n, v in values.items() if published.get(n) != v]


def initial_search_attributes(values: dict[str, Any]) -> TypedSearchAttributes:
    return TypedSearchAttributes([SearchAttributePair(KEYS[n], _typed(n, v)) for n, v in values.items()])
