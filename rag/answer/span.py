"""The shortest text that answers (`answer_span`): a date, figure, name, place or list inside the
sentence the answer quotes, when the question asks for one; None otherwise.

Two sources: the patterns of `rule_span` (dates, figures, offices, 、-lists as government documents
write them) and a span model learned from CMRC 2018 trial, DRCD test and our tuning sets (`learned_span`, weights in
span_model.json, trained by `make train` = eval/train_span.py). The model ranks every run of words
in the sentence (rag/answer/span_features.py) and answers only when its best scores high enough.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.boosters import booster, read_model
from rag.answer.span_features import FEATURES, features
from rag.query.question import Question

_NUM = r"(?:\d[\d,.]*[万亿千百]?|[一二两三四五六七八九十百千万亿]+)(?:余|多)?"
_DATE = re.compile(
    r"(?:(?:19|20)\d\d\s*年(?:\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?)?|\d{1,2}\s*月\s*\d{1,2}\s*日)"
    r"(?:\s*(?:年底|年末|年中|上半年|下半年|底))?(?:\s*(?:前|之前|以前|起|内|以内))?"
    r"|(?:每年|每季度|每月|每半年)|\d+\s*(?:个)?(?:工作日|日|天|个月|年)(?:内|以内|之内)?"
)
_FIGURE = re.compile(
    r"(?<![第\d一二两三四五六七八九十百千万亿])"  # 第二十八条 is an article, not a figure
    + _NUM
    + r"\s*(?:%|‰|倍|亿元|万元|千元|元|名|个工作日|工作日|个月|个|件|项|次|人次|人|家|所|天|日|年|小时|学时|户|条|部|支|平方米|公里)"
    + r"(?:以上|以下|左右)?(?:[，、至到-]?\s*"
    + _NUM
    + r"\s*(?:%|元|万元|千元|亿元|倍)?(?:以上|以下))?"
    r"|百分之" + _NUM
)
_ORG = re.compile(
    r"(?:[市区县镇街省][\u4e00-\u9fff]{1,12}?|[\u4e00-\u9fff]{2,12}?)"
    r"(?:人民政府|委员会|局|办公室|办|委|中心|小组|部门|机关|法院|检察院|厅)"
)
_ITEM = r"[\u3400-\u9fff“”\"][^\W、，。；和及]{0,15}"
_ENUM = re.compile(rf"(?:{_ITEM}、)+{_ITEM}(?:(?:和|及|以及){_ITEM})?")
_DAY = re.compile(r"\d\s*[年月日]")
_RANGE = re.compile(
    r"\s*(?:至|到|—|－|-|~)\s*(?:\d{2,4}\s*年\s*)?\d{1,2}\s*月\s*\d{1,2}\s*日|\s*(?:至|到)\s*\d{1,2}\s*日"
)
_DEFINES = re.compile(r"(?:是指|系指)([^。；;]{2,60})")
_LEAD = re.compile(r"^(?:包括|包含|主要有|分别是|分别为|有|是|为)")


MODEL_PATH = Path(__file__).with_name("span_model.json")
_CITE = re.compile(r"\[\d+\]")


def _unmarked(sentence: str) -> str:
    return _CITE.sub("", sentence)


class SpanModel:
    """A LambdaRank model (LightGBM) over span features: it ranks the candidates of one sentence.
    The booster is kept in LightGBM's own text format inside span_model.json, so loading runs no
    pickled code."""

    def __init__(self, booster: Any, threshold: float) -> None:
        self.booster = booster
        self.threshold = threshold  # below this score the sentence stands without a span

    def scores(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(x, num_threads=1))

    @staticmethod
    def load(path: Path = MODEL_PATH) -> SpanModel:
        d = read_model(path, {"features": FEATURES})
        return SpanModel(booster(d["booster"]), float(d["threshold"]))


@functools.lru_cache(maxsize=1)
def shipped_model() -> SpanModel | None:
    """The model in the package, or None when it is missing or stale (rule spans only)."""
    try:
        return SpanModel.load()
    except (OSError, ValueError, KeyError):
        return None


def learned_span(question: Question, sentence: str, model: SpanModel | None) -> str | None:
    """The model's best run of words in `sentence`, when the question wants a span and the
    model is confident."""
    if model is None or not question.wants_span:
        return None
    found = best_span(question, sentence, model)
    return found[0] if found and found[1] >= model.threshold else None


def answer_span(question: Question, sentence: str, model: SpanModel | None = None) -> str | None:
    """The span that answers `question` inside `sentence`: the patterns first, then the model.

    Measured both ways on the sets neither was tuned on (F1, patterns-first vs model-first, with
    the ranker trained on the bench sets alone):
    regions blind .323 vs .262, Shanghai blind .383 vs .325, versions .245 vs .173; plans holdout
    .438 vs .443, plans blind .599 vs .613, CMRC dev .369 vs .377, DRCD dev .431 vs .448. The
    model, learned on encyclopaedia questions, cuts regulation dates and amounts ("自2021年3月1日
    起", "五千元以上五万元以下") short; the patterns were written for them."""
    return rule_span(question, sentence) or learned_span(question, sentence, model or shipped_model())


def rule_span(question: Question, sentence: str) -> str | None:
    """The date, figure, office or list in `sentence` that the question asks for."""
    kind = question.kind
    text = _unmarked(sentence)
    if kind == "date":
        # A calendar date before a recurrence ("每年5月1日至9月30日" → the dates), and a range whole.
        found = list(_DATE.finditer(text))
        m = next((f for f in found if _DAY.search(f.group())), found[0] if found else None)
        if m and _DAY.search(m.group()) and (to := _RANGE.match(text, m.end())):
            return re.sub(r"\s+", "", text[m.start() : to.end()])
    elif kind == "number" or (kind == "fact" and question.unit):  # "几天内答复" asks a figure too
        # The measure asked for ("多少名", "全长多少公里"): a figure carrying it before the first figure.
        unit = question.unit or question.measure
        found = list(_FIGURE.finditer(text))
        m = next((f for f in found if unit and unit in f.group()), found[0] if found else None)
    elif kind == "definition" and (d := _DEFINES.search(text)):
        return re.sub(r"\s+", "", d.group(1))
    elif kind == "who" and question.office:  # a person ("谁饰演") is the model's
        m = _ORG.search(text)
    elif kind == "list":
        m = max(_ENUM.finditer(text), key=lambda x: len(x.group()), default=None)
        return _trim_lead(re.sub(r"\s+", "", m.group())) if m else None
    else:
        return None
    return _LEAD.sub("", re.sub(r"\s+", "", m.group())) if m else None


def _trim_lead(items: str) -> str:
    """The list without the verb glued to its first item ("设立人民调解工作室、法律服务站" →
    "人民调解工作室、…"): leading words go while the first item is longer than every other."""
    import jieba

    first, sep, rest = items.partition("、")
    others = re.split(r"、|和|及|以及", rest)
    longest = max((len(o) for o in others), default=len(first))
    words = jieba.lcut(_LEAD.sub("", first))
    while len(words) > 1 and len("".join(words)) > longest:
        words = words[1:]
    return "".join(words) + sep + rest


def best_span(question: Question, sentence: str, model: SpanModel) -> tuple[str, float] | None:
    """The model's best run of words in `sentence` and its score, whatever the threshold."""
    text = _unmarked(sentence)
    spans, x = features(question, text)
    if not spans:
        return None
    p = model.scores(x)
    k = int(np.argmax(p))
    return text[spans[k][0] : spans[k][1]].strip(), float(p[k])
