"""Public datasets: each file's canonical URL and SHA-256, read from a local mirror when one is
set, else from the download cache, else downloaded. Every read is checksum-verified, and the
caller is told which source was used.

Also the loaders that turn those files, or a user's own CSV/JSONL, into ``text,label`` frames.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import Settings


class DatasetError(Exception):
    """A dataset could not be obtained or read; the message says what to do."""


@dataclass(frozen=True)
class RemoteFile:
    name: str  # path under the dataset's folder in a mirror, e.g. "train.csv"
    url: str
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    license: str
    files: tuple[RemoteFile, ...]

    def file(self, name: str) -> RemoteFile:
        for remote in self.files:
            if remote.name == name:
                return remote
        raise KeyError(f"{self.name} has no file {name!r}")


_BANKING77 = (
    "https://raw.githubusercontent.com/PolyAI-LDN/task-specific-datasets/"
    "57ec275d8078af65b7731c2a98be812d844a6d6b/banking_data/"
)
_CLINC150 = (
    "https://raw.githubusercontent.com/clinc/oos-eval/"
    "828f8093932c8fe6ca7936c3d2e52903b1c523de/data/"
)
_BANKING77_OOS = (
    "https://raw.githubusercontent.com/jianguoz/Few-Shot-Intent-Detection/"
    "fa9553312b1dba54b1be0aae2d30b13171f898e5/Datasets/BANKING77-OOS/"
)
_BANKING77_OOS_SHA256 = {
    "train/seq.in": "5ba97261ce844b33e85b2af8f271927699f2ab3d79f99daac074d22abd79453d",
    "train/label": "b4cfaddcc42b3fab9668972a0060753c692285dc8dff552c9fa779c428775370",
    "valid/seq.in": "5dcde9139ca2134514ebfd7a6349a5173a8381d2502e67691a5f20b56cfa3af4",
    "valid/label": "80dc3cae40e49d97d36ef192d79ef1d3bdea242c5ff80954cdd9fc982096dcbe",
    "id-oos/train/seq.in": "cd0e24f07649f4b05ef653ca9cc62588ead95abd2b68df8f8d8081f45e53e630",
    "id-oos/train/label": "1da3c25419300c6dae3fe9c63e2b5ac08871353fd23e2ee170a9679cf1c78045",
    "id-oos/valid/seq.in": "859a89edce0e726fc914e1bc20c3405cb3393cedc956a66959c62353e05f076a",
    "id-oos/valid/label": "43de2d0f989003ddb89a7372a1ccb46a5411affd1ba2ab56b6a3ccc64a31379e",
    "ood-oos/valid/seq.in": "d1e14f587ab3a090392072be5a3dcf4255b8fbc0f85970f7e684db3ba6e84ccc",
    "ood-oos/valid/label": "1c6451b4179275857f2b21d73214035c6c735bde699322e75f07d0379ac6ca14",
}
_XSID = (
    "https://raw.githubusercontent.com/mainlp/xsid/"
    "761d926c3f2e9f6bea13192d2f39cec1d04d9777/data/xSID-0.5/"
)

_XSID_SHA256 = {
    "ar": "b06a509a5bcec84c68825c6e595890ff9a2a4b16e790bdd853d160323545d689",
    "da": "bb7be81750052d8b76970edd0363acb31b41e8edf5474d9109fb21659ae2a70e",
    "de-ba": "20ad7267760427a44e738dc8ad1e2058f1823fb41b55b57b48acea2db334efae",
    "de-st": "38114cb90ff8efc7ac2c65166058f0847d4a33692f38192f7ff8feea1a1a7ad0",
    "de": "36fa82c92a5da4b53330d38f5f0c4b80b9cdafe8b0a320d4baab6e2de8f63ef8",
    "en": "84e46e2c845744927b482cd647151e31795699cddcde61928bfde49d8c38ecd8",
    "gsw": "f413db0b8b19fe51c894f402bd3b03b6c8aafc93483ddd80c96fa08058353b5f",
    "id": "977e05b0269a349e46f8fbb90fc2d817da5da2cf218f9cc7bfa3914806d41ec2",
    "it": "26acfbc284b4c00a401531f74f596422b840e5307af84696b5c6d8c615301fb0",
    "ja": "e0ab6c083f7a1cb48b83868a7546dbd114172d9a5e25603d844e3c8a3897ab7f",
    "kk": "8c5f353c4583871acf86187087f1d350d3b4e7d0b974b897bc7175341c70a53f",
    "lt": "08058f3e4fe7ef38a5be21dd1260fe6c6eedd236772977bfda65fb5acb8c47b0",
    "nap": "fb588db87766e8a9e132ce3272992c42aad9b6f5d0c4fa54950747e1a705e7ff",
    "nl": "44f2f86d1f7ead74434d7ea7ff6905458c64c4d63119825f6a4bdc994c90ad1a",
    "sr": "ef9f1c3368b33f7b5ef2b131eb3940e7c3b538785898486c7084333dcc182b32",
    "tr": "0ac8d0d818c65eefd332f17d01f51e272ab1fce630216b7aa529291e716b83fc",
    "zh": "1b04574369210b6b652e2a5fc1a0fec86e66462988ae54b200b2fea0825a4b93",
}

DATASETS: dict[str, DatasetSpec] = {
    "banking77": DatasetSpec(
        name="banking77",
        description="10,003 train / 3,080 test online-banking queries, 77 intents",
        license="CC BY 4.0",
        files=(
            RemoteFile(
                "train.csv",
                _BANKING77 + "train.csv",
                "b06e26ac675513959a63135f11b94ea7786ed02da65db93a5650d8838cbc664b",
            ),
            RemoteFile(
                "test.csv",
                _BANKING77 + "test.csv",
                "d12d6e3bc4c3103966ae786dc435913c0c563dfa328f5a3646d0e62cfeeb474d",
            ),
            RemoteFile(
                "categories.json",
                _BANKING77 + "categories.json",
                "53261da888122daf2d120d925458631d9619e15d82e56052e7a42e535ce32b63",
            ),
        ),
    ),
    "clinc150": DatasetSpec(
        name="clinc150",
        description="150 intents in 10 domains plus out-of-scope queries",
        license="CC BY 3.0",
        files=(
            RemoteFile(
                "data_full.json",
                _CLINC150 + "data_full.json",
                "36923c3705a59e08fe9c3883d8bc2dd966ef93e22cb78ac41171782a698d56e0",
            ),
            RemoteFile(
                "domains.json",
                _CLINC150 + "domains.json",
                "b947b579d3b8e74b06f93b01083d8efaff2888b43a3e362533bd88a6e1211b3a",
            ),
        ),
    ),
    "banking77-oos": DatasetSpec(
        name="banking77-oos",
        description="BANKING77-OOS: 50 Banking77 intents (5,905 train / 1,506 valid) and "
        "off-topic questions, in-domain (the other 27 intents) and out-of-domain",
        license="CC BY 4.0",
        files=tuple(
            RemoteFile(name, _BANKING77_OOS + name, digest)
            for name, digest in _BANKING77_OOS_SHA256.items()
        ),
    ),
    "xsid": DatasetSpec(
        name="xsid",
        description="xSID 0.5 validation: short utterances, 17 languages, gold English",
        license="CC BY-SA 4.0",
        files=tuple(
            RemoteFile(f"{lang}.valid.conll", f"{_XSID}{lang}.valid.conll", digest)
            for lang, digest in _XSID_SHA256.items()
        ),
    ),
}


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    source: str  # "mirror", "cache" or "download"
    origin: str  # the mirror path or URL it came from
    sha256: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise DatasetError(f"unknown dataset {name!r} (known: {known})") from None


class DatasetStore:
    """Obtains dataset files: mirror → cache → download, each verified against its checksum."""

    def __init__(self, settings: Settings, log: Callable[[str], None] | None = None) -> None:
        self.mirror = settings.path(settings.data_mirror) if settings.data_mirror else None
        self.cache = settings.data_cache
        self.timeout = settings.download_timeout_s
        self.log = log or (lambda _message: None)

    def fetch(self, dataset: str, filename: str) -> FetchedFile:
        spec = dataset_spec(dataset)
        remote = spec.file(filename)
        problems: list[str] = []

        if self.mirror is not None:
            candidate = self.mirror / dataset / filename
            if candidate.is_file():
                digest = sha256_of(candidate)
                if digest == remote.sha256:
                    self.log(f"{dataset}/{filename}: read from mirror {candidate}")
                    return FetchedFile(candidate, "mirror", str(candidate), digest)
                problems.append(
                    f"mirror copy {candidate} has checksum {digest}, not {remote.sha256}"
                )
            else:
                problems.append(f"mirror {self.mirror} has no {dataset}/{filename}")

        cached = self.cache / dataset / filename
        if cached.is_file():
            digest = sha256_of(cached)
            if digest == remote.sha256:
                self.log(f"{dataset}/{filename}: read from cache {cached}")
                return FetchedFile(cached, "cache", str(cached), digest)
            problems.append(f"cached copy {cached} is corrupt; downloading again")

        try:
            digest = self._download(remote.url, cached)
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            problems.append(f"download of {remote.url} failed: {error}")
            raise DatasetError(
                f"cannot obtain {dataset}/{filename}: "
                + "; ".join(problems)
                + ". Set INQUIRY_ROUTER_DATA_MIRROR to a directory holding "
                f"{dataset}/{filename}, or connect to the internet."
            ) from error
        if digest != remote.sha256:
            cached.unlink(missing_ok=True)
            raise DatasetError(
                f"{remote.url} has checksum {digest}, expected {remote.sha256}; refusing to use it"
            )
        self.log(f"{dataset}/{filename}: downloaded from {remote.url}")
        return FetchedFile(cached, "download", remote.url, digest)

    def _download(self, url: str, target: Path) -> str:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as partial:
            partial_path = Path(partial.name)
            try:
                with urllib.request.urlopen(url, timeout=self.timeout) as response:
                    shutil.copyfileobj(response, partial)
            except BaseException:
                partial.close()
                partial_path.unlink(missing_ok=True)
                raise
        partial_path.replace(target)
        return sha256_of(target)


# ---------------------------------------------------------------- loaders: text,label frames


@dataclass(frozen=True)
class LabeledData:
    """A training source, its frames, and where they came from (for MLflow lineage)."""

    name: str
    train: pd.DataFrame  # columns: text, label
    test: pd.DataFrame | None  # the official held-out split, when the dataset has one
    lineage: dict[str, str]


def load_banking77(store: DatasetStore) -> LabeledData:
    train_file = store.fetch("banking77", "train.csv")
    test_file = store.fetch("banking77", "test.csv")

    def read(path: Path) -> pd.DataFrame:
        frame = pd.read_csv(path)
        return frame.rename(columns={"category": "label"})[["text", "label"]]

    return LabeledData(
        name="banking77",
        train=read(train_file.path),
        test=read(test_file.path),
        lineage={
            "banking77.train.sha256": train_file.sha256,
            "banking77.test.sha256": test_file.sha256,
            "banking77.source": train_file.source,
            "banking77.origin": train_file.origin,
        },
    )


def load_clinc150(store: DatasetStore, include_oos: bool = False) -> LabeledData:
    fetched = store.fetch("clinc150", "data_full.json")
    raw = json.loads(fetched.path.read_text())

    def frame(*splits: str) -> pd.DataFrame:
        rows = [row for split in splits for row in raw[split]]
        return pd.DataFrame(rows, columns=["text", "label"])

    # Out-of-scope queries are no class: training uses them only to set the triage threshold.
    train_splits = ("train", "oos_train", "oos_val") if include_oos else ("train",)
    test_splits = ("test", "oos_test") if include_oos else ("test",)
    return LabeledData(
        name="clinc150",
        train=frame(*train_splits),
        test=frame(*test_splits),
        lineage={
            "clinc150.sha256": fetched.sha256,
            "clinc150.source": fetched.source,
            "clinc150.origin": fetched.origin,
        },
    )


OUT_OF_SCOPE = "oos"  # the label off-topic rows carry in the known datasets


@dataclass(frozen=True)
class Banking77Oos:
    """BANKING77-OOS's splits: in-scope rows (text, label) and off-topic texts, in-domain
    (banking questions of the 27 intents left out) and out-of-domain; ``corrected``: per
    split, how many rows took their label from Banking77 (see ``load_banking77_oos``)."""

    train: pd.DataFrame
    valid: pd.DataFrame
    in_domain_train: list[str]
    in_domain_valid: list[str]
    out_of_domain_valid: list[str]
    lineage: dict[str, str]
    corrected: dict[str, int]


def _folded(text: str) -> str:
    return " ".join(text.lower().split())


def _true_label(source: str | None, published: str, in_scope: set[str]) -> str:
    """A question's label by its source (None: not there, the published one stands); a
    question of an intent left out is off-topic, whatever it was published as."""
    if source is None:
        return published
    return source if source in in_scope else OUT_OF_SCOPE


def load_banking77_oos(store: DatasetStore, correct: bool = True) -> Banking77Oos:
    """The published files, or (``correct``, the default) with each question's label taken
    from Banking77, which every question comes from. The published labels are shifted at
    the intents' boundaries (the files' own repository fixes the same shift in its id-oos test
    split): 366 of the 5,905 in-scope training questions (6.2 %) carry the intent before
    theirs, 145 of them questions of the 27 off-topic intents; 136 of the 2,062 in-domain
    off-topic ones are questions of the 50 intents; the validation split likewise (58 and 20).
    Corrected, a question of the 27 intents joins its split's in-domain off-topic questions
    and one of the 50 its in-scope rows. Blank lines, a defect of the same files, are dropped;
    a question Banking77 does not hold keeps its published label."""
    lineage: dict[str, str] = {}

    def read(split: str) -> pd.DataFrame:
        texts, labels = (
            store.fetch("banking77-oos", f"{split}/{part}") for part in ("seq.in", "label")
        )
        for part, fetched in (("seq.in", texts), ("label", labels)):
            lineage[f"banking77-oos.{split}/{part}.sha256"] = fetched.sha256
            lineage["banking77-oos.source"] = fetched.source
        rows = texts.path.read_text(encoding="utf-8").splitlines()
        gold = labels.path.read_text(encoding="utf-8").splitlines()
        if len(rows) != len(gold):
            raise DatasetError(f"banking77-oos {split}: {len(rows)} texts but {len(gold)} labels")
        frame = pd.DataFrame({"text": rows, "label": gold})
        return frame[frame["text"].str.strip() != ""].reset_index(drop=True)

    train, valid = read("train"), read("valid")
    in_domain = {"train": read("id-oos/train"), "valid": read("id-oos/valid")}
    corrected = {"train": 0, "valid": 0}
    if correct:
        source = load_banking77(store)
        lineage |= {key: value for key, value in source.lineage.items() if "sha256" in key}
        truth = {
            _folded(text): label
            for frame in (source.train, source.test)
            if frame is not None
            for text, label in zip(frame["text"], frame["label"], strict=True)
        }
        in_scope = set(train["label"])
        fixed = {}
        for split, rows in (("train", train), ("valid", valid)):
            questions = pd.concat(
                [rows, in_domain[split].assign(label=OUT_OF_SCOPE)], ignore_index=True
            )
            published = questions["label"].copy()
            questions["label"] = [
                _true_label(truth.get(_folded(text)), given, in_scope)
                for text, given in zip(questions["text"], published, strict=True)
            ]
            corrected[split] = int((questions["label"] != published).sum())
            lineage[f"banking77-oos.{split}.labels_corrected"] = str(corrected[split])
            fixed[split] = questions
        train, valid = (fixed[s][fixed[s]["label"] != OUT_OF_SCOPE] for s in ("train", "valid"))
        in_domain = {split: fixed[split][fixed[split]["label"] == OUT_OF_SCOPE] for split in fixed}
    return Banking77Oos(
        train=train.reset_index(drop=True),
        valid=valid.reset_index(drop=True),
        in_domain_train=in_domain["train"]["text"].tolist(),
        in_domain_valid=in_domain["valid"]["text"].tolist(),
        out_of_domain_valid=read("ood-oos/valid")["text"].tolist(),
        lineage=lineage,
        corrected=corrected,
    )


# Rows with these labels are inquiries no desk should get: not a class, but the threshold is
# chosen so that they go to triage, and the evaluation reports how many do.
OUT_OF_SCOPE_LABELS = frozenset({OUT_OF_SCOPE, "out_of_scope", "out-of-scope"})


def split_out_of_scope(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The in-scope rows, and the texts of the out-of-scope ones."""
    mask = frame["label"].astype(str).str.lower().isin(OUT_OF_SCOPE_LABELS)
    return frame[~mask].reset_index(drop=True), frame.loc[mask, "text"].tolist()


