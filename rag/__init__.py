"""政策问答 zhengce: cited Q&A over Chinese government plans.

Pipeline order: load → normalize → chunk → embed → store → retrieve → rerank/answer → cite.
Importing this package does no work: no model loads, no folders, no environment reads.
"""

from .cite import answer_dict
from .errors import (
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
from .ingest import IngestReport, ingest
from .pipeline import Pipeline
from .settings import Settings
from .types import Answer, Chunk, Citation, Document, Hit

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
