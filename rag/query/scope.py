"""Scope from the question: the places it names, resolved against the places the index holds.

A named place is searched with every indexed place inside it (北京市 → 北京市, 海淀区 …). A place
with no documents of its own is answered by the indexed places above it (海淀区 → 北京市's
regulations, which speak of their districts). A place the index holds nothing of, inside or
above, is `unknown`: the pipeline refuses it unless some passage mentions it. The divisions and
their aliases come from rag.core.places, so 酉阳县, 深圳经济特区 and 北京 resolve like full names.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from rag.core.places import LEVEL_NAMES, LEVELS, Gazetteer, Place, gazetteer
from rag.core.text import longest_first

_FULL_SUFFIXES = ("县", "区", "州", "市", "省", "经济特区", "自治区")


@dataclass(frozen=True)
class Scope:
    districts: tuple[str, ...]  # indexed places to search (names as the index holds them)
    unknown: tuple[str, ...]  # named places with no indexed document inside or above them
    # Named places with no documents inside or above them that some passage speaks of (their
    # names as written): only such passages may answer, so 杭州市's rule is never quoted from
    # 上海市's regulation on the same topic.
    spoken: tuple[str, ...] = ()
    # Indexed places above a named place that has documents of its own, and the names it goes by:
    # a 上海市 regulation on 浦东新区 answers a 浦东新区 question when its passage names 浦东新区.
    above: tuple[str, ...] = ()
    above_names: tuple[str, ...] = ()


def held_places(known: Sequence[str], g: Gazetteer | None = None) -> dict[str, Place]:
    """Each indexed place name → its division. Of places sharing a name (朝阳区 in 北京 and in
    长春), the one whose ancestors the index also holds, else the most senior. A name the list
    lacks (a district newer than it) stands for itself."""
    g = g or gazetteer()
    names = set(known)
    out: dict[str, Place] = {}
    for name in known:
        choices = g.named(name)
        if choices:
            rooted = [c for c in choices if any(a.name in names for a in g.ancestors(c))]
            out[name] = min(rooted or choices, key=lambda p: (LEVELS.index(p.level), p.code))
        else:
            out[name] = Place("?" + name, name, "county", None)
    return out


def _named(question: str, held: dict[str, Place], g: Gazetteer) -> list[tuple[str, list[Place]]]:
    """Places the question names, the indexed ones first (so 和静县 never eats "金山和静安").
    A county's bare short name (长安, 和平) is an ordinary word too often, so it counts only for
    a county the index holds; full names and provinces/cities always count."""
    out: list[tuple[int, str, list[Place]]] = []
    by_alias: dict[str, list[Place]] = {}
    for p in held.values():
        for alias in Gazetteer.aliases(p):
            by_alias.setdefault(alias, []).append(p)
    rest = question
    for alias in sorted(by_alias, key=longest_first):
        for m in re.finditer(re.escape(alias), rest):
            out.append((m.start(), alias, by_alias[alias]))
        rest = rest.replace(alias, "□" * len(alias))
    for m_alias, places in g.mentions(rest):
        full = any(m_alias == p.name for p in places) or m_alias.endswith(_FULL_SUFFIXES)
        if full or any(p.level != "county" for p in places):
            out.append((rest.index(m_alias), m_alias, places))
    return [(alias, places) for _, alias, places in sorted(out, key=lambda t: t[0])]


def detect_scope(question: str, known: Sequence[str], mentioned: Collection[str] | None = None) -> Scope:
    """The indexed places to search for a question, and the named places the index lacks.
    `mentioned` holds the codes of places some passage names: a place with no documents of its
    own is searched in the places above it, or everywhere, only if a passage speaks of it
    (without the set, the places above are searched)."""
    g = gazetteer()
    q = re.sub(r"\s+", "", question)
    held = held_places(known, g)
    named = _named(q, held, g)
    # The most specific wins: "上海市金山区" is about 金山区, not every 上海市 document.
    flat = [p for _, places in named for p in places]
    named = [
        (alias, kept)
        for alias, places in named
        if (kept := [p for p in places if not any(o is not p and g.within(o, p) for o in flat)])
    ]
    districts: list[str] = []
    unknown: list[str] = []
    spoken_of: list[str] = []
    unscoped = False
    over: list[str] = []
    over_names: list[str] = []
    for alias, places in named:
        inside = [n for n, h in held.items() if any(g.within(h, p) for p in places)]
        above = [n for n, h in held.items() if any(g.within(p, h) for p in places)]
        spoken = mentioned is None or any(p.code in mentioned for p in places)
        if inside:
            districts.extend(inside)
            strictly = [n for n in above if n not in inside]
            if strictly and spoken:
                over.extend(strictly)
                over_names.extend([alias, *(p.name for p in places)])
        elif above and spoken:
            districts.extend(above)
        elif mentioned is not None and spoken:
            unscoped = True  # only passages elsewhere speak of it: search everything, keep those
            spoken_of.extend(dict.fromkeys([alias, *(p.name for p in places)]))
        else:
            unknown.append(places[0].name if alias == places[0].short else alias)
    if unscoped:
        districts, over = [], []
    over = [n for n in over if n not in districts]  # "上海市金山区…" names both; 上海市 is not above
    return Scope(
        tuple(dict.fromkeys(districts)),
        tuple(dict.fromkeys(unknown)),
        tuple(dict.fromkeys(spoken_of)),
        tuple(dict.fromkeys(over)),
        tuple(dict.fromkeys(over_names)) if over else (),
    )


def held_by_level(known: Sequence[str]) -> str:
    """The indexed places grouped by level, for a refusal: 省级：北京市、重庆市；区县级：金山区."""
    held = held_places(known)
    groups: dict[str, list[str]] = {}
    for name in known:
        level = held[name].level if name in held else "county"
        groups.setdefault(level, []).append(name)
    return "；".join(f"{LEVEL_NAMES[lv]}：{'、'.join(groups[lv])}" for lv in LEVELS if lv in groups) or "（无）"
