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


def test_a_district_with_documents_also_names_the_city_above_it() -> None:
    held = ["上海市", "浦东新区", "金山区"]
    s = detect_scope("在浦东登记商事调解组织要多久？", held)
    assert s.districts == ("浦东新区",) and s.above == ("上海市",) and "浦东新区" in s.above_names
    assert detect_scope("上海的商事调解规定", held).above == ()  # the city itself: nothing above


def test_a_city_document_that_names_a_district_answers_it_and_unplaced_ones_are_kept(
    tmp_path: Path, embedder: Embedder
) -> None:
    """宝山区 has documents of its own; a 上海市 regulation on 宝山区's port answers a 宝山区
    question, one that never names 宝山 does not, and a document with no place is never excluded."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "baoshan.txt").write_text("上海市宝山区养老服务办法\n第三条 宝山区设立养老服务指导中心。\n", "utf-8")
    (docs / "port.txt").write_text(
        "上海市邮轮港口促进规定\n第六条 宝山区人民政府应当在吴淞口邮轮港设立旅客服务中心，提供二十四小时咨询。\n",
        "utf-8",
    )
    (docs / "ferry.txt").write_text(
        "上海市轮渡管理规定\n第六条 轮渡码头应当设立旅客服务中心，每日六时至二十二时提供咨询。\n", "utf-8"
    )
    (docs / "guide.txt").write_text("港口服务指南\n第二条 邮轮旅客行李寄存点设在候船大厅东侧。\n", "utf-8")
    settings = Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    assert ingest([docs], settings, embedder).ok
    pipe = Pipeline(settings, embedder)
    try:
        port = pipe.ask("宝山区的邮轮港旅客服务中心提供多长时间的咨询？")
        assert not port.abstained and "二十四小时" in port.answer, port.answer
        assert all("宝山" in c.chunk.text for c in port.citations)
        luggage = pipe.ask("宝山区的邮轮旅客行李寄存点设在哪里？")
        assert not luggage.abstained and "东侧" in luggage.answer, luggage.answer
    finally:
        pipe.index.close()
