from collections.abc import Iterator

import pytest
from conftest import pipeline_over

from rag.answer.article import chinese_number
from rag.answer.pipeline import Pipeline
from rag.index.embed import Embedder


@pytest.mark.parametrize(
    ("n", "written"), [(7, "七"), (10, "十"), (16, "十六"), (40, "四十"), (108, "一百零八"), (112, "一百一十二")]
)
def test_article_numbers_are_written_as_the_documents_write_them(n: int, written: str) -> None:
    assert chinese_number(n) == written


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Pipeline]:
    lifts = (
        "某市电梯安全管理条例\n"
        "第一条 为了加强电梯安全管理，制定本条例。\n"
        "第五条 电梯使用单位应当每十五日对电梯进行一次清洁、润滑、调整和检查。\n"
        "第六条 电梯维护保养单位接到故障通知后，应当在三十分钟内到达现场。\n"
        "第七条 电梯发生困人故障的，维护保养单位应当在三十分钟内抵达，并设置警示标志，疏导乘客。\n"
        "第八条 违反本条例第五条规定的，由市场监督管理部门责令改正，处二千元以上二万元以下罚款。\n"
    )
    with pipeline_over(tmp_path_factory.mktemp("articles"), embedder, {"lifts.txt": lifts}) as p:
        yield p


def test_an_article_asked_generically_is_quoted_whole(pipe: Pipeline) -> None:
    a = pipe.ask("某市电梯安全管理条例第7条规定了什么？")
    assert not a.abstained and "困人故障" in a.answer and "疏导乘客" in a.answer, a.answer
    assert a.citations[0].chunk.section_path[-1] == "第七条"


def test_a_fact_is_taken_from_the_named_article_or_one_citing_it(pipe: Pipeline) -> None:
    a = pipe.ask("按某市电梯安全管理条例第五条，电梯多少日要检查一次？")
    assert not a.abstained and "十五日" in a.answer, a.answer
    fine = pipe.ask("违反某市电梯安全管理条例第五条的，罚多少钱？")
    assert not fine.abstained and "二千元以上二万元以下" in fine.answer, fine.answer


def test_an_article_past_the_last_is_refused(pipe: Pipeline) -> None:
    a = pipe.ask("某市电梯安全管理条例第三十条规定了什么？")
    assert a.abstained and not a.citations, a.answer
