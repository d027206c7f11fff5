"""The retrieval model: a two-tower network over text embeddings and item ids, in PyTorch.

Item tower:  p_j = A t_j + drop(e_j),   bias b_j = c . t_j + drop(beta_j)
Query side:  q_i = B t_i + drop(f_i)    (each history item's contribution to a user)
User tower:  u = sum_k w_k q_(h_k) / sum_k w_k over the last L history items, where w_k is a
             learned weight per recency position (softplus; position 0 = most recent).
Score:       s(u, j) = u . p_j + b_j, i.e. the inner product of [u, 1] and [p_j, b_j]: one
             ANN search over the index vectors [p_j, b_j] serves it.

``t`` are the frozen sentence-transformer embeddings of the items' text; the item tower (A, c)
also reads the catalog's attribute values and release-year bins, as columns of their own beside
``t``, when the build passes ``item_features`` (``train.item_features``). The query side (B)
reads the text alone, as a free-text taste does: given the catalog columns too, B learnt less
genre from text, and genre tastes on the demo data fell from 0.86 to 0.68 of their top 10 in
the genre (retrieval order, the way taste-only requests are served). The id embeddings
(``e``, ``f``, ``beta``) are dropped at random in training (``id_dropout``), and a second loss
scores with the id-free parts alone (``content_loss``: text and catalog inputs), so an item
never seen in training still gets a good vector from its metadata: a new release is
retrievable at once. Histories are cut to their last 1-5 items at random (``short_history``)
so the model also serves users with almost no history. A user with no history at all scores
b_j: a learned popularity prior. Training is next-item prediction with a softmax over all
items (sampled negatives above ``full_softmax_max`` items), the user's own history masked out.
CPU, seeded, deterministic.

Ensemble: ``members`` models (seeds seed, seed+1, ...) are trained and served as one, their
query blocks side by side and item blocks scaled by 1/K (:func:`ensemble`): one search scores
the mean of their scores. On the build's validation split of MovieLens 100K train data
(NDCG@10 / with only the last 3 history items / Coverage@10; measured before the catalog
inputs): one 64-d model 0.2465 / 0.2148 / 0.250, three 64-d members 0.2555 / 0.2245 / 0.250,
three 128-d members (the default) 0.2612 / 0.2248 / 0.284, for 3x the training time and an
index of 3 x 128 + 1 dimensions.

The user tower is a weighted mean: serving runs it in numpy (``embed.user_tower``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import numpy.typing as npt

from tastebud.errors import InvalidInputError
from tastebud.train.new_items import neighbour_blended_vectors
from tastebud.train.sequences import Sequences

log = logging.getLogger(__name__)


NEIGHBOUR_SPACES = ("inputs", "text")


@dataclass(frozen=True, slots=True)
class TwoTowerConfig:
    """Hyper-parameters; the defaults were chosen on a validation split of MovieLens 100K train data."""

    dim: int = 128
    history: int = 50
    epochs: int = 10
    batch_size: int = 1024
    learning_rate: float = 3e-3
    id_dropout: float = 0.3
    content_loss: float = 0.5
    members: int = 3
    short_history: float = 0.3
    # Items without interactions: blend with this many neighbours' learned vectors (0: off)
    new_item_neighbours: int = 20
    new_item_blend: float = 0.5
    # Where new items find those neighbours: "inputs" (the item tower's inputs: text and catalog
    # columns) or "text" (the sentence embedding alone)
    new_item_neighbour_space: str = "inputs"
    # Catalog attribute values and year bins as item-tower inputs beside the text (train.item_features)
    catalog_features: bool = True
    full_softmax_max: int = 50_000
    sampled_negatives: int = 4096
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        checks = {"dim": (1, 4096), "members": (1, 16), "history": (1, 10_000), "epochs": (1, 1000),
                  "batch_size": (1, 1 << 20), "full_softmax_max": (1, 1 << 30), "sampled_negatives": (1, 1 << 24),
                  "threads": (0, 256), "new_item_neighbours": (0, 10_000)}
        for name, (lo, hi) in checks.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise InvalidInputError(f"two-tower {name} must be within {lo}..{hi}, got {value}")
        for name in ("id_dropout", "short_history"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise InvalidInputError(f"two-tower {name} must be within [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.new_item_blend <= 1.0:
            raise InvalidInputError(f"two-tower new_item_blend must be within [0, 1], got {self.new_item_blend}")
        if self.new_item_neighbour_space not in NEIGHBOUR_SPACES:
            raise InvalidInputError(f"two-tower new_item_neighbour_space must be one of {', '.join(NEIGHBOUR_SPACES)}, "
                                    f"got {self.new_item_neighbour_space!r}")
        if self.learning_rate <= 0 or self.content_loss < 0:
            raise InvalidInputError("two-tower learning_rate must be > 0 and content_loss >= 0")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TwoTowerWeights:
    """What serving needs, as numpy: item vectors with their bias column, query-side vectors,
    recency weights (most recent first), and the text projection of the query side (for a
    free-text taste). Shapes: [n, d+1], [n, d], [L], [text_dim, d];
    an ensemble of K members has d = K x dim and recency weights [K, L].

    ``torch_user_vector(history)`` (item rows, oldest first -> u float32[d]) runs the training
    code's own pooling over the trained model, so tests can pin serving's numpy user tower to
    it; it is only set on freshly trained weights (None when loaded from the model cache), as is
    ``text_index_vectors``: every item's id-free vector [A t_j, c . t_j] (from its text and
    catalog inputs), what an item never seen in training gets before its neighbours are
    blended in (for tests and diagnostics)."""

    index_vectors: npt.NDArray[np.float32]
    query_vectors: npt.NDArray[np.float32]
    recency_weights: npt.NDArray[np.float32]
    text_projection: npt.NDArray[np.float32]
    final_loss: float
    seconds: float
    text_index_vectors: npt.NDArray[np.float32] | None = field(default=None, repr=False, compare=False)
    torch_user_vector: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float32]] | None = field(
        default=None, repr=False, compare=False)


def _examples(seqs: Sequences, history: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(history rows [m, L] left-padded with n, next item [m]) for every position of every user."""
    n, pad = seqs.n_items, seqs.n_items
    hist, target = [], []
    for u in range(len(seqs)):
        s = seqs.of(u)
        for t in range(1, len(s)):
            h = s[max(0, t - history):t]
            hist.append(np.concatenate([np.full(history - len(h), pad, dtype=np.int64), h]))
            target.append(s[t])
    if not target:
        raise InvalidInputError("no user has two or more interactions: nothing to learn a next item from")
    del n
    return np.stack(hist), np.array(target, dtype=np.int64)


