"""The local documents a question names by title ("上海市自动驾驶汽车条例第十条规定了什么"), and
whether the index holds them.

A title counts only when it begins with a place name (上海市…条例, 《重庆市…办法》): it then claims
to be that place's own document, so when no indexed title of the searched places is close to it,
the documents cannot say what it says, however close a passage on the same topic looks. A bare
《中华人民共和国…法》 is a national law that local regulations cite, never a reason to refuse.
Closeness is the share of the named title's character bigrams that an indexed title holds, after
both lose their place and issuer: users shorten and misname titles (上海饮用水水源保护条例,
上海实施食品安全法办法 for 上海市实施《中华人民共和国食品安全法》办法).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Sequence

from rag.core.text import longest_first

# Below this share of its bigrams in every indexed title, a named title is not indexed. Tuning
# questions (regions dev/train, Shanghai train, qa) fall apart cleanly: named titles the index
# holds score ≥ 0.75, titles it lacks ≤ 0.43.
HELD_SHARE = 0.6
# 办法 alone is everyday speech too ("采取了什么办法"): only as 实施/管理办法 or a law's 法办法.
_SUFFIX = r"(?:条例|实施办法|管理办法|法办法|若干规定)"
# A title holds no question word: "上海市…怎么处理…条例" is a question about a regulation.
_BODY = r"(?:(?!什么|怎么|如何|哪|多少|几|是否|吗)[\u4e00-\u9fff“”]){2,30}?"
_DROP = re.compile(r"\(.*?\)|（.*?）|[《》〈〉“”\"]|中华人民共和国")
_ISSUER = re.compile(r"^(?:人民代表大会常务委员会|人大常委会)?(?:关于)?")


@functools.lru_cache(maxsize=8)
def _longest_first(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(names, key=longest_first))


@functools.lru_cache(maxsize=8)
def _pattern(names: tuple[str, ...]) -> re.Pattern[str] | None:
    """Built once per set of place names (an index's), not per question."""
    if not names:
        return None
    alt = "|".join(re.escape(n) for n in _longest_first(names))
    return re.compile(rf"《((?:{alt})[^》]{{2,40}})》|((?:{alt})(?:的|那个|那部)?{_BODY}{_SUFFIX})")


def title_core(title: str, names: tuple[str, ...]) -> str:
    """The title without brackets, dates, its leading place name and issuer: what users keep."""
    t = _DROP.sub("", title)
    for n in _longest_first(names):  # 上海市 goes whole, not as 上海
        if t.startswith(n):
            t = t[len(n) :]
            break
    t = re.sub(r"^(?:的|那个|那部)", "", t)
    return _ISSUER.sub("", t)


def named_titles(normalised: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """The cores of the place-prefixed titles a (normalised) question names; `names`: the
    index's place names and aliases, longest first."""
    rx = _pattern(names)
    if rx is None:
        return ()
    cores = (title_core(m.group(1) or m.group(2), names) for m in rx.finditer(normalised))
    return tuple(dict.fromkeys(c for c in cores if len(c) >= 4))


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def held_share(core: str, titles: Iterable[str]) -> float:
    """The largest share of `core`'s bigrams that one of `titles` (cores too) holds."""
    want = _bigrams(core)
    if not want:
        return 1.0
    return max((len(want & _bigrams(t)) / len(want) for t in titles), default=0.0)


def unheld(cores: Sequence[str], titles: Collection[str]) -> list[str]:
    """The named title cores that no indexed title in `titles` is close to."""
    return [c for c in cores if held_share(c, titles) < HELD_SHARE]
