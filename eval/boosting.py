"""What every `make train` model shares (eval/train_span.py, eval/train_select.py): our tuning
sets, and LightGBM settings with a fixed seed and row-wise, deterministic histograms, so a re-run
on 2 cores writes the same model."""

from __future__ import annotations

from typing import Any

SEED = 13
# Our regulation sets, each written from the documents alone over documents no held-out set uses.
REGULATION_SETS = ("qa_regions_dev", "qa_regions_train", "qa_shanghai_train")
TUNING_SETS = ("qa", *REGULATION_SETS)  # eval/<name>.jsonl
BOOSTING: dict[str, Any] = dict(
    learning_rate=0.05,
    min_child_samples=20,
    subsample=0.8,
    subsample_freq=1,
    colsample_bytree=0.8,
    random_state=SEED,
    n_jobs=2,
    deterministic=True,
    force_row_wise=True,
    verbose=-1,
)
