"""The learned re-ranker: LightGBM LambdaRank over the retrieval model's top candidates.

Trained only on the build's own data, on the validation split the two-tower model already
made: the model trained on each user's history prefix retrieves candidates, and a candidate
is relevant when it is in that user's held-out tail. Item signals (popularity, co-occurrence
neighbours) are computed from the prefixes alone, so no feature sees the labels. The ranker
gets its own split of those users (``validation_fraction``) for early stopping and for the
number that decides whether it is used at all: it must beat retrieval order on NDCG@10.
Lists of pseudo-new items (``cold_fraction`` of the items stripped of their interactions, and
scored by the validation model retrained without them) are trained on too, and decide apart
whether the server re-orders lists of new items only. The ranker's training users rank one
half of those items and its validation users the other half: a real new release is an item
the ranker has never seen, and with shared items it could learn which of them the held-out
period liked from their year and text, a lift that no new release would get.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from tastebud.embed.user_tower import UserTower
from tastebud.errors import InvalidInputError
from tastebud.evaluate.metrics import list_metrics
from tastebud.server.features import FEATURE_NAMES, ItemSignals, UserContext, candidate_features
from tastebud.train.item_item import cooccurrence_neighbours, ease_neighbours
from tastebud.train.sequences import Sequences
from tastebud.train.validation import Holdout

log = logging.getLogger(__name__)

K = 10


@dataclass(frozen=True, slots=True)
class RankerConfig:
    candidates: int = 100  # as many as the server retrieves (RecommenderConfig.min_candidates)
    n_estimators: int = 400
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 20
    validation_fraction: float = 0.2
    early_stopping: int = 40
    short_history: int = 3
    # > 0: also train on pseudo-cold groups (see train_ranker; it costs the build one more
    # training of the model); the ranker then re-orders lists of new items too, where it beats
    # their retrieval order on those groups. Training and validation users each rank one half,
    # so each list is drawn from a tenth of the items.
    cold_fraction: float = 0.2
    seed: int = 0
    # Publish it even when it does not beat retrieval order on validation (tests of the serving
    # path with a ranker use this: on small data the decision can go either way).
    always_publish: bool = False

    def __post_init__(self) -> None:
        if not 10 <= self.candidates <= 5000:
            raise InvalidInputError(f"ranker candidates must be within 10..5000, got {self.candidates}")
        if not 0.05 <= self.validation_fraction <= 0.5:
            raise InvalidInputError(f"ranker validation_fraction must be within 0.05..0.5, got {self.validation_fraction}")
        if not 0.0 <= self.cold_fraction <= 0.5:
            raise InvalidInputError(f"ranker cold_fraction must be within 0..0.5, got {self.cold_fraction}")

    def as_dict(self) -> dict:
        return asdict(self)


def attribute_codes(attributes: dict[str, list[tuple[str, ...]]], n_items: int
                    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]:
    """Integer codes of every item's (attribute, value) pairs as CSR (offsets [n+1], codes), and
    the number of distinct codes."""
    code_of: dict[tuple[str, str], int] = {}
    per_item: list[list[int]] = [[] for _ in range(n_items)]
    for name in sorted(attributes):
        for row, values in enumerate(attributes[name]):
            for value in values:
                per_item[row].append(code_of.setdefault((name, value), len(code_of)))
    offsets = np.zeros(n_items + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(c) for c in per_item])
    codes = np.array([c for item in per_item for c in item], dtype=np.int64)
    return offsets, codes, len(code_of)


def item_signals(seqs: Sequences, years: npt.NDArray[np.int32], attributes: dict[str, list[tuple[str, ...]]]
                 ) -> ItemSignals:
    """Signals of every item from these sequences (and the catalog's years and attributes)."""
    offsets, codes, n_codes = attribute_codes(attributes, seqs.n_items)
    histories = [seqs.of(u) for u in range(len(seqs))]
    popularity = np.bincount(seqs.items, minlength=seqs.n_items).astype(np.float32)
    return ItemSignals(popularity, np.asarray(years, dtype=np.int32), offsets, codes, n_codes,
                       cooccurrence_neighbours(histories, seqs.n_items), ease_neighbours(histories, seqs.n_items))


def _ndcg(ranked: npt.NDArray[np.int64], relevant: set[int]) -> float:
    return list_metrics(ranked.tolist(), relevant, K)[1]


def _user_rows(signals: ItemSignals, tower: UserTower, index_vectors: npt.NDArray[np.float32],
               query_vectors: npt.NDArray[np.float32], text_vectors: npt.NDArray[np.float32],
               history: npt.NDArray[np.int64], exclude: npt.NDArray[np.int64], n_candidates: int,
               restrict: npt.NDArray[np.bool_] | None = None
               ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    recent = history[-tower.history_length:]
    weights = tower.weights_for(len(recent))
    user = tower.user_vector(query_vectors[recent]) if len(recent) else np.zeros(query_vectors.shape[1], np.float32)
    scores = index_vectors @ tower.query(user)
    scores[exclude] = -np.inf
    if restrict is not None:
        scores[~restrict] = -np.inf
    n_candidates = min(n_candidates, int(np.isfinite(scores).sum()))
    if n_candidates == 0:
        return np.zeros(0, np.int64), np.zeros((0, len(FEATURE_NAMES)), np.float32)
    top = np.argpartition(-scores, n_candidates - 1)[:n_candidates]
    top = top[np.lexsort((top, -scores[top]))]
    context = UserContext(recent, weights, text_vectors[recent], user)
    features = candidate_features(signals, context, top.astype(np.int64), scores[top].astype(np.float32),
                                  index_vectors[top], text_vectors[top])
    return top.astype(np.int64), features


def _without(signals: ItemSignals, cold: npt.NDArray[np.bool_]) -> ItemSignals:
    """``signals`` as they would be had the ``cold`` items no interactions: no popularity, in
    nobody's neighbours."""
    popularity = np.where(cold, 0.0, signals.popularity).astype(np.float32)
    return ItemSignals(popularity, signals.years, signals.code_offsets, signals.codes, signals.n_codes,
                       signals.cooccurrence.without(cold), signals.ease.without(cold))


REGIMES = ("full", "short", "cold")


@dataclass(frozen=True, slots=True)
class PseudoNewItems:
    """The re-ranker's new releases: ``items`` (a mask over item rows) stripped of their
    interactions, and the validation model retrained without them (its user tower, index and
    query vectors). Their vectors are then what a build gives real new items; the validation
    model itself was fitted to them and would make them look far easier to place than new
    releases are."""

    items: npt.NDArray[np.bool_]
    tower: UserTower
    index_vectors: npt.NDArray[np.float32]
    query_vectors: npt.NDArray[np.float32]


def pseudo_new_items(prefix: Sequences, config: RankerConfig) -> npt.NDArray[np.bool_]:
    """A seeded random ``cold_fraction`` of the items that have interactions in ``prefix``."""
    present = np.flatnonzero(np.bincount(prefix.items, minlength=prefix.n_items) > 0)
    chosen = np.random.default_rng(config.seed).permutation(present)[: int(round(config.cold_fraction * len(present)))]
    mask = np.zeros(prefix.n_items, dtype=bool)
    mask[chosen] = True
    return mask


def split_in_halves(items: npt.NDArray[np.bool_], seed: int) -> dict[bool, npt.NDArray[np.bool_]]:
    """A seeded split of the ``items`` mask into two disjoint masks, keyed False (the ranker's
    training users) and True (its validation users); the False half takes the odd one."""
    chosen = np.random.default_rng(seed).permutation(np.flatnonzero(items))
    halves = {False: np.zeros_like(items), True: np.zeros_like(items)}
    halves[True][chosen[: len(chosen) // 2]] = True
    halves[False][chosen[len(chosen) // 2:]] = True
    return halves


def train_ranker(holdout: Holdout, tower: UserTower, index_vectors: npt.NDArray[np.float32],
                 query_vectors: npt.NDArray[np.float32], text_vectors: npt.NDArray[np.float32],
                 years: npt.NDArray[np.int32], attributes: dict[str, list[tuple[str, ...]]],
                 config: RankerConfig, pseudo_new: PseudoNewItems | None = None) -> tuple[str | None, dict]:
    """(LightGBM model as text, or None when it does not beat retrieval order; metrics).

    Each held-out user makes up to three groups: the whole prefix as history ("full"), only
    its last ``short_history`` items ("short": a new user), and, with ``pseudo_new``, a "cold"
    group: those items are treated as new releases -- no popularity, no co-occurrence, out of
    every history, retrieved and scored by the model trained without them -- and only they are
    ranked, as for a catalog's newest items (training users rank one half of them, validation
    users the other: ``split_in_halves``). Without that the ranker never sees items without
    interactions and scores them by the "no data" values of its interaction features."""
    import lightgbm

    signals = item_signals(holdout.prefix, years, attributes)
    n_candidates = min(config.candidates, holdout.prefix.n_items - 1)
    users = sorted(u for u in holdout.targets if len(holdout.prefix.of(u)) > 0)
    if len(users) < 20 or n_candidates < K:
        return None, {"used": False, "why": f"too little data ({len(users)} users)"}
    rng = np.random.default_rng(config.seed)
    is_validation = rng.random(len(users)) < config.validation_fraction
    cold = pseudo_new.items if pseudo_new is not None else np.zeros(holdout.prefix.n_items, dtype=bool)
    cold_signals = _without(signals, cold) if cold.any() else signals
    halves = split_in_halves(cold, config.seed)  # {is_validation: the pseudo-new items its users rank}
    groups: dict[bool, list] = {False: [], True: []}
    for u, validation in zip(users, is_validation.tolist()):
        prefix = holdout.prefix.of(u)
        targets = holdout.targets[u]
        # Each user twice: with the whole prefix, and knowing only its last few items (what a
        # new user looks like), so the ranker learns both regimes.
        for regime, history in (("full", prefix), ("short", prefix[-config.short_history:])):
            rows, features = _user_rows(signals, tower, index_vectors, query_vectors, text_vectors, history,
                                        prefix, n_candidates)
            labels = np.isin(rows, targets).astype(np.int32)
            groups[validation].append((u, regime, rows, features, labels))
        if halves[validation][targets].any():
            # The user's own pseudo-cold events are gone from their history, as in a catalog
            # where those items are new; their tail events on them are the labels.
            rows, features = _user_rows(cold_signals, pseudo_new.tower, pseudo_new.index_vectors,
                                        pseudo_new.query_vectors, text_vectors, prefix[~cold[prefix]], prefix,
                                        n_candidates, restrict=halves[validation])
            if len(rows):
                groups[validation].append((u, "cold", rows, features, np.isin(rows, targets).astype(np.int32)))
    fit, valid = groups[False], groups[True]
    if not fit or not valid:
        return None, {"used": False, "why": "too few users for a validation split"}

    def stack(part: list) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32], list[int]]:
        return (np.concatenate([p[3] for p in part]), np.concatenate([p[4] for p in part]), [len(p[2]) for p in part])

    x_fit, y_fit, g_fit = stack(fit)
    x_val, y_val, g_val = stack(valid)
    ranker = lightgbm.LGBMRanker(
        objective="lambdarank", n_estimators=config.n_estimators, learning_rate=config.learning_rate,
        num_leaves=config.num_leaves, min_child_samples=config.min_child_samples, random_state=config.seed,
        deterministic=True, force_row_wise=True, n_jobs=1, verbose=-1, lambdarank_truncation_level=20)
    ranker.fit(x_fit, y_fit, group=g_fit, eval_X=(x_val,), eval_y=(y_val,), eval_group=[g_val], eval_at=[K],
               feature_name=list(FEATURE_NAMES),
               callbacks=[lightgbm.early_stopping(config.early_stopping, verbose=False)])
    per: dict[str, dict[str, list[float]]] = {r: {"retrieval": [], "ranker": [], "retrieval_recall": [],
                                                   "ranker_recall": []} for r in REGIMES}
    shown: dict[str, set[int]] = {"retrieval": set(), "ranker": set()}
    for u, regime, rows, features, _ in valid:
        targets = holdout.targets[u]
        relevant = set((targets[halves[True][targets]] if regime == "cold" else targets).tolist())
        order = np.argsort(-ranker.booster_.predict(features, num_iteration=ranker.best_iteration_ or None),
                           kind="stable")
        for name, ranked in (("retrieval", rows), ("ranker", rows[order])):
            recall, ndcg = list_metrics(ranked.tolist(), relevant, K)
            per[regime][name].append(ndcg)
            per[regime][name + "_recall"].append(recall)
            if regime == "full":
                shown[name].update(ranked[:K].tolist())
    mean = {r: {name: float(np.mean(v)) if v else 0.0 for name, v in values.items()} for r, values in per.items()}
    warm_groups = [g for r in ("full", "short") for g in zip(per[r]["retrieval"], per[r]["ranker"])]
    metrics = {"retrieval_ndcg@10": float(np.mean([g[0] for g in warm_groups])),
               "ranker_ndcg@10": float(np.mean([g[1] for g in warm_groups])),
               "by_history": {r: {"retrieval_ndcg@10": mean[r]["retrieval"], "ranker_ndcg@10": mean[r]["ranker"],
                                  "retrieval_recall@10": mean[r]["retrieval_recall"],
                                  "ranker_recall@10": mean[r]["ranker_recall"], "groups": len(per[r]["ranker"])}
                              for r in REGIMES},
               # distinct items in the validation users' top 10s (full histories) / items
               "coverage@10": {name: len(items) / holdout.prefix.n_items for name, items in shown.items()},
               "validation_users": int(is_validation.sum()), "training_users": int((~is_validation).sum()),
               "trees": int(ranker.best_iteration_ or 0), "config": config.as_dict()}
    metrics["beats_retrieval"] = metrics["ranker_ndcg@10"] > metrics["retrieval_ndcg@10"]
    metrics["used"] = metrics["beats_retrieval"] or config.always_publish
    # Lists of new items only (a new-releases shelf) get the ranker when it won on the pseudo-cold groups.
    metrics["new_items"] = bool(per["cold"]["ranker"]) and mean["cold"]["ranker"] > mean["cold"]["retrieval"]
    log.info("ranker validation NDCG@10 %.4f vs retrieval order %.4f (%s); new items NDCG@10 %.4f vs %.4f (%s)",
             metrics["ranker_ndcg@10"], metrics["retrieval_ndcg@10"], "used" if metrics["used"] else "not used",
             mean["cold"]["ranker"], mean["cold"]["retrieval"], "used" if metrics["new_items"] else "not used")
    if not metrics["used"]:
        return None, metrics
    return ranker.booster_.model_to_string(num_iteration=ranker.best_iteration_ or None), metrics
