"""China's administrative divisions as a hierarchy with aliases, for the place of a document and
the places a question names: 省/自治区/直辖市 › 市/自治州/经济特区 › 区/县/自治县.

The division list (name and GB/T 2260 code of every province, city and county) ships in the
`cpca` package (resources/adcodes.csv); it is read as a file, since importing cpca itself needs
pkg_resources. Parents come from the codes: 110108 (海淀区) › 110000 (北京市). Aliases are derived,
never typed in: 北京市 → 北京, 酉阳土家族苗族自治县 → 酉阳县 / 酉阳, 深圳市 → 深圳经济特区.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from rag.core.text import longest_first

LEVELS = ("province", "city", "county")
LEVEL_NAMES = {"province": "省级", "city": "市级", "county": "区县级"}
_MUNICIPALITIES = ("11", "12", "31", "50")  # 北京 天津 上海 重庆: their districts sit right below them
_SPECIAL_ZONES = ("深圳市", "珠海市", "汕头市", "厦门市")  # the four 经济特区 named after their city
_GENERIC = frozenset(
    "城区 郊区 矿区 市辖区 县 省直辖县级行政区划 自治区直辖县级行政区划 小区 社区 园区 景区 街区 片区 校区 厂区 辖区 新区 市区 全区 各区 本区 "
    "开发区 示范区 保护区 试验区 合作区 功能区 商务区 风景区 自贸区 住宅区".split()
)
_NEW_DISTRICT = re.compile(r"([\u4e00-\u9fff]{2}[区县])(?![区县])")
_SUFFIX = re.compile(r"(特别行政区|自治区|自治州|自治县|自治旗|地区|新区|林区|特区|省|市|区|县|州|盟|旗)$")


@dataclass(frozen=True)
class Place:
    code: str  # six-digit GB/T 2260 code
    name: str  # the full official name: 酉阳土家族苗族自治县
    level: str  # province | city | county
    parent: str | None  # the code of the place directly above

    @property
    def short(self) -> str:
        """The name without its suffix and ethnic qualifier: 酉阳, 广西, 北京."""
        return _short(self.name)


def _short(name: str, nations: tuple[str, ...] = ()) -> str:
    base = _SUFFIX.sub("", name)
    for nation in nations or _nations():
        base = base.replace(nation, "")
    return base if len(base) >= 2 else name


def _resource(name: str) -> str:
    dist = metadata.distribution("cpca")
    files = [f for f in dist.files or () if f.name == name]
    if not files:
        raise FileNotFoundError(f"cpca ships no {name}")
    return Path(str(dist.locate_file(files[0]))).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _nations() -> tuple[str, ...]:
    # Names of divisions carry the full form (土家族苗族自治县); longest first.
    names = {line.strip() for line in _resource("56_nations.csv").splitlines() if line.strip()}
    return tuple(sorted(names, key=longest_first))


class Gazetteer:
    """Every division by code, by full name and by alias."""

    def __init__(self, places: Iterable[Place]) -> None:
        self.by_code: dict[str, Place] = {p.code: p for p in places}
        self.by_alias: dict[str, list[Place]] = {}
        for p in self.by_code.values():
            for alias in self.aliases(p):
                self.by_alias.setdefault(alias, []).append(p)
        self._alias_re = re.compile("|".join(re.escape(a) for a in sorted(self.by_alias, key=longest_first)))

    @staticmethod
    def aliases(p: Place) -> list[str]:
        out = [p.name]
        short = p.short
        if short != p.name:
            out.append(short)
            if p.name.endswith("自治县"):
                out.append(short + "县")
            elif p.name.endswith("自治州"):
                out.append(short + "州")
        if p.name in _SPECIAL_ZONES:
            out.append(short + "经济特区")
        return out

    def ancestors(self, p: Place) -> list[Place]:
        """From the place directly above up to the province."""
        out: list[Place] = []
        while p.parent and p.parent in self.by_code:
            p = self.by_code[p.parent]
            out.append(p)
        return out

    def within(self, inner: Place, outer: Place) -> bool:
        """inner is outer or lies inside it."""
        return inner.code == outer.code or outer in self.ancestors(inner)

    def named(self, name: str) -> list[Place]:
        """The places a full name or alias stands for (朝阳区: one in 北京, one in 长春)."""
        return list(self.by_alias.get(name, ()))

    def mentions(self, text: str) -> list[tuple[str, list[Place]]]:
        """Every alias in text, longest first, without overlaps, in order: [(alias, places)]."""
        return [(m.group(), self.by_alias[m.group()]) for m in self._alias_re.finditer(text)]

    def prefix(self, text: str) -> Place | None:
        """The most specific place a title or issuer starts with: 上海市金山区… → 金山区,
        深圳经济特区… → 深圳市, 住宅小区… → None. Each further name must lie inside the last.
        A two-character 区/县 right after a city that the list lacks (a district created after
        it was made) is taken as a new place below that city."""
        found: Place | None = None
        pos = 0
        while True:
            m = self._alias_re.match(text, pos)
            choices = self.by_alias[m.group()] if m else []
            if found is not None:
                choices = [c for c in choices if self.within(c, found) and c != found]
            elif m and not _SUFFIX.search(m.group()) and all(c.level == "county" for c in choices):
                choices = []  # a county's bare short name opening a title is a word: 港口服务指南, 长安街…
            if not choices:
                new = _NEW_DISTRICT.match(text, pos) if found is not None and found.level != "county" else None
                if new and new.group(1) not in _GENERIC:
                    return Place(found.code + "?", new.group(1), "county", found.code)  # type: ignore[union-attr]
                return found
            found = _most_senior(choices)
            pos = m.end()  # type: ignore[union-attr]


def _most_senior(places: list[Place]) -> Place:
    """Of places sharing a name, the higher level (吉林 → 吉林省) and then the lower code."""
    return min(places, key=lambda p: (LEVELS.index(p.level), p.code))


def _level(code: str) -> str:
    if code[2:] == "0000":
        return "province"
    if code[4:] == "00" and code[:2] not in _MUNICIPALITIES:
        return "city"
    return "county"


def _parent(code: str, codes: set[str]) -> str | None:
    level = _level(code)
    if level == "province":
        return None
    city = code[:4] + "00"
    if level == "county" and city in codes and city != code:
        return city
    return code[:2] + "0000"


@functools.lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The division list, loaded once (about 3,500 places, 20 ms)."""
    rows = list(csv.DictReader(io.StringIO(_resource("adcodes.csv"))))
    # Generic groupings (市辖区) and anything below county level are left out.
    kept = {
        r["adcode"][:6]: r["name"].strip()
        for r in rows
        if r["name"].strip() and r["name"].strip() not in _GENERIC and not r["adcode"][6:].strip("0")
    }
    codes = set(kept)
    return Gazetteer(Place(code, name, _level(code), _parent(code, codes)) for code, name in kept.items())