def train_two_tower(text_vectors: npt.NDArray[np.float32], seqs: Sequences, config: TwoTowerConfig,
                    progress: bool = False, *, item_features: npt.NDArray[np.float32] | None = None
                    ) -> TwoTowerWeights:
    """Fit the model on ``seqs`` (item rows index ``text_vectors``); returns numpy weights.

    ``item_features`` (float32[n, m], ``train.item_features``) are more item-tower inputs
    (A, c), appended to the text embedding; the query side reads the text only. With
    ``config.members`` K > 1, K models are trained with seeds seed, seed+1, ... and served as
    one (:func:`ensemble`). Items that were never a next item in ``seqs`` get their id-free
    vector blended with their nearest items' (by these inputs, or by text with
    ``new_item_neighbour_space="text"``; ``train.new_items``)."""
    inputs = text_vectors
    if item_features is not None and item_features.shape[1]:
        if len(item_features) != len(text_vectors):
            raise InvalidInputError(f"item features have {len(item_features)} rows, the catalog {len(text_vectors)}")
        inputs = np.concatenate([text_vectors, item_features], axis=1).astype(np.float32)
    text_dim = text_vectors.shape[1]
    if config.members == 1:
        weights = _train_member(inputs, seqs, config, progress, "two-tower", text_dim)
    else:
        weights = ensemble([_train_member(inputs, seqs, replace(config, seed=config.seed + k), progress,
                                          f"two-tower {k + 1}/{config.members}", text_dim)
                            for k in range(config.members)])
    learned = learned_items(seqs)
    space = inputs if config.new_item_neighbour_space == "inputs" else text_vectors
    return replace(weights, index_vectors=neighbour_blended_vectors(
        space, weights.index_vectors, ~learned, learned, config.new_item_neighbours, config.new_item_blend))


