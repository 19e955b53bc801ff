from rag.query.scope import detect_scope

HELD = ["上海市", "金山区", "静安区"]


def test_known_districts_with_and_without_suffix() -> None:
    assert detect_scope("金山那边啥时候搞完", HELD).districts == ("金山区",)
    assert set(detect_scope("金山和静安有什么不同", HELD).districts) == {"金山区", "静安区"}


def test_unknown_districts_are_noticed() -> None:
    for q, name in [("浦东新区的行政复议", "浦东新区"), ("徐汇区有什么规划", "徐汇区"), ("杨浦区行政执法", "杨浦区")]:
        s = detect_scope(q, HELD)
        assert s.unknown == (name,) and s.districts == ()


def test_generic_area_words_are_not_districts() -> None:
    s = detect_scope("全区各部门和城区、社区、示范区的建设", HELD)
    assert s.districts == () and s.unknown == ()


def test_most_specific_level_wins() -> None:
    assert detect_scope("上海市金山区的规划", HELD).districts == ("金山区",)
    assert detect_scope("上海市行政复议条例", HELD).districts == ("上海市",)
