"""The compliance screen and the contact scripts (SPEC §3, §6; compliance/).

Labelled phrases in every category and language, written the way abuse is
written to slip past a filter (full-width characters, spaces and
punctuation between characters, Traditional forms), and ordinary reminders
that must pass; the lexicon and the templates as data (refused at load when
wrong); ``collections screen``; and the activity path: prohibited content in
a transcript or a filled script raises a compliance incident.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import shutil
from datetime import datetime, time
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

import compliance
from activities.adapters import (
    Adapters,
    CallOutcome,
    ServiceReceipt,
    SimulatedCallCentre,
    SimulatedSkipTracer,
    SimulatedVoiceRobot,
)
from activities.case_activities import CaseActivities
from cli.main import main
from compliance import CATEGORIES, Lexicon, LexiconError, ScriptError, Scripts
from db.models import ComplianceIncident, ContactAttempt
from workflows import rules
from workflows.model import ContactRequest, Debtor

PACKAGE = Path(compliance.__file__).parent
LANGUAGES = ("en", "zh-Hans", "zh-Hant")
THREAT, THIRD_PARTY, INSULT, FALSE_LEGAL, DISCLOSURE = CATEGORIES

# (text, the category it must be blocked for, the language the text is written in)
BLOCKED = [
    # the seed's own examples, and what evasion does to them
    ("若不還款將聯繫債務人子女學校", THIRD_PARTY, "zh-Hant"),
    ("联系你孩子的学校", THIRD_PARTY, "zh-Hans"),
    ("若不还款将联系债务人子女学校", THIRD_PARTY, "zh-Hans"),
    ("联 系 你 孩 子 的 学 校", THIRD_PARTY, "zh-Hans"),
    ("联。系·你*孩-子的学校", THIRD_PARTY, "zh-Hans"),
    ("联系\u3000你\u3000孩子的学校", THIRD_PARTY, "zh-Hans"),  # ideographic spaces
    ("聯 繫，你-孩 子的學校", THIRD_PARTY, "zh-Hant"),
    ("聯\u200b繫你孩子的學校", THIRD_PARTY, "zh-Hant"),  # a zero-width space
    # zh-Hans
    ("我们会联系您的家人。", THIRD_PARTY, "zh-Hans"),
    ("再不还钱就打电话到你单位，让你领导知道。", THIRD_PARTY, "zh-Hans"),
    ("明天我们上门找你家人。", THIRD_PARTY, "zh-Hans"),
    ("不还钱我们就打爆你的通讯录", THIRD_PARTY, "zh-Hans"),
    ("再不还钱，否则后果自负。", THREAT, "zh-Hans"),
    ("信不信我找人收拾你", THREAT, "zh-Hans"),
    ("我们知道你家住哪，出门小心", THREAT, "zh-Hans"),
    ("你这个老赖！", INSULT, "zh-Hans"),
    ("你就是个垃圾", INSULT, "zh-Hans"),
    ("你 这 个 骗 子", INSULT, "zh-Hans"),
    ("不还钱你会坐牢。", FALSE_LEGAL, "zh-Hans"),
    ("我们已经报警了，警察会上门抓你", FALSE_LEGAL, "zh-Hans"),
    ("要追究你的刑事责任，给你留案底", FALSE_LEGAL, "zh-Hans"),
    ("我们会把你的欠款发到朋友圈", DISCLOSURE, "zh-Hans"),
    ("不还钱就曝光你，让所有人知道你欠钱", DISCLOSURE, "zh-Hans"),
    # zh-Hant: Hong Kong (Cantonese) and Taiwan usage, and Simplified phrases written in Traditional
    ("我哋會打去你公司搵你老細", THIRD_PARTY, "zh-Hant"),
    ("唔還錢就打俾你屋企人", THIRD_PARTY, "zh-Hant"),
    ("我們會聯絡您的家人", THIRD_PARTY, "zh-Hant"),
    ("再唔還錢就淋紅油", THREAT, "zh-Hant"),
    ("你死梗，睇住嚟", THREAT, "zh-Hant"),
    ("再不還錢，否則後果自負。", THREAT, "zh-Hant"),
    ("你個仆街", INSULT, "zh-Hant"),
    ("你這個騙子", INSULT, "zh-Hant"),
    ("你這個老賴", INSULT, "zh-Hant"),
    ("唔還錢就報警拉你去差館", FALSE_LEGAL, "zh-Hant"),
    ("你會坐監，留案底", FALSE_LEGAL, "zh-Hant"),
    ("我們會移送地檢署，告你詐欺", FALSE_LEGAL, "zh-Hant"),
    ("不還錢你會坐牢", FALSE_LEGAL, "zh-Hant"),
    ("貼你相喺你屋企門口，放上網", DISCLOSURE, "zh-Hant"),
    ("公開你的欠款，讓大家知道", DISCLOSURE, "zh-Hant"),
    # English
    ("We will call your employer tomorrow.", THIRD_PARTY, "en"),
    ("We are going to tell your family.", THIRD_PARTY, "en"),
    ("I am contacting your boss next.", THIRD_PARTY, "en"),
    ("We'll visit your kids' school.", THIRD_PARTY, "en"),
    ("We will c.o.n.t.a.c.t your employer", THIRD_PARTY, "en"),
    ("ＷＥ ＷＩＬＬ ＣＡＬＬ ＹＯＵＲ ＷＩＦＥ", THIRD_PARTY, "en"),
    ("If you don't pay, we'll call your boss.", THIRD_PARTY, "en"),
    ("Your boss will hear from us.", THIRD_PARTY, "en"),
    ("We know where you live.", THREAT, "en"),
    ("We'll break your legs.", THREAT, "en"),
    ("Pay now or else you will regret it.", THREAT, "en"),
    ("Pay today, or else.", THREAT, "en"),
    ("You are a deadbeat.", INSULT, "en"),
    ("Don't be STUPID.", INSULT, "en"),
    ("you are a s-t-u-p-i-d person", INSULT, "en"),
    ("You are worthless.", INSULT, "en"),
    ("ｙｏｕ ｉｄｉｏｔ", INSULT, "en"),
    ("You will be arrested.", FALSE_LEGAL, "en"),
    ("The police will come to your house.", FALSE_LEGAL, "en"),
    ("This goes on your criminal record.", FALSE_LEGAL, "en"),
    ("We will have you put in j a i l", FALSE_LEGAL, "en"),
    ("We will post your debt on Facebook.", DISCLOSURE, "en"),
    ("Everyone will know you don't pay.", DISCLOSURE, "en"),
    ("We'll tell everyone in your village.", DISCLOSURE, "en"),
]

ALLOWED = [
    "请于本月底前还款",
    "您的账户已逾期，请尽快联系我们",
    "Please call us back about your account",
    "如有疑问请拨打客服热线",
    "您好，请问您方便什么时候还款？我们可以商量分期计划。",
    "我们不会联系您的家人或单位，请放心。",
    "我要去学校接孩子，晚点再打给你。",
    "我会告诉我老婆的，明天再说。",
    "我帮您找一下同事处理。",
    "请问是王老师吗？我找王老师。",
    "这是群发短信，请勿回复。",
    "请谨防冒充公检法的诈骗电话。",
    "逾期后，债权人可依法向人民法院申请支付令。",
    "請於本月底前還款，如有疑問請致電客服熱線。",
    "您的帳戶已逾期，請盡快與我們聯絡。",
    "我們絕不會聯絡您的家人。",
    "Hello, can we agree a payment date?",
    "Please contact us within 15 days.",
    "Stupidity is not a word we use.",
    "The goods came with a warranty.",
    "Please call us back if your payment date needs to change.",
    "Call us after school hours if that suits you.",
    "We will never contact your family or employer.",
    "You will not be arrested: this is a civil matter.",
    "We may apply to the court for a payment order.",
    "Please pay by Friday or else contact us to agree a plan.",
    "I'll talk to my wife and call you back.",
]


def test_there_are_at_least_sixty_labelled_phrases_in_every_category_and_language():
    assert len(BLOCKED) + len(ALLOWED) >= 60
    covered = {(category, language) for _, category, language in BLOCKED}
    assert covered == set(itertools.product(CATEGORIES, LANGUAGES))


@pytest.mark.parametrize("text,category,language", BLOCKED, ids=[t for t, _, _ in BLOCKED])
def test_prohibited_content_is_blocked(text, category, language):
    verdict = compliance.screen(text)
    assert verdict.blocked and category in verdict.categories, verdict
    assert all(m.text == text[m.start:m.end] and m.text.strip() for m in verdict.matches), verdict.matches
    assert compliance.screen_text(text) == verdict.categories


@pytest.mark.parametrize("text", ALLOWED)
def test_ordinary_reminders_pass(text):
    verdict = compliance.screen(text)
    assert not verdict.blocked and verdict.categories == [] and verdict.matches == [], verdict.matches


def test_a_match_shows_the_words_of_the_text_as_written():
    text = "您好。聯 繫，你-孩 子的學校！"
    [match] = compliance.screen(text).matches
    assert match.text == "聯 繫，你-孩 子" == text[match.start:match.end]
    assert (match.category, match.rule, match.source) == (THIRD_PARTY, "联系 … 孩子",
                                                          "zh-Hans/third_party_contact.toml")


def test_each_category_is_reported_once_in_the_lexicons_order():
    text = "You idiot, pay or else, or we will call your boss and you will go to jail. 老赖，否则后果自负！曝光你！"
    verdict = compliance.screen(text)
    assert verdict.categories == list(CATEGORIES)
    assert len(verdict.matches) > len(CATEGORIES)


def test_a_negation_counts_only_right_before_the_match():
    assert not compliance.screen("我们不会联系您的家人").blocked
    assert compliance.screen("你不还钱我们就联系你家人").categories == [THIRD_PARTY]
    assert not compliance.screen("We will not be contacting your employer.").blocked
    assert compliance.screen("We will not wait: we will contact your employer.").categories == [THIRD_PARTY]
    assert compliance.screen("我们不会放过你的，你这个老赖").categories == [INSULT]  # insults are not negatable
    # a negated match does not hide the one right after it, nor a negation the next sentence
    assert compliance.screen("We won't call, we'll call your boss.").categories == [THIRD_PARTY]
    assert compliance.screen("我们不会联系，联系你家人").categories == [THIRD_PARTY]
    assert compliance.screen("We will not. Call your boss, we will.").categories == [THIRD_PARTY]
    assert compliance.screen("我们不会。联系你家人").categories == [THIRD_PARTY]


# ---------------------------------------------------------------- the lexicon as data


def copy_of(folder: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(PACKAGE / folder, tmp_path / folder))


def test_every_category_has_rules_in_every_language():
    found = {(rule.category, rule.language) for rule in compliance.lexicon().rules}
    assert found == set(itertools.product(CATEGORIES, LANGUAGES))


def test_a_traditional_rendering_of_every_simplified_phrase_is_blocked_too():
    """Reverse the table (Simplified → a Traditional form) over every zh-Hans phrase."""
    lexicon = compliance.lexicon()
    to_traditional = {simplified: traditional for traditional, simplified in reversed(list(lexicon.table.items()))}
    phrases = [written for rule in lexicon.rules if rule.language == "zh-Hans" and len(rule.parts) == 1
               for written in rule.parts[0].written]
    rendered = ["".join(to_traditional.get(c, c) for c in phrase) for phrase in phrases]
    assert sum(r != p for r, p in zip(rendered, phrases)) > len(phrases) // 2  # most do change
    missed = [r for r in rendered if not compliance.screen(r).blocked]
    assert not missed


@pytest.mark.parametrize("edit,message", [
    (lambda d: (d / "en" / "threats.toml").write_text('phrases = ["x"]\n'), "en/threats.toml: unknown category"),
    (lambda d: (d / "en" / "insult.toml").write_text('phrases = "idiot"\n'), "en/insult.toml: phrases must be"),
    (lambda d: (d / "en" / "insult.toml").write_text('phrases = ["!!"]\n'), "en/insult.toml: phrases has entries"),
    (lambda d: (d / "en" / "insult.toml").write_text('phrases = [\n'), "en/insult.toml:"),
    (lambda d: (d / "en" / "insult.toml").write_text('[[near]]\nfirst = ["you"]\n'), "near[0].then must be"),
    (lambda d: (d / "en" / "insult.toml").write_text('[[near]]\nfirst = ["a"]\nthen = ["b"]\nwithin = 99\n'),
     "near[0] needs"),
    (lambda d: (d / "en" / "language.toml").unlink(), "en/language.toml is missing"),
    (lambda d: (d / "traditional.txt").write_text("聯 联\n聯 联\n"), "traditional.txt:2: 聯 is mapped twice"),
])
def test_a_broken_lexicon_file_is_refused_with_its_name(tmp_path, edit, message):
    root = copy_of("lexicon", tmp_path)
    Lexicon.load(root)  # the copy itself loads
    edit(root)
    with pytest.raises(LexiconError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Lexicon.load(root)


def test_a_phrase_added_to_a_lexicon_file_takes_effect(tmp_path):
    root = copy_of("lexicon", tmp_path)
    assert not Lexicon.load(root).screen("你是个穷光蛋").blocked
    insult = root / "zh-Hans" / "insult.toml"
    insult.write_text(insult.read_text(encoding="utf-8").replace('"老赖",', '"老赖", "穷光蛋",'), encoding="utf-8")
    assert Lexicon.load(root).screen("你是個窮光蛋").categories == [INSULT]


# ---------------------------------------------------------------- scripts

FIELDS = {"ref": compliance.spoken_ref("ACC-00012345"), "amount": "1200.50", "currency": "CNY",
          "contract": "K-2024-0001"}
REGIONS = {"CN-GD": "zh-Hans", "cn-bj": "zh-Hans", "CN": "zh-Hans", "HK": "zh-Hant", "MO": "zh-Hant",
           "TW": "zh-Hant", "CN-TW": "zh-Hant", "hk": "zh-Hant", "US-NY": "en", "SG": "en", "GB-LND": "en", "": "en"}


@pytest.mark.parametrize("region,language", REGIONS.items())
def test_the_language_follows_the_region(region, language):
    assert compliance.language_for_region(region) == language


def test_every_template_loads_passes_the_screen_and_covers_every_ladder_step():
    scripts = compliance.scripts()
    assert scripts.languages() == set(LANGUAGES)
    assert scripts.steps() == set(rules.STEP_NAMES)
    for (language, step), template in scripts.templates.items():
        assert not compliance.screen(template).blocked, (language, step)
        assert template == (PACKAGE / "scripts" / language / f"{step}.txt").read_text(encoding="utf-8").strip()


@pytest.mark.parametrize("step,region", list(itertools.product(rules.STEP_NAMES, ["CN-GD", "HK", "US-NY"])))
def test_a_filled_script_is_clean_in_the_debtors_language_and_speaks_only_the_last_four(step, region):
    script = compliance.script_for(step, region=region, **FIELDS)
    assert not compliance.screen(script).blocked
    assert "...2345" in script and "1200.50 CNY" in script and "ACC-0001" not in script
    assert "{" not in script
    if step == "legal_notice":
        assert "K-2024-0001" in script
    chinese = {"CN-GD": "账户", "HK": "帳戶"}.get(region)
    assert (chinese in script) if chinese else script.isascii()


def test_a_script_needs_every_field_and_a_known_step():
    with pytest.raises(ScriptError, match="fields ref, amount, currency, contract"):
        compliance.script_for("voice_robot", region="CN-GD", ref="...1", amount="1", currency="CNY")
    with pytest.raises(ScriptError, match="no script for step 'fax'"):
        compliance.script_for("fax", region="CN-GD", **FIELDS)


@pytest.mark.parametrize("language,text,message", [
    ("zh-Hans", "您好，若不还款将联系债务人子女学校。", "zh-Hans/human_call.txt fails the compliance screen "
                                                     "(third_party_contact)"),
    ("zh-Hant", "逾期將追究刑事責任", "zh-Hant/human_call.txt fails the compliance screen (false_legal_claim)"),
    ("en", "Pay {amount} {currency} or we will call your employer.", "en/human_call.txt fails the compliance"),
    ("en", "Account {account_id} is overdue.", "en/human_call.txt: unknown fields ['account_id']"),
    ("en", "Pay {amount:>10}.", "en/human_call.txt: unknown fields"),
    ("en", "", "en/human_call.txt: empty"),
])
def test_a_template_that_fails_is_refused_at_load_naming_the_file(tmp_path, language, text, message):
    root = copy_of("scripts", tmp_path)
    Scripts.load(compliance.lexicon(), root)
    (root / language / "human_call.txt").write_text(text, encoding="utf-8")
    with pytest.raises(ScriptError) as refused:
        Scripts.load(compliance.lexicon(), root)
    assert message in str(refused.value)


def test_every_language_needs_every_step(tmp_path):
    root = copy_of("scripts", tmp_path)
    (root / "zh-Hant" / "legal_notice.txt").unlink()
    with pytest.raises(ScriptError, match="zh-Hant/: no template for legal_notice"):
        Scripts.load(compliance.lexicon(), root)


# ---------------------------------------------------------------- collections screen


async def test_screen_command_exit_codes_and_output(capsys, tmp_path, monkeypatch):
    assert await main(["screen", "联系你孩子的学校"]) == 1
    out = capsys.readouterr().out
    assert "blocked: third_party_contact" in out and "联系你孩子" in out and "third_party_contact.toml" in out

    assert await main(["screen", "请于本月底前还款"]) == 0
    assert "allowed" in capsys.readouterr().out

    transcript = tmp_path / "call.txt"
    transcript.write_text("AGENT: 你這個老賴，唔還錢就報警拉你\nDEBTOR: 我會還", encoding="utf-8")
    assert await main(["screen", "--file", str(transcript), "--json"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["verdict"] == "blocked" and verdict["categories"] == [INSULT, FALSE_LEGAL]
    assert {m["text"] for m in verdict["matches"]} == {"老賴", "報警拉你"}

    monkeypatch.setattr("sys.stdin", io.StringIO("Please call us back about your account"))
    assert await main(["screen", "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"verdict": "allowed", "blocked": False, "categories": [],
                                                   "matches": []}
    monkeypatch.setattr("sys.stdin", io.StringIO("You idiot"))
    assert await main(["screen", "--file", "-"]) == 1
    assert "blocked: insult" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["screen"], "give the TEXT to screen"),
    (["screen", "text", "--file", "f.txt"], "not both"),
    (["screen", "--file", "/nonexistent/call.txt"], "cannot read /nonexistent/call.txt"),
    (["screen", "--file", "{latin1}"], "is not UTF-8 text"),
    (["screen", "--jsn", "x"], "No such option"),
])
async def test_screen_command_bad_arguments_exit_2(argv, message, capsys, tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 idiot".encode("latin-1"))
    assert await main([a.format(latin1=latin1) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert message in err and not out.strip()


# ---------------------------------------------------------------- the activity path

SHANGHAI_10AM = rules.local_instant(datetime(2026, 11, 24).date(), time(10, 0), "Asia/Shanghai")


class Recorder(SimulatedCallCentre):
    """A call centre that records the scripts it is given and answers with a fixed transcript."""

    def __init__(self, transcript: str | None = None):
        self.scripts: list[str] = []
        self.transcript = transcript

    async def call(self, *, key, phone, team_id, script, profile):
        self.scripts.append(script)
        if self.transcript is None:
            return await super().call(key=key, phone=phone, team_id=team_id, script=script, profile=profile)
        return CallOutcome(answered=True, recording_ref=f"rec-{key}", transcript=self.transcript)


class Letters:
    def __init__(self):
        self.documents: list[str] = []

    async def serve(self, *, key, phone, document, at, profile):
        self.documents.append(document)
        return ServiceReceipt(delivered=True, receipt_ref=f"esvc-{key}", delivered_at=at)


def contact(account: str, step: str, region: str = "CN-GD", contract: str = "K-1") -> ContactRequest:
    return ContactRequest(
        account_id=account, step=step, attempt_no=1,
        debtor=Debtor(debtor_id=f"D-{account}", phone="+86 138 0013 8000", timezone="Asia/Shanghai", region=region,
                      age=40, simulation={"answers": True}),
        team_id=None, amount="100.00", currency="CNY", contract_id=contract,
    )


async def run_contact(db, req: ContactRequest, centre=None, letters=None):
    acts = CaseActivities(db, Adapters(SimulatedVoiceRobot(), centre or Recorder(), letters or Letters(),
                                       SimulatedSkipTracer()))
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, current_attempt_scheduled_time=SHANGHAI_10AM,
                                   scheduled_time=SHANGHAI_10AM)
    return await env.run(acts.contact_debtor, req)


async def incidents(db, account: str) -> list[ComplianceIncident]:
    async with db.sessions() as s:
        return list(await s.scalars(select(ComplianceIncident).where(ComplianceIncident.account_id == account)))


async def test_a_transcript_with_prohibited_content_raises_an_incident(db):
    centre = Recorder(transcript="AGENT: 再唔還錢，我哋就聯 繫 你 孩 子 嘅 學 校。\nDEBTOR: 唔好啊")
    result = await run_contact(db, contact("A-TX", "human_call", region="HK"), centre=centre)
    assert result.outcome == "answered"  # the call happened; the agent's words are an incident
    [incident] = await incidents(db, "A-TX")
    assert incident.source == "transcript" and incident.kinds == [THIRD_PARTY]
    assert "學 校" in incident.excerpt
    assert "帳戶" in centre.scripts[0]  # the agent was given the Traditional Chinese script


async def test_a_clean_call_raises_no_incident_and_uses_the_regions_script(db):
    centre = Recorder()
    result = await run_contact(db, contact("A-OK", "human_call", region="CN-SH"), centre=centre)
    assert result.outcome == "answered" and await incidents(db, "A-OK") == []
    assert centre.scripts == [compliance.script_for("human_call", region="CN-SH", ref="...A-OK", amount="100.00",
                                                    currency="CNY", contract="K-1")]


async def test_a_filled_script_with_prohibited_content_blocks_the_contact(db):
    letters = Letters()
    result = await run_contact(db, contact("A-SC", "legal_notice", contract="K-1 你这个老赖"), letters=letters)
    assert result.outcome == "blocked_compliance" and "insult" in result.detail
    assert letters.documents == []  # nothing was served
    [incident] = await incidents(db, "A-SC")
    assert incident.source == "script" and incident.kinds == [INSULT]
    async with db.sessions() as s:
        row = await s.scalar(select(ContactAttempt).where(ContactAttempt.account_id == "A-SC"))
    assert row.outcome == "blocked_compliance"
