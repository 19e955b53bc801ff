"""Sentence scoring: what a question's form asks for (a rank, the items of a quoted mark, a
figure that is not a year) decides between sentences that cover its words alike."""

from __future__ import annotations

import pytest

from rag.answer.effective import effective_answer, names_document, repeal_unstated
from rag.answer.score import AnswerParams, score_sentences
from rag.core.types import Chunk, Hit
from rag.query.question import analyse
from rag.query.terms import head_noun


def _scores(question: str, *sentences: str, p: AnswerParams | None = None) -> dict[str, float]:
    chunk = Chunk("c", "d", "".join(sentences), ("三、主要任务", "1. 某项工作"), 0, "某区规划", "某区")
    scored = score_sentences(analyse(question), [Hit(chunk, 1.0)], {}, p or AnswerParams())
    return {s.sentence: s.score for s in scored}


def test_items_sharing_the_quoted_mark_answer_which_ones() -> None:
    q = "推进审批服务要实现哪几个“办”？"
    covers, items = "推进审批服务，推动事项当场办结、按时办结。", "推进审批“马上办、网上办、就近办”。"
    s = _scores(q, covers, items)
    assert s[items] > s[covers]
    plain = _scores(q, covers, items, p=AnswerParams(mark_bonus=0.0))
    assert plain[items] < plain[covers]  # the words alone favour the other sentence


def test_a_rank_question_is_answered_by_a_rank_in_words() -> None:
    s = _scores("法治环境在全市排名处在什么位置？", "全市法治环境建设取得成效。", "成为法治环境最好地区之一。")
    assert s["成为法治环境最好地区之一。"] > s["全市法治环境建设取得成效。"]


def test_rank_words_need_a_rank_context() -> None:
    s = _scores("法治政府建设在全市排名第几？", "法治政府建设引入第三方评估。", "法治政府建设在全市名列前茅。")
    assert s["法治政府建设在全市名列前茅。"] > s["法治政府建设引入第三方评估。"]


def test_an_ordinal_question_accepts_the_five_year_plan_number() -> None:
    q = "要开展第几个五年的普法宣传？"
    s = _scores(q, "深入开展普法宣传工作。", "深入开展“八五”普法宣传。", "“十四五”时期深入开展普法宣传。")
    assert s["深入开展“八五”普法宣传。"] > s["深入开展普法宣传工作。"]
    assert s["深入开展“八五”普法宣传。"] > s["“十四五”时期深入开展普法宣传。"]  # names the plan itself


def test_a_year_is_not_the_figure_asked_for() -> None:
    q = "政务服务好评率的目标值是多少？"
    s = _scores(
        q, "到2025年6月，政务服务好评率明显提升。", "政务服务好评率明显提升。", "（2021—2025年）政务服务好评率提升。"
    )
    assert s["到2025年6月，政务服务好评率明显提升。"] <= s["政务服务好评率明显提升。"]
    assert s["（2021—2025年）政务服务好评率提升。"] <= s["政务服务好评率明显提升。"]


def test_head_noun_of_what_questions() -> None:
    assert head_noun("金山准备把司法所建成什么性质的部门？") == "部门"
    assert head_noun("想拿一个什么样的全国性称号？") == "称号"
    assert head_noun("化解矛盾纠纷时哪种调解被当作第一道防线？") == "调解"
    assert head_noun("由什么部门牵头？") == "部门"  # not the verb after it
    assert head_noun("什么时候完成？") is None and head_noun("是什么意思？") is None
    assert head_noun("在什么方面取得了成效？") is None


def test_which_pairs_are_answered_by_x_and_y_items() -> None:
    q = "在行政执法上要把握哪几对关系？"
    pairs, other = "坚持执法与服务结合、惩罚与教育互济、打击与保护并重。", "行政执法关系进一步理顺，执法水平提升。"
    assert _scores(q, pairs, other)[pairs] > _scores(q, pairs, other)[other]
    plain = _scores(q, pairs, other, p=AnswerParams(mark_bonus=0.0))
    assert plain[pairs] < plain[other]


def test_ascii_quotes_pair_up_before_marks_are_read() -> None:
    q = '"一网通办"和"一网统管"分别包括哪些内容？'
    off = "完善制度和机制、规范流程和标准、强化监督和考核。"
    s = _scores(q, off, "推进“一网通办”“一网统管”建设。")
    assert s[off] < s["推进“一网通办”“一网统管”建设。"]


