"""Choose and fit the retrieval model of a build: learned two-tower, or text content alone.

``auto`` trains the two-tower model when there are interactions enough to learn from and
falls back to the content model otherwise (a new catalog with no history yet). A two-tower
model must beat popularity on a validation split of the build's own data, or the build fails
rather than publish it; its validation numbers and parameters go into the manifest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tastebud.embed.user_tower import UserTower, content_index_vectors, content_tower
from tastebud.errors import InvalidInputError, ModelValidationError
from tastebud.server.features import FEATURE_NAMES
from tastebud.train.cache import ModelCache, training_key
from tastebud.train.item_features import catalog_features
from tastebud.train.ranker import PseudoNewItems, RankerConfig, pseudo_new_items, train_ranker
from tastebud.train.sequences import Sequences, without_items
from tastebud.train.two_tower import TwoTowerConfig, TwoTowerWeights, train_two_tower
from tastebud.train.validation import holdout_split, popularity_scores, ranking_metrics

log = logging.getLogger(__name__)

KINDS = ("auto", "two_tower", "content")
MIN_EVENTS_TO_LEARN = 1000
MIN_USERS_TO_LEARN = 20
MIN_HISTORY_TO_VALIDATE = 5  # users with fewer events are never held out (the protocol's rule)
TASTE_WEIGHT = 1.0
SHORT_HISTORY = 3  # the validation's "new user" view: only this many most recent items are known
# Part of every cache key: bump it when training code changes what a given input produces.
TRAINER_VERSION = 10


@dataclass(frozen=True, slots=True)
class CatalogSignals:
    """The catalog facts the re-ranker's features and the item tower use: years and filterable
    attributes."""

    years: npt.NDArray[np.int32]
    attributes: dict[str, list[tuple[str, ...]]]

    def fingerprint(self) -> str:
        """sha256 of the years and attributes: part of the model cache key, since the re-ranker's
        features and the item tower's inputs are computed from them."""
        digest = hashlib.sha256(np.ascontiguousarray(self.years, dtype=np.int32).tobytes())
        digest.update(json.dumps(sorted(self.attributes.items())).encode())
        return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class RetrievalModel:
    """Index vectors [n, D] (searched), query-side vectors [n, d] (pooled into users), the tower."""

    kind: str
    index_vectors: npt.NDArray[np.float32]
    query_vectors: npt.NDArray[np.float32]
    tower: UserTower
    info: dict[str, Any] = field(default_factory=dict)
    ranker: str | None = None


def content_model(text_vectors: npt.NDArray[np.float32], popularity: npt.NDArray[np.float32]) -> RetrievalModel:
    vectors = content_index_vectors(text_vectors, popularity)
    return RetrievalModel("content", vectors, np.ascontiguousarray(text_vectors, dtype=np.float32), content_tower(),
                          {"kind": "content", "dimension": int(vectors.shape[1])})


def _tower(weights: TwoTowerWeights) -> UserTower:
    return UserTower(weights.recency_weights, weights.text_projection, normalize=False, taste_weight=TASTE_WEIGHT)


