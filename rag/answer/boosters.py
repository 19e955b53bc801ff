"""The trained models' files (span_model.json, select_model.json): LightGBM boosters in LightGBM's
own text format inside JSON, so loading runs no pickled code, and the feature names each was
trained on, checked against the code's before anything is used."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def read_model(path: Path, features: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    """The model file at `path`; ValueError when a key of `features` names other features than
    the file was trained on (the code changed since `make train`). A key the file lacks passes."""
    d: dict[str, Any] = json.loads(path.read_text("utf-8"))
    for key, names in features.items():
        if key in d and tuple(d[key]) != names:
            raise ValueError(f"{path}: trained on other features ({key}); run `make train`")
    if "features" in features and "features" not in d:
        raise ValueError(f"{path}: no feature list; run `make train`")
    return d


def booster(model_str: str) -> Any:
    """A LightGBM booster from its text dump."""
    import lightgbm

    return lightgbm.Booster(model_str=model_str)