def learned_items(seqs: Sequences) -> npt.NDArray[np.bool_]:
    """Items that are some user's next item (not only a first one): those whose id embeddings
    training fits. Every other item gets its vector from its text and catalog inputs
    (:func:`_train_member`), blended with its neighbours' by :func:`train_two_tower`."""
    not_first = np.ones(len(seqs.items), dtype=bool)
    not_first[seqs.offsets[:-1][np.diff(seqs.offsets) > 0]] = False
    learned = np.zeros(seqs.n_items, dtype=bool)
    learned[seqs.items[not_first]] = True
    return learned


def ensemble(members: Sequence[TwoTowerWeights]) -> TwoTowerWeights:
    """K trained models as one: query blocks side by side, item blocks scaled by 1/K and the
    biases averaged, so [u_1 | ... | u_K, 1] . [p_1/K | ... | p_K/K, mean b] is the mean of the
    members' scores (one search); recency weights [K, L], one row per member."""
    k = len(members)

    def items(vectors: list[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        blocks = [v[:, :-1] / k for v in vectors]
        bias = np.mean([v[:, -1] for v in vectors], axis=0)[:, None]
        return np.ascontiguousarray(np.concatenate([*blocks, bias], axis=1), dtype=np.float32)

    text_index = [m.text_index_vectors for m in members]
    users = [m.torch_user_vector for m in members]
    return TwoTowerWeights(
        items([m.index_vectors for m in members]),
        np.ascontiguousarray(np.concatenate([m.query_vectors for m in members], axis=1), dtype=np.float32),
        np.stack([m.recency_weights for m in members]).astype(np.float32),
        np.ascontiguousarray(np.concatenate([m.text_projection for m in members], axis=1), dtype=np.float32),
        float(np.mean([m.final_loss for m in members])), float(sum(m.seconds for m in members)),
        items(text_index) if all(t is not None for t in text_index) else None,
        (lambda history: np.concatenate([f(history) for f in users]))
        if all(f is not None for f in users) else None)


def _train_member(inputs: npt.NDArray[np.float32], seqs: Sequences, config: TwoTowerConfig,
                  progress: bool, label: str, text_dim: int) -> TwoTowerWeights:
    """One model of the ensemble, with ``config.seed``; ``inputs`` are the item-tower inputs,
    their first ``text_dim`` columns the text embedding (all the query side reads)."""
    import torch
    from tqdm.auto import tqdm

    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    n, input_dim = inputs.shape
    L, d = config.history, config.dim
    hist_np, target_np = _examples(seqs, L)
    hist_all, target_all = torch.from_numpy(hist_np), torch.from_numpy(target_np)
    item_inputs = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    item_text = item_inputs[:, :text_dim]
    # Items no one interacted with have nothing to learn an id embedding from (only noise, as
    # negatives): their id parts stay off, in training and in the exported vectors.
    has_events = torch.from_numpy(np.bincount(seqs.items, minlength=n) > 0).float()[:, None]

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.A = torch.nn.Linear(input_dim, d, bias=False)
            # The query side reads the text alone, as a free-text taste (text only) is projected by B
            self.B = torch.nn.Linear(text_dim, d, bias=False)
            self.c = torch.nn.Linear(input_dim, 1)
            self.e = torch.nn.Embedding(n, d)
            self.f = torch.nn.Embedding(n, d)
            self.beta = torch.nn.Embedding(n, 1)
            for emb in (self.e, self.f):
                torch.nn.init.normal_(emb.weight, std=0.01)
            torch.nn.init.zeros_(self.beta.weight)
            self.recency = torch.nn.Parameter(torch.zeros(L))  # index 0 = most recent

        def towers(self, keep: "torch.Tensor"):
            p = self.A(item_inputs) + keep * self.e.weight
            b = self.c(item_inputs).squeeze(1) + keep.squeeze(1) * self.beta.weight[:, 0]
            q = self.B(item_text) + keep * self.f.weight
            return p, b, q

        def weights(self) -> "torch.Tensor":
            return torch.nn.functional.softplus(self.recency)

        def user(self, q: "torch.Tensor", hist: "torch.Tensor") -> "torch.Tensor":
            q_padded = torch.cat([q, torch.zeros(1, d)])
            w = self.weights().flip(0)[None, :] * (hist < n).float()  # hist is oldest..newest
            return (w[:, :, None] * q_padded[hist]).sum(1) / w.sum(1, keepdim=True).clamp_min(1e-6)

    model = Model()
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    sampled = n > config.full_softmax_max
    generator = torch.Generator().manual_seed(config.seed)
    total_loss, seen = 0.0, 0
    bar = tqdm(total=config.epochs, desc=label, unit="epoch", disable=not progress)
    for _ in range(config.epochs):
        total_loss, seen = 0.0, 0
        order = torch.randperm(len(target_all), generator=generator)
        for start in range(0, len(order), config.batch_size):
            idx = order[start:start + config.batch_size]
            hist, target = hist_all[idx], target_all[idx]
            if config.short_history > 0:
                keep_last = torch.randint(1, 6, (len(idx), 1), generator=generator)
                cut = (torch.rand(len(idx), 1, generator=generator) < config.short_history) & \
                      (torch.arange(L)[None, :] < L - keep_last)
                hist = hist.masked_fill(cut, n)
            keep = (torch.rand(n, 1, generator=generator) >= config.id_dropout).float() * has_events
            p, b, q = model.towers(keep)
            u = model.user(q, hist)
            if sampled:
                negatives = torch.from_numpy(rng.integers(0, n, config.sampled_negatives))
                candidates, labels = torch.unique(torch.cat([target, negatives]), return_inverse=True)
                labels = labels[: len(target)]
            else:
                candidates, labels = None, target
            loss = _softmax_loss(u, p, b, hist, labels, candidates, n)
            if config.content_loss > 0:
                p0, b0, _ = model.towers(torch.zeros(n, 1))
                loss = loss + config.content_loss * _softmax_loss(u, p0, b0, hist, labels, candidates, n)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total_loss += float(loss.detach()) * len(idx)
            seen += len(idx)
        bar.set_postfix(loss=f"{total_loss / seen:.3f}")
        bar.update()
    bar.close()
    with torch.no_grad():
        # An item that was never a target has an id embedding (e_j, beta_j) trained only as a
        # negative, and one never in a history an untrained f_j: export those from text alone,
        # the id-dropped state the model was trained to serve (a new release is not buried).
        as_target = torch.from_numpy(learned_items(seqs)).float()[:, None]
        in_history = torch.zeros(n + 1, 1).index_fill_(0, hist_all.flatten(), 1.0)[:n]
        p, b, _ = model.towers(as_target)
        q = model.towers(in_history)[2]
        p0, b0, _ = model.towers(torch.zeros(n, 1))
        weights = model.weights().numpy().astype(np.float32)
        projection = model.B.weight.T.numpy().astype(np.float32)
    index_vectors = np.concatenate([p.numpy(), b.numpy()[:, None]], axis=1).astype(np.float32)
    text_index_vectors = np.concatenate([p0.numpy(), b0.numpy()[:, None]], axis=1).astype(np.float32)
    seconds = time.perf_counter() - started
    log.info("two-tower: %d examples, %d epochs, loss %.3f, %.1fs", len(target_all), config.epochs,
             total_loss / max(seen, 1), seconds)

    def torch_user_vector(history: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        recent = np.asarray(history, dtype=np.int64)[-L:]
        padded = np.concatenate([np.full(L - len(recent), n, dtype=np.int64), recent])
        with torch.no_grad():
            return model.user(q, torch.from_numpy(padded)[None, :])[0].numpy().astype(np.float32)

    return TwoTowerWeights(np.ascontiguousarray(index_vectors), np.ascontiguousarray(q.numpy().astype(np.float32)),
                           weights, np.ascontiguousarray(projection), total_loss / max(seen, 1), seconds,
                           np.ascontiguousarray(text_index_vectors), torch_user_vector)


def _softmax_loss(u, p, b, hist, labels, candidates, n: int):
    """Cross-entropy of the next item against all (or sampled) items, history items masked."""
    import torch

    if candidates is None:
        logits = u @ p.T + b
        history_mask = torch.zeros_like(logits, dtype=torch.bool)
        safe = hist.clamp_max(n - 1)
        history_mask.scatter_(1, safe, hist < n)
    else:
        logits = u @ p[candidates].T + b[candidates]
        history_mask = (hist[:, :, None] == candidates[None, None, :]).any(1)
    target_mask = torch.zeros_like(history_mask)
    target_mask[torch.arange(len(labels)), labels] = True
    logits = logits.masked_fill(history_mask & ~target_mask, -1e9)
    return torch.nn.functional.cross_entropy(logits, labels)
