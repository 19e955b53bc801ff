from pathlib import Path

from rag.answer.pipeline import Pipeline
from rag.core.places import gazetteer
from rag.core.settings import Settings
from rag.index.embed import Embedder
from rag.ingest.build import ingest
from rag.query.scope import detect_scope, held_by_level

HELD = ["上海市", "金山区", "静安区"]


def test_known_districts_with_and_without_suffix() -> None:
    assert detect_scope("金山那边啥时候搞完", HELD).districts == ("金山区",)
    assert set(detect_scope("金山和静安有什么不同", HELD).districts) == {"金山区", "静安区"}


def test_unknown_districts_are_noticed() -> None:
    for q, name in [("浦东新区的行政复议", "浦东新区"), ("徐汇区有什么规划", "徐汇区"), ("杨浦区行政执法", "杨浦区")]:
        s = detect_scope(q, HELD[1:], mentioned=set())
        assert s.unknown == (name,) and s.districts == ()


def test_a_district_without_documents_is_answered_by_the_city_above_that_speaks_of_it() -> None:
    xuhui = {p.code for p in gazetteer().named("徐汇区")}
    assert detect_scope("徐汇区有什么规划", HELD, mentioned=xuhui).districts == ("上海市",)
    s = detect_scope("徐汇区有什么规划", HELD, mentioned=set())  # no passage names 徐汇
    assert s.districts == () and s.unknown == ("徐汇区",)


def test_a_place_searches_the_places_inside_it() -> None:
    held = ["北京市", "海淀区", "深圳市", "酉阳土家族苗族自治县", "重庆市"]
    assert set(detect_scope("北京的中医药条例", held).districts) == {"北京市", "海淀区"}
    assert detect_scope("海淀区的规定", held).districts == ("海淀区",)
    assert detect_scope("深圳经济特区的条例何时施行", held).districts == ("深圳市",)
    assert detect_scope("酉阳县的自治条例", held).districts == ("酉阳土家族苗族自治县",)
    assert set(detect_scope("广东省有哪些规定", held).districts) == {"深圳市"}


def test_places_only_mentioned_elsewhere_are_searched_not_refused() -> None:
    tianjin = {p.code for p in gazetteer().named("天津市")}
    s = detect_scope("天津港的规定", ["北京市"], mentioned=tianjin)
    assert s.districts == () and s.unknown == ()
    assert "天津" in s.spoken and "天津市" in s.spoken  # only passages naming it may answer
    assert detect_scope("天津港的规定", ["北京市"], mentioned=set()).unknown == ("天津市",)


def test_refusal_lists_the_held_places_by_level() -> None:
    text = held_by_level(["北京市", "深圳市", "金山区"])
    assert text.index("省级：北京市") < text.index("市级：深圳市") < text.index("区县级：金山区")


def test_generic_area_words_are_not_districts() -> None:
    s = detect_scope("全区各部门和城区、社区、示范区的建设", HELD)
    assert s.districts == () and s.unknown == ()


def test_most_specific_level_wins() -> None:
    assert detect_scope("上海市金山区的规划", HELD).districts == ("金山区",)
    assert set(detect_scope("上海市行政复议条例", HELD).districts) == set(HELD)  # and the places inside it


def test_a_place_only_mentioned_is_answered_only_by_passages_that_name_it(tmp_path: Path, embedder: Embedder) -> None:
    """杭州市 has no documents; one 上海市 passage speaks of it. A question on 杭州's parks is not
    answered from 上海市's park rules, while a question on what the passage says of 杭州 is."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "parks.txt").write_text(
        "上海市公园管理条例\n第十条 游客携犬进入公园的，应当为犬只束犬链，并即时清除犬只粪便。\n", "utf-8"
    )
    (docs / "delta.txt").write_text(
        "上海市长三角政务服务合作促进条例\n第五条 本市与杭州市建立政务服务跨省通办机制，每年第一季度公布通办事项清单。\n",
        "utf-8",
    )
    settings = Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    assert ingest([docs], settings, embedder).ok
    pipe = Pipeline(settings, embedder)
    try:
        dogs = pipe.ask("杭州市的公园对游客带狗进园有什么规定？")
        assert dogs.abstained, dogs.answer
        cards = pipe.ask("杭州市和上海的跨省通办事项清单什么时候公布？")
        assert not cards.abstained and "第一季度" in cards.answer, cards.answer
        assert all("杭州市" in c.chunk.text for c in cards.citations)
    finally:
        pipe.index.close()