@dataclass(frozen=True)
class OutOfScopeExamples:
    """Messages outside every intent: some to choose a threshold with, others to test it on."""

    name: str
    tuning: list[str]
    test: list[str]
    lineage: dict[str, str]


def load_clinc150_out_of_scope(store: DatasetStore) -> OutOfScopeExamples:
    """CLINC150's out-of-scope queries ("what's the weather", "tell me a joke", ...): written
    to fall outside its 150 intents in 10 domains, banking among them, so they are off-topic
    for a banking service desk too. oos_train + oos_val (200) tune; oos_test (1,000) tests."""
    data = load_clinc150(store, include_oos=True)
    assert data.test is not None
    return OutOfScopeExamples(
        name="clinc150",
        tuning=split_out_of_scope(data.train)[1],
        test=split_out_of_scope(data.test)[1],
        lineage=data.lineage,
    )


@dataclass(frozen=True)
class XsidSentence:
    language: str
    text: str
    text_en: str
    intent: str


# Ideographs, kana and full-width forms: Japanese and Chinese are written without spaces.
_CJK = "\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_HAS_CJK = re.compile(f"[{_CJK}]")
_SPACE_IN_CJK = re.compile(f"(?<=[0-9{_CJK}]) +(?=[0-9{_CJK}])")


