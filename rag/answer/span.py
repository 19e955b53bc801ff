"""The shortest text that answers (`answer_span`): a date, figure, office or list inside the
sentence the answer quotes, when the question asks for one; None otherwise."""

from __future__ import annotations

import re

from rag.query.question import Question

_NUM = r"(?:\d[\d,.]*[万亿千百]?|[一二两三四五六七八九十百千万亿]+)(?:余|多)?"
_DATE = re.compile(
    r"(?:(?:19|20)\d\d\s*年(?:\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?)?|\d{1,2}\s*月\s*\d{1,2}\s*日)"
    r"(?:\s*(?:年底|年末|年中|上半年|下半年|底))?(?:\s*(?:前|之前|以前|起|内|以内))?"
    r"|(?:每年|每季度|每月|每半年)|\d+\s*(?:个)?(?:工作日|日|天|个月|年)(?:内|以内|之内)?"
)
_FIGURE = re.compile(
    _NUM
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
_LEAD = re.compile(r"^(?:包括|包含|主要有|分别是|分别为|有|是|为)")


def answer_span(question: Question, sentence: str) -> str | None:
    """The date, figure, office or list in `sentence` that the question asks for."""
    kind = question.kind
    text = re.sub(r"\[\d+\]", "", sentence)
    if kind == "date":
        m = _DATE.search(text)
    elif kind == "number":
        unit = question.unit
        found = list(_FIGURE.finditer(text))
        m = next((f for f in found if unit and unit in f.group()), found[0] if found else None)
    elif kind == "who":
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
