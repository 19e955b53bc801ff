"""The error tree. Everything the library raises on purpose derives from RagError.

    RagError
    ├── UserError            the caller can fix it; the message says how (中文 / English)
    │   ├── InputError       a bad file or argument: empty, binary, undecodable, unsupported, too big
    │   ├── ScopeError       a question names a district/document the index does not hold
    │   └── IndexMissingError  no index yet at the given directory: run `rag ingest` first
    └── BackendError         something we depend on failed; retrying or an operator may help
        ├── StoreError       Chroma or the BM25 files could not be read or written
        ├── EmbedderError    the embedding or reranking model could not be loaded or run
        └── GeneratorError   the LLM endpoint failed, timed out or answered garbage

Messages carry both languages because the users are Chinese civil servants and the operators
and scripts may not read Chinese.
"""

from __future__ import annotations


class RagError(Exception):
    """Base of every error raised on purpose by `rag`."""


class UserError(RagError):
    """The caller can fix it."""


class InputError(UserError):
    """A bad file or argument."""


class ScopeError(UserError):
    """The question names a district or document the index does not hold."""


class IndexMissingError(UserError):
    """No index at the directory."""


class BackendError(RagError):
    """A dependency failed."""


class StoreError(BackendError):
    """The vector or BM25 store failed."""


class EmbedderError(BackendError):
    """The embedding model failed."""


class GeneratorError(BackendError):
    """The LLM endpoint failed."""