def unsegment(text: str) -> str:
    """Text as it is typed: xSID's Japanese, and half of its Chinese, come word-segmented,
    numbers too ("午前 1 1 時に"), which nobody writes and which no tokenizer of the encoders
    was trained on. In text
    with CJK characters, spaces between two of them or digits go; those beside Latin text
    ("ArcLight の") stay. Text without CJK characters is left alone."""
    if not _HAS_CJK.search(text):
        return text
    return _SPACE_IN_CJK.sub("", text)


def load_xsid(store: DatasetStore, language: str) -> list[XsidSentence]:
    """A language's xSID validation sentences, each with its gold English and intent, its
    text as typed (see ``unsegment``). Measured: Japanese read untranslated by the default
    model's foreign-text members rose from 84.7 % to 88.0 % once joined; Chinese went from
    90.3 % to 90.0 %."""
    fetched = store.fetch("xsid", f"{language}.valid.conll")
    sentences: list[XsidSentence] = []
    fields: dict[str, str] = {}
    for line in [*fetched.path.read_text(encoding="utf-8").splitlines(), ""]:
        if line.startswith("# ") and " = " in line:
            key, _, value = line[2:].partition(" = ")
            fields[key.strip()] = value.strip()
        elif not line.strip():
            if {"text", "intent"} <= fields.keys():
                # The English file is the original: its text is its own gold English.
                english = fields.get("text-en", fields["text"])
                text = unsegment(fields["text"])
                sentences.append(XsidSentence(language, text, english, fields["intent"]))
            fields = {}
    return sentences


