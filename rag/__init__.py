"""政策问答 zhengce: cited Q&A over Chinese government documents; the package's public door.

Subpackages in pipeline order: core → ingest → index → query → answer → llm → serve.
Importing this package does no work: no model loads, no folders, no environment reads.
"""

from rag.answer.cite import answer_dict
from rag.answer.pipeline import Pipeline
from rag.core.errors import (
    BackendError,
    EmbedderError,
    GeneratorError,
    IndexMissingError,
    InputError,
    RagError,
    ScopeError,
    StoreError,
    UserError,
)
from rag.core.settings import Settings
from rag.core.types import Answer, Chunk, Citation, Document, Hit
from rag.ingest.build import IngestReport, ingest

__all__ = [
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
