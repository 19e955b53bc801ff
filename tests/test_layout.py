"""The package layout is the pipeline: lower stages never import higher ones, rag never imports gradio."""

from __future__ import annotations

import ast
from pathlib import Path

import rag

RAG = Path(rag.__file__).parent
ORDER = ["core", "ingest", "index", "query", "answer", "llm", "serve"]
# Known upward edges, each for a reason: ingest writes the index it builds.
ALLOWED = {("ingest", "index")}


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_rag_never_imports_gradio() -> None:
    for path in RAG.rglob("*.py"):
        assert not any(m.split(".")[0] == "gradio" for m in _imports(path)), path


def test_stages_import_only_earlier_stages() -> None:
    for stage in ORDER:
        for path in (RAG / stage).rglob("*.py"):
            for mod in _imports(path):
                parts = mod.split(".")
                if parts[0] != "rag" or len(parts) < 2 or parts[1] not in ORDER:
                    continue
                other = parts[1]
                later = ORDER.index(other) > ORDER.index(stage)
                assert not later or (stage, other) in ALLOWED, f"{path.relative_to(RAG)} imports {mod}"


def test_modules_say_what_they_do() -> None:
    for path in RAG.rglob("*.py"):
        doc = ast.get_docstring(ast.parse(path.read_text("utf-8")))
        assert doc and doc.strip(), f"{path.relative_to(RAG)} has no opening docstring"


PUBLIC = [
    "Answer",
    "BackendError",
    "Chunk",
    "Citation",
    "Document",
    "EmbedderError",
    "GeneratorError",
    "Hit",
    "IndexMissingError",
    "IngestReport",
    "InputError",
    "Pipeline",
    "RagError",
    "ScopeError",
    "Settings",
    "StoreError",
    "UserError",
    "answer_dict",
    "ingest",
]


def test_public_api_is_pinned() -> None:
    assert rag.__all__ == PUBLIC  # a change here is a change of the public contract
    for name in rag.__all__:
        assert getattr(rag, name) is not None