def xsid_languages() -> list[str]:
    return sorted(_XSID_SHA256)


def read_table(path: Path, as_text: bool = False) -> pd.DataFrame:
    """A CSV or JSONL file as a frame; ``as_text`` keeps every value a string (ids stay ids)."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            if as_text:
                return pd.read_csv(path, dtype=str, keep_default_na=False)
            return pd.read_csv(path)
        if suffix in {".jsonl", ".ndjson"}:
            return pd.read_json(path, lines=True, dtype=False if as_text else None)
    except (ValueError, pd.errors.ParserError) as error:
        raise DatasetError(f"{path}: cannot be parsed: {error}") from error
    raise DatasetError(f"{path}: expected a .csv or .jsonl file, got {suffix or 'no extension'}")


def read_labeled_file(path: Path) -> pd.DataFrame:
    """A user's own data: CSV or JSONL with ``text`` and ``label`` columns."""
    suffix = path.suffix.lower()
    frame = read_table(path)
    missing = {"text", "label"} - set(frame.columns)
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {', '.join(sorted(missing))}; "
            f"found {', '.join(map(str, frame.columns)) or 'none'}"
        )
    frame = frame[["text", "label"]].copy()
    empty = frame["text"].isna() | (frame["text"].astype(str).str.strip() == "")
    unlabeled = frame["label"].isna()
    bad_rows = frame.index[empty | unlabeled].tolist()
    if bad_rows:
        shown = ", ".join(str(i + 2 if suffix == ".csv" else i + 1) for i in bad_rows[:5])
        raise DatasetError(
            f"{path}: {len(bad_rows)} row(s) with empty text or label (line {shown}"
            f"{', …' if len(bad_rows) > 5 else ''})"
        )
    frame["text"] = frame["text"].astype(str)
    frame["label"] = frame["label"].astype(str)
    return frame


