"""BM25 tokens. Character unigrams+bigrams by default (CMRC 2018 R@1 .961 vs jieba .955 measured
in issue 3, and no dictionary misses on policy jargon); jieba words as the alternative.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rag.core.text import normalise

_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[a-z0-9]+(?:[.%][0-9]+)?%?")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def char_tokens(text: str) -> list[str]:
    """CJK runs → unigrams and bigrams; Latin/digit runs → whole words."""
    text = normalise(text, keep_space=True)
    out: list[str] = []
    for m in _RUN.finditer(text):
        run = m.group()
        if _CJK.match(run):
            out.extend(run)
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            out.append(run)
    return out


def jieba_tokens(text: str) -> list[str]:
    import jieba

    text = normalise(text, keep_space=True)
    return [w for w in jieba.lcut_for_search(text) if _RUN.fullmatch(w)]


TOKENIZERS: dict[str, Callable[[str], list[str]]] = {"char": char_tokens, "jieba": jieba_tokens}


def get_tokenizer(name: str) -> Callable[[str], list[str]]:
    try:
        return TOKENIZERS[name]
    except KeyError:
        from rag.core.errors import InputError

        raise InputError(
            f"未知的分词方式 {name!r} (unknown BM25 tokens {name!r}; valid: {', '.join(TOKENIZERS)})"
        ) from None
