"""The ledger of the case workflow's ``workflow.patched`` ids.

A case lives for months (years, in the legal branch), and Temporal replays
its history against the code that runs now.  Every change to the commands
the workflow issues (activities, timers, search-attribute upserts, markers,
their order) is guarded by a patch id: ``workflow.patched(ID)`` is False
while a history recorded by older code replays (the old path), True for new
work, and it records a marker, so later replays take the new path too.

Retiring a patch takes two releases:

1. once no open run has history from before the patch's release, replace
   ``workflow.patched(ID)`` by ``workflow.deprecate_patch(ID)``, delete the
   old path, and delete the recorded histories of those releases from
   ``tests/histories/`` (they can no longer replay);
2. once no open run has history from a release that still called
   ``patched(ID)``, delete the ``deprecate_patch`` call.

"No open run has history from before release R": every case started before
R was deployed has closed or continued as new since (a case continues as new
when its history passes ``CaseInput.history_limit`` events). Ask the
visibility store:
``WorkflowType="DelinquentAccountWorkflow" AND ExecutionStatus="Running" AND StartTime < "<R's deployment>"``
(a run started by continue-as-new has its own StartTime).

The releases carry no tags; they are named by their commit.  ``v1`` is
e0a2193 and before (recorded as ``tests/histories/v1-*.json``; the release
``tests/test_upgrade.py`` runs), ``v2`` is 4666a17 and after
(``tests/histories/v2-*.json``, recorded at 7987ddb; ``v2-events-*`` with
the same workflow code at f301b44), ``v3`` brings event effects and the
legal notice's retries and post (issue 10; ``tests/histories/v3-*.json``),
``v4`` strategies, the desk, the contact start limit and the score (issues
11, 13, 14), ``v5`` the opening in one activity (issue 12), ``v6`` the epoch
``born-v6`` (see EPOCHS below), ``v7`` local activities for the case's
opening and records (``born-v7``).

An id is never reused for another change, even after it is retired: a
running history may still hold its marker.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow


@dataclass(frozen=True)
class Patch:
    id: str
    release: str  # the commit that brought it
    guards: str  # what the new path does; the old path is what histories before it did
    deprecate_when: str


LEGAL_BRANCH = "legal-branch-v1"
INSTALLMENT_PLANS = "installment-plans-v1"
EVENTS_BEAT_TIMERS = "events-beat-timers-v1"
EARLY_REPLAN = "update-replans-before-awaiting-v1"
LEGACY_LEGAL_WAIT = "legacy-legal-wait-v1"  # a family: one id per wake-up, see legacy_legal_wait()
EVENT_EFFECTS = "event-effects-v1"
LETTER_DELIVERY = "letter-delivery-v1"
ADDRESS_ON_FILE = "address-on-file-v1"
STRATEGY = "strategy-v1"
DESK = "work-desk-v1"
CONTACT_START_LIMIT = "contact-start-limit-v1"
RECOVERY_SCORE = "recovery-score-v1"
OPEN_IN_ONE = "open-in-one-v1"
LOCAL_DB_STEPS = "local-db-steps-v1"


def legacy_legal_wait(wake: int) -> str:
    """The id of the ``wake``-th wake-up (1, 2, ...) of a v1 case waiting in
    ``legal_pending``.  One id per wake-up: the wake-ups already in a history
    replay as they were (False, remembered), the first one under this code
    continues the case as new, and the new run takes the legal branch."""
    return f"{LEGACY_LEGAL_WAIT}-{wake}"


_NO_V1_RUN = ("once no run started before 4666a17 (a v1 case) is open; with it go tests/histories/v1-*.json "
              "and tests/test_upgrade.py")
_NO_PRE_REVIEW_RUN = "once no run started before 7987ddb is open"
_NO_V2_RUN = "once no run started before v3 (issue 10) is open; with it go tests/histories/v1-*.json and v2-*.json"

LEDGER: tuple[Patch, ...] = (
    Patch(LEGAL_BRANCH, "4666a17 (v2: installment plans and the legal branch)",
          "after the legal notice's 15-day response window the case takes a legal track "
          "(workflows/legal.py); v1 waited in legal_pending until the limitation period expired",
          _NO_V1_RUN),
    Patch(INSTALLMENT_PLANS, "4666a17 (v2)",
          "a plan.accepted event starts an installment plan (or records why it is refused); "
          "v1 noted the event and did nothing",
          _NO_V1_RUN),
    Patch(EVENTS_BEAT_TIMERS, "7987ddb (v2 review fixes)",
          "when a timer fires in the same workflow task as an event or Update, the case re-plans "
          "first; before, the timer won and the step (a call, a filing) went ahead",
          _NO_PRE_REVIEW_RUN),
    Patch(EARLY_REPLAN, "7987ddb (v2 review fixes)",
          "the grant_suspension Update asks the case to re-plan before its first await, so no step "
          "runs while its record is written; before, only after",
          _NO_PRE_REVIEW_RUN),
    Patch(legacy_legal_wait(1) + ", -2, ... (LEGACY_LEGAL_WAIT family)",
          "ec6cee5 (a single unsuffixed id at 7987ddb, retired there: never reuse it)",
          "a v1 case woken in legal_pending continues as new, and its new run takes the legal "
          "branch; the wake-ups already in its history replay as they were",
          _NO_V1_RUN),
    Patch(EVENT_EFFECTS, "v3 (issue 10: operator actions are safe and say what they changed)",
          "a signalled event changes the case only when it applies (workflows/effects.py): a dispute "
          "resolution needs an open dispute, a revocation a suspension in force, a payment a new payment id; "
          "what each did, or 'no effect: <reason>', goes to the case history and the event's row "
          "(record_event_effect); before, every event applied blindly (an upheld resolution closed a case "
          "with no dispute, a payment id counted twice) and nothing was recorded for the event",
          _NO_V2_RUN),
    Patch(LETTER_DELIVERY, "v3 (issue 10)",
          "a legal notice the electronic service does not deliver is served again on the next contact day, "
          "then sent by post (workflows/notice.py); before, the case failed its workflow task there for ever "
          "(no history past that point completed a task, so none replays the old path)",
          _NO_V2_RUN),
    Patch(ADDRESS_ON_FILE, "v3 (issue 10: no personal data in Temporal)",
          "choosing the legal track, the case asks the database whether the debtor has a known address "
          "(the debtor_on_file activity); before, it read the address from the default event in its input, "
          "which no longer carries it",
          "once no run started before this release is open (their input holds the address)"),
    Patch(STRATEGY, "issue 14 (the strategy lab: strategy as configuration)",
          "the case follows the strategy in its input (CaseInput.strategy: its ladder, amount bands, plan terms "
          "and legal minimum; workflows/strategy.py) and shows Strategy=name@version as a search attribute; "
          "before, the constants of workflows/rules.py, and no Strategy attribute",
          "once no run started before issue 14 is open"),
    Patch(DESK, "issue 13 (people in the loop: the work desk)",
          "a step the case's input gives to people (CaseInput.desk_steps: human_call, skip_trace_review, "
          "court_entry) opens a work item and waits for its outcome (workflows/desk.py); before, the simulated "
          "adapters did every step (a case with no desk steps never asks, and records no marker)",
          "once no run started before issue 13 is open"),
    Patch(RECOVERY_SCORE, "issue 14 (the strategy lab: the recovery score)",
          "a case whose input asks for a score (CaseInput.score: COLLECTIONS_SCORE_MODEL set at intake) runs the "
          "score_case activity when it opens and shows the number in its status and the RecoveryScore search "
          "attribute; before, no score (a case not asking never calls patched, and records no marker)",
          "once no run started before issue 14 is open"),
    Patch(CONTACT_START_LIMIT, "issue 11 (the clock of record is the moment of the call)",
          "a contact activity carries a schedule-to-start limit (workflows/options.py CONTACT_START_LIMIT); one "
          "no worker started in time was not placed, and the case plans it again (Outcome.NOT_STARTED) instead of "
          "dialling late; before, a contact waited in the task queue without limit",
          "once no run started before issue 11 is open"),
    Patch(OPEN_IN_ONE, "issue 12 (production footing: fewer round trips to a case's day-0 call)",
          "a valid, timely debt not graded I is recorded as opened by the open_case activity itself (its "
          "OpenCaseRequest.opened), when no protection holds the case; before, a record_case activity after it "
          "(a case that is invalid, time-barred or graded I never asks, and records no marker)",
          "once no run started before issue 12 is open"),
    Patch(LOCAL_DB_STEPS, "issue 12, third round (production footing: the server's work a case)",
          "open_case and record_case run as local activities (workflows/options.py DB_LOCAL_ACTIVITY): in the "
          "worker running the case's workflow task, recorded as a marker, with no activity task through the "
          "server; before, as activities (three history events and a workflow task more each)",
          "once no run started before this release is open"),
)

# ------------------------------------------------------------------ epochs
#
# Every patch a new run checks records a marker, and Core adds an upsert of
# the TemporalChangeVersion search attribute to each: two history events, and
# a visibility write on the server, per patch per run.  A new run instead
# checks one *epoch*: an id that stands for every patch of the ledger as it
# was when the epoch was added.  A run born under an epoch records that one
# marker and takes the patches it covers without markers of their own (they
# are True for it, as they would be); a run from before the epoch replays its
# own markers as it always did.
#
# Adding a patch: add it to the ledger, then (the same release or later) an
# epoch covering it at the front of EPOCHS, so new runs record one marker
# again.  An epoch is never edited or reused; it is retired with the oldest
# patch it covers (its check goes once no run born under it is open).

BORN_V6 = "born-v6"  # the patches up to OPEN_IN_ONE: runs born in issue 12's second round
BORN_V7 = "born-v7"  # BORN_V6's and LOCAL_DB_STEPS: new runs from issue 12's third round on

_V6 = frozenset({LEGAL_BRANCH, INSTALLMENT_PLANS, EVENTS_BEAT_TIMERS, EARLY_REPLAN, EVENT_EFFECTS, LETTER_DELIVERY,
                 ADDRESS_ON_FILE, STRATEGY, DESK, CONTACT_START_LIMIT, RECOVERY_SCORE, OPEN_IN_ONE})
EPOCHS: tuple[tuple[str, frozenset[str]], ...] = (  # newest first
    (BORN_V7, _V6 | {LOCAL_DB_STEPS}),
    (BORN_V6, _V6),
)


class Patches:
    """``workflow.patched`` for one run of a case, through its epoch.

    The run's epoch is asked the first time the run asks for any patch (in
    replay, at the same point of the same workflow task, so the answer is the
    one recorded), newest epoch first: a new run records the newest one only.
    """

    def __init__(self) -> None:
        self._covered: frozenset[str] | None = None

    def __call__(self, patch_id: str) -> bool:
        if self._covered is None:
            self._covered = next((ids for epoch, ids in EPOCHS if workflow.patched(epoch)), frozenset())
        return patch_id in self._covered or workflow.patched(patch_id)