# The known datasets that train (and evaluate) a model; xSID only measures.
TRAINABLE = ("banking77", "banking77-oos", "clinc150")


def load_source(source: str, store: DatasetStore) -> LabeledData:
    """A training source: a known dataset name or a CSV/JSONL file path."""
    if source in DATASETS:
        if source == "banking77":
            return load_banking77(store)
        if source == "clinc150":
            return load_clinc150(store, include_oos=True)
        if source == "banking77-oos":
            data = load_banking77_oos(store)

            def off_topic(texts: list[str]) -> pd.DataFrame:
                return pd.DataFrame({"text": texts, "label": "oos"})

            # In-domain off-topic questions tune the threshold; the validation split, with
            # its off-topic questions of both kinds, is the held-out evaluation.
            return LabeledData(
                name=source,
                train=pd.concat([data.train, off_topic(data.in_domain_train)], ignore_index=True),
                test=pd.concat(
                    [
                        data.valid,
                        off_topic(data.in_domain_valid),
                        off_topic(data.out_of_domain_valid),
                    ],
                    ignore_index=True,
                ),
                lineage=data.lineage,
            )
        raise DatasetError(f"{source} is an evaluation set and cannot be used to train")
    path = Path(source)
    if not path.suffix:
        known = ", ".join(name for name in DATASETS if name != "xsid")
        raise DatasetError(
            f"{source!r} is neither a known dataset ({known}) nor a .csv/.jsonl file"
        )
    frame = read_labeled_file(path)
    return LabeledData(
        name=path.name,
        train=frame,
        test=None,
        lineage={f"{path.name}.sha256": sha256_of(path), f"{path.name}.origin": str(path)},
    )