def test_a_who_question_prefers_the_sentence_naming_an_office() -> None:
    q = "由哪个机构加强执法监督？"
    office, plain = "发挥区行政检察监督办实效，加强执法监督。", "加强执法监督，推进执法公开。"
    assert _scores(q, office, plain)[office] > _scores(q, office, plain)[plain]
    off = _scores(q, office, plain, p=AnswerParams(who_bonus=0.0))
    assert off[office] <= off[plain]


def test_a_how_long_question_is_answered_by_a_period() -> None:
    """Regulations state periods, not dates: "十五日内" answers "多长时间内"."""
    q = "养犬人迁出居住地的，应当在多长时间内办理变更登记？"
    period, vague = (
        "养犬人迁出居住地的，应当自迁出之日起十五日内办理变更登记。",
        "养犬人迁出居住地的，应当及时办理变更登记。",
    )
    s = _scores(q, vague, period)
    assert s[period] > s[vague]
    assert s[period] > 0.35  # not pushed below the refusal threshold for lacking a calendar date


def test_days_asked_are_found_as_days_written_in_numerals() -> None:
    s = _scores(
        "登记机关应当在多少天内作出决定？", "登记机关应当依法作出决定。", "登记机关应当在七个工作日内作出决定。"
    )
    assert s["登记机关应当在七个工作日内作出决定。"] > s["登记机关应当依法作出决定。"]


def test_a_fine_in_chinese_numerals_is_a_figure() -> None:
    q = "擅自占用绿地的，罚多少钱？"
    fine = "擅自占用绿地的，由绿化部门责令限期退还，并处五千元以上五万元以下的罚款。"
    rule = "擅自占用绿地的，由绿化部门责令限期退还。"
    s = _scores(q, rule, fine)
    assert s[fine] > s[rule]
    assert s[fine] > 0.35


def test_the_document_title_says_what_its_sentences_are_about() -> None:
    """ "X条例什么时候开始施行" is answered by "本条例自…起施行", which names X only in the title."""
    chunk = Chunk("c", "d", "本条例自2021年3月1日起施行。", ("第七章 附则",), 0, "某市社区居家养老服务促进条例", "某市")
    other = Chunk("e", "f", "本市推进社区养老服务设施建设。", ("第二章 规划",), 0, "某市城市规划条例", "某市")
    scored = score_sentences(
        analyse("社区养老服务条例什么时候开始施行？"), [Hit(chunk, 1.0), Hit(other, 1.0)], {}, AnswerParams()
    )
    best = scored[0]
    assert best.sentence == "本条例自2021年3月1日起施行。"
    assert best.coverage > 0.5 and best.score > 0.35  # covered with its title, not just 条例 and 施行


def test_a_regulation_article_names_its_subject_once() -> None:
    """ "逾期不改正的，处…罚款" is about the 信报箱 its article's first sentence names."""
    text = "第二十条 新建住宅应当设置信报箱。未设置的，由邮政管理部门责令限期改正；逾期不改正的，处一万元以上五万元以下罚款。"
    article = Chunk("c", "d", text, ("第五章 法律责任",), 0, "某市邮政条例", "某市")
    idf = {"信报箱": 6.0, "设置": 2.0, "罚款": 1.5, "逾期": 2.5, "改正": 2.0, "住宅": 3.0}
    fine = "逾期不改正的，处一万元以上五万元以下罚款。"
    for p in (AnswerParams(), AnswerParams(anchor_penalty=0.0)):
        scored = {
            s.sentence: s.score
            for s in score_sentences(analyse("住宅不设信报箱，逾期不改正罚多少？"), [Hit(article, 1.0)], idf, p)
        }
        best = max(scored, key=lambda k: scored[k])
        assert fine in best and scored[best] > 0.35, scored  # with or without the anchor rule


def test_a_fragment_of_a_longer_word_is_no_anchor() -> None:
    """ "长时间" gives the bigram 长时, rare in the index because no text writes it alone: it must
    not stand for the topic the figure has to come with."""
    chunk = Chunk("c", "d", "第九条 常务委员会应当在会议闭会后三十日内公开审议结果。", (), 0, "某市人大条例", "某市")
    idf = {"长时": 9.0, "时间": 1.0, "公开": 2.0, "审议": 2.5, "结果": 1.5, "闭会": 4.0}
    (best,) = score_sentences(analyse("闭会后多长时间内要公开审议结果？"), [Hit(chunk, 1.0)], idf, AnswerParams())
    assert best.score > 0.35, best