def history_scorer(weights: TwoTowerWeights):
    """score(user, history) -> every item's score, as serving's user tower gives it."""
    tower = _tower(weights)

    def score(_: int, history: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        recent = history[-tower.history_length:]
        return weights.index_vectors @ tower.query(tower.user_vector(weights.query_vectors[recent]))
    return score


def two_tower_model(text_vectors: npt.NDArray[np.float32], seqs: Sequences, config: TwoTowerConfig,
                    cache_dir: Path | None, progress: bool = False, *, catalog: CatalogSignals | None = None,
                    ranker_config: RankerConfig | None = None) -> RetrievalModel:
    """Validate on a held-out tail (and train the re-ranker there), then train on everything.

    Cached by the exact training data and configuration."""
    # the ranker's feature names too: a ranker cached before a feature was added cannot be served
    settings = {"trainer_version": TRAINER_VERSION, "two_tower": config.as_dict(),
                "ranker": ranker_config.as_dict() if ranker_config else None,
                "ranker_features": list(FEATURE_NAMES) if ranker_config else None,
                "catalog": catalog.fingerprint() if catalog is not None else None}
    catalog_inputs = catalog_features(catalog.attributes, catalog.years) \
        if catalog is not None and config.catalog_features else None
    if catalog_inputs is not None and not catalog_inputs.shape[1]:
        catalog_inputs = None  # nothing to add: train exactly as without them
    key = training_key(seqs.fingerprint(), text_vectors, settings, catalog_inputs)
    cache = ModelCache(cache_dir) if cache_dir is not None else None
    cached = cache.get(key) if cache is not None else None
    if cached is not None:
        arrays, meta = cached
        weights = TwoTowerWeights(arrays["index_vectors"], arrays["query_vectors"], arrays["recency_weights"],
                                  arrays["text_projection"], float(meta["final_loss"]), float(meta["seconds"]))
        validation = meta["validation"]
        ranker = meta.get("ranker")
    else:
        holdout = holdout_split(seqs)
        if not holdout.targets:
            raise ModelValidationError(
                f"cannot validate the two-tower model: no user has {MIN_HISTORY_TO_VALIDATE} or more interactions; "
                "use --retrieval content (or auto), or give it more interactions")
        log.info("two-tower: validating on the last 20%% of %d users' histories", len(holdout.targets))
        trial = train_two_tower(text_vectors, holdout.prefix, config, progress, item_features=catalog_inputs)
        score = history_scorer(trial)
        model_metrics = ranking_metrics(score, holdout)
        popular = popularity_scores(holdout.prefix)
        popularity_metrics = ranking_metrics(lambda _u, _h: popular, holdout)
        # The protocol's new users: the model is given only the last few items of the prefix.
        short_metrics = ranking_metrics(lambda u, h: score(u, h[-SHORT_HISTORY:]), holdout)
        validation = {"model": model_metrics, "popularity": popularity_metrics,
                      f"model_last_{SHORT_HISTORY}": short_metrics, "seconds": round(trial.seconds, 2)}
        log.info("two-tower validation NDCG@10 %.4f vs popularity %.4f", model_metrics["ndcg@10"],
                 popularity_metrics["ndcg@10"])
        if model_metrics["ndcg@10"] <= popularity_metrics["ndcg@10"]:
            raise ModelValidationError(
                f"the two-tower model does worse than popularity on validation (NDCG@10 "
                f"{model_metrics['ndcg@10']:.4f} <= {popularity_metrics['ndcg@10']:.4f}); not publishing it. "
                "Use --retrieval content, or give it more interactions")
        ranker = None
        if ranker_config is not None and catalog is not None:
            started = time.perf_counter()
            pseudo_new = _pseudo_new_items(text_vectors, catalog_inputs, holdout.prefix, config, ranker_config,
                                           progress)
            ranker, validation["ranker"] = train_ranker(
                holdout, _tower(trial), trial.index_vectors, trial.query_vectors, text_vectors, catalog.years,
                catalog.attributes, ranker_config, pseudo_new)
            # the pseudo-new model's training and the LightGBM fit, in wall time
            validation["ranker_seconds"] = round(time.perf_counter() - started, 2)
        weights = train_two_tower(text_vectors, seqs, config, progress, item_features=catalog_inputs)
        if cache is not None:
            cache.put(key, {"index_vectors": weights.index_vectors, "query_vectors": weights.query_vectors,
                            "recency_weights": weights.recency_weights, "text_projection": weights.text_projection},
                      {"final_loss": weights.final_loss, "seconds": weights.seconds, "validation": validation,
                       "ranker": ranker})
    info = {"kind": "two_tower", "dimension": int(weights.index_vectors.shape[1]), "config": config.as_dict(),
            "validation": validation, "training_seconds": round(weights.seconds, 2),
            "final_loss": round(weights.final_loss, 4), "training_key": key,
            "recency_weights_first10": [round(float(w), 3)  # the members' mean, for an ensemble
                                        for w in np.atleast_2d(weights.recency_weights).mean(0)[:10]]}
    return RetrievalModel("two_tower", weights.index_vectors, weights.query_vectors, _tower(weights), info, ranker)


def _pseudo_new_items(text_vectors: npt.NDArray[np.float32], catalog_inputs: npt.NDArray[np.float32] | None,
                      prefix: Sequences, config: TwoTowerConfig, ranker_config: RankerConfig, progress: bool
                      ) -> PseudoNewItems | None:
    """The re-ranker's pseudo-new items, with the validation model retrained without them; None
    when there are none, or too little left to train on (the ranker then has no cold groups)."""
    new = pseudo_new_items(prefix, ranker_config)
    if not new.any():
        return None
    log.info("re-ranker: retraining the validation model without %d pseudo-new items", int(new.sum()))
    try:
        without = train_two_tower(text_vectors, without_items(prefix, new), config, progress,
                                  item_features=catalog_inputs)
    except InvalidInputError as exc:
        log.info("re-ranker: no pseudo-new groups (%s)", exc)
        return None
    return PseudoNewItems(new, _tower(without), without.index_vectors, without.query_vectors)


def fit_retrieval(kind: str, text_vectors: npt.NDArray[np.float32], seqs: Sequences,
                  popularity: npt.NDArray[np.float32], config: TwoTowerConfig, cache_dir: Path | None,
                  progress: bool = False, *, catalog: CatalogSignals | None = None,
                  ranker_config: RankerConfig | None = None) -> RetrievalModel:
    """The retrieval model of a build, by ``kind`` (auto, two_tower, content)."""
    if kind not in KINDS:
        raise InvalidInputError(f"--retrieval must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "auto":
        lengths = np.diff(seqs.offsets)
        enough = len(seqs.items) >= MIN_EVENTS_TO_LEARN and len(seqs) >= MIN_USERS_TO_LEARN and \
            bool((lengths >= MIN_HISTORY_TO_VALIDATE).any())
        kind = "two_tower" if enough else "content"
        if not enough:
            log.info("only %d events of %d users: using the content model (two-tower needs >= %d events, "
                     ">= %d users)", len(seqs.items), len(seqs), MIN_EVENTS_TO_LEARN, MIN_USERS_TO_LEARN)
    if kind == "content":
        return content_model(text_vectors, popularity)
    return two_tower_model(text_vectors, seqs, config, cache_dir, progress, catalog=catalog,
                           ranker_config=ranker_config)