def test_a_title_is_named_in_its_short_forms() -> None:
    """ "…区县人大常委会…工作条例什么时候起施行" names "…区县（自治县）人民代表大会常务委员会…工作条例"."""
    title = "某市区县（自治县）人民代表大会常务委员会街道工作委员会工作条例"
    q = analyse("某市区县人大常委会街道工作委员会工作条例什么时候起施行？")
    assert names_document(q, title)
    assert not names_document(analyse("某市街道办事处条例什么时候起施行？"), title)


def _law_chunks() -> list[Chunk]:
    title = "某省实施《中华人民共和国种子法》办法"
    return [
        Chunk(
            "a", "d", "第十条 种子生产经营者应当建立生产经营档案，保存期限不少于三年。", ("第二章",), 0, title, "某省"
        ),
        Chunk(
            "b",
            "d",
            "第三十条 本办法自2022年5月1日起施行。《某省农作物种子条例》同时废止。",
            ("第五章 附则",),
            1,
            title,
            "某省",
        ),
    ]


def test_a_repeal_question_gets_the_named_documents_own_repeal_clause() -> None:
    chunks = _law_chunks()
    hits, by_doc = [Hit(chunks[0], 1.0)], {"d": chunks}
    both = effective_answer(analyse("某省实施种子法办法什么时候起施行？同时废止了哪部条例？"), hits, by_doc)
    assert [s.sentence.split()[-1] for s in both] == [
        "本办法自2022年5月1日起施行。",
        "《某省农作物种子条例》同时废止。",
    ]
    (repealed,) = effective_answer(analyse("某省实施《种子法》办法施行后，哪部旧条例废止了？"), hits, by_doc)
    assert repealed.sentence == "《某省农作物种子条例》同时废止。"


def test_the_implementing_in_a_title_is_not_the_asked_event() -> None:
    """ "按某省实施种子法办法，档案要保存多长时间" asks a deadline inside the text, not when it takes effect."""
    chunks = _law_chunks()
    q = analyse("按某省实施种子法办法，种子生产经营档案要保存多长时间？")
    assert effective_answer(q, [Hit(chunks[0], 1.0)], {"d": chunks}) == []


def _regulation() -> tuple[list[Hit], dict[str, list[Chunk]]]:
    title = "某市河道管理条例"
    head = "2010年5月20日某市第十三届人民代表大会常务委员会第十八次会议通过\n2018年3月1日某市第十五届人民代表大会常务委员会第二次会议第一次修正\n2022年6月2日某市第十五届人民代表大会常务委员会第四十次会议第二次修正"
    chunks = [
        Chunk("h", "d", head, ("前言",), 0, title, "某市"),
        Chunk(
            "a",
            "d",
            "第一条 为了加强河道管理，保障防洪安全，结合本市实际，制定本条例。",
            ("第一章 总则",),
            1,
            title,
            "某市",
        ),
        Chunk(
            "b", "d", "第二条 本条例适用于本市行政区域内河道的整治、利用和保护。", ("第一章 总则",), 2, title, "某市"
        ),
        Chunk(
            "c", "d", "第十条 在河道管理范围内修建码头的，应当报市水务部门批准。", ("第二章 整治",), 3, title, "某市"
        ),
    ]
    return [Hit(chunks[3], 1.0)], {"d": chunks}


@pytest.mark.parametrize(
    ("question", "clause"),
    [
        ("某市河道管理条例是哪次会议通过的？", "第十八次会议通过"),
        ("某市河道管理条例最近一次是什么时候修正的？", "2022年6月2日"),
        ("某市河道管理条例适用于哪些范围？", "本条例适用于"),
        ("某市河道管理条例的立法目的是什么？", "为了加强河道管理"),
    ],
)
def test_a_documents_own_clauses_answer_what_is_asked_of_it(question: str, clause: str) -> None:
    hits, by_doc = _regulation()
    (found,) = effective_answer(analyse(question), hits, by_doc)
    assert clause in found.sentence


def test_what_an_article_asks_approved_is_not_the_adoption() -> None:
    hits, by_doc = _regulation()
    assert effective_answer(analyse("按某市河道管理条例，在河道里修建码头由谁批准？"), hits, by_doc) == []
    amended = effective_answer(analyse("某市河道管理条例修正过几次？"), hits, by_doc)
    assert [s.sentence[-5:] for s in amended] == ["第一次修正", "第二次修正"]


def test_a_repeal_the_named_document_never_makes_is_unstated() -> None:
    hits, by_doc = _regulation()
    assert repeal_unstated(analyse("某市河道管理条例施行后，哪部旧条例同时废止了？"), hits, by_doc)
    law = _law_chunks()
    assert not repeal_unstated(analyse("某省实施种子法办法施行后哪部条例废止了？"), [Hit(law[0], 1.0)], {"d": law})
