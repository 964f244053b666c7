"""Training: sources → fitted model → held-out evaluation → MLflow run and registered version.

Reproducible: the seed, every parameter, each source's checksum and the code version are logged,
so the same command on the same data gives the same model.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .. import __version__
from ..config import SOURCE_ROOT, Settings
from ..datasets import (
    DatasetError,
    DatasetStore,
    LabeledData,
    load_clinc150_out_of_scope,
    load_source,
    split_out_of_scope,
)
from ..domain import ENGLISH, UNDETERMINED
from ..registry import ModelRegistry, RegisteredVersion
from ..routing import DeskMap, DeskMapError
from .encoders import (
    E5_FOLDER,
    USE_NAME,
    EncoderError,
    UniversalSentenceEncoder,
    encoder_name,
)
from .evaluation import (
    DEFAULT_THRESHOLD,
    Evaluation,
    RoutingScores,
    choose_threshold,
    evaluate_probabilities,
    record_out_of_scope,
    routing_scores,
    write_report,
)
from .kinds import DEFAULT_KIND, MODEL_KINDS, needs_e5, reads_tfidf
from .models import (
    build_model,
    fit_temperature,
    geometric_mean,
    member_name,
    pin_configured_encoder,
    scale,
)
from .tfidf import DEFAULT_PARAMS

HOLDOUT_FRACTION = 0.2
VALIDATION_FRACTION = 0.15
MIN_TO_VALIDATE = 4  # examples a label needs before any are held out for calibration


@dataclass
class OutOfScope:
    """The off-topic messages a training uses (tuning: to choose the threshold; test: to
    report how many go to triage), and where they came from."""

    tuning: list[str]
    test: list[str]
    source: str
    lineage: dict[str, str]
    # Background examples count as this share of the validation traffic; the data's own `oos`
    # rows (None) count one each, as they came.
    share: float | None = None


def _out_of_scope(
    settings: Settings,
    store: DatasetStore,
    own_tuning: list[str],
    own_test: list[str],
    step: Callable[[str], None],
) -> OutOfScope:
    """The data's own `oos` rows when it has them. Otherwise background off-topic messages:
    without any, the threshold is chosen on in-scope messages alone, which all look routable
    (Banking77: the threshold fell to 0.31 and 89 % of off-topic queries reached a desk)."""
    if own_tuning:
        return OutOfScope(own_tuning, own_test, "training data", {})
    if settings.background_out_of_scope == "none":
        step("no out-of-scope examples: the threshold only weighs in-scope mistakes")
        return OutOfScope([], own_test, "none", {})
    try:
        background = load_clinc150_out_of_scope(store)
    except DatasetError as error:
        step(
            f"warning: no background out-of-scope examples ({error}); the threshold only "
            "weighs in-scope mistakes"
        )
        return OutOfScope([], own_test, f"none ({str(error)[:200]})", {})
    step(
        f"background out-of-scope examples: {background.name}, {len(background.tuning)} to "
        f"choose the threshold, {len(background.test)} to test it"
    )
    return OutOfScope(
        background.tuning,
        own_test or background.test,
        background.name,
        {f"out_of_scope.{key}": value for key, value in background.lineage.items()},
        settings.background_out_of_scope_share,
    )


class TrainingError(Exception):
    """The request cannot be trained as given; the message says why."""


@dataclass(frozen=True)
class TrainingReport:
    registered: RegisteredVersion
    evaluation: Evaluation
    n_train: int
    n_classes: int
    train_seconds: float
    sources: list[str]
    encoder_source: str | None = None  # the transformer encoder's, when the kind reads one
    encoder: str | None = None  # its name, as the model records it
    use_source: str | None = None  # the Universal Sentence Encoder's, when the kind reads it
    foreign_text: str | None = None  # how foreign text (not in native_languages) is read, routed
    native_languages: tuple[str, ...] = (ENGLISH,)  # read as written, with every member


CALIBRATION_LANGUAGES = ("es", "it")
# A language with at least this share of the training text is one the model reads as written;
# below it, detection noise (CLINC150: one query in 15,000 detected as French) or a sprinkling.
NATIVE_SHARE = 0.05


def _training_languages(
    settings: Settings, texts: Sequence[str], step: Callable[[str], None]
) -> tuple[str, list[str], list[str]]:
    """The languages of the training text as the router would detect them (undetermined text
    counts as the most common language): the five most common with their shares, e.g.
    ``en:0.981,de:0.019``; those the model is to read as written (its native languages), most
    common first; and each text's.

    The router reads text in a native language as written, with every member, and holds it to
    the threshold chosen on validation; other languages are foreign text: translated to English
    where an engine can and read by the multilingual members alone. A model trained on German
    reads German as written, even where a German→English engine is installed."""
    from ..pipeline import build_detector, read_as

    guesses = build_detector(settings).detect_batch(list(texts), [None] * len(texts))
    # Undetermined text (short, mostly) counts as the language most of the rest is in.
    determined = Counter(g.language for g in guesses if g.language != UNDETERMINED)
    main = determined.most_common(1)[0][0] if determined else ENGLISH
    each = [read_as(g, [main]) for g in guesses]
    counts = Counter(each)
    shares = [(language, n / len(texts)) for language, n in counts.most_common(5)]
    described = ",".join(f"{language}:{share:.3f}" for language, share in shares)
    native = [language for language, n in counts.most_common() if n / len(texts) >= NATIVE_SHARE]
    native = native or [counts.most_common(1)[0][0]]
    if native != [ENGLISH]:
        most = ", ".join(f"{language} {share:.0%}" for language, share in shares)
        step(
            f"training text: {most}. The router reads {', '.join(native)} as written with "
            "every member; other languages are foreign text, translated to English where an "
            "engine can and read by the multilingual members"
        )
    return described, native, each


def _translated_validation(
    texts: Sequence[str], step: Callable[[str], None]
) -> dict[str, list[str]]:
    """The validation texts machine-translated into Spanish and Italian, where Apertium is
    installed, to calibrate how sure the multilingual members are on text not in English.
    Measured on xSID (trained on English): auto-routed precision on untranslated de/nl/it/tr
    rose from 92-96 % to 96-100 %, with about half as many auto-routed. Without Apertium: {}
    (calibrated on English, as before)."""
    from ..translation.engines import ApertiumEngine

    engine = ApertiumEngine()
    languages = [code for code in CALIBRATION_LANGUAGES if code in engine.languages_from_english()]
    if not languages:
        step("no English→Spanish/Italian engine (apertium): foreign text calibrated on English")
        return {}
    try:
        translated = {code: engine.translate_from_english(texts, code) for code in languages}
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        step(f"apertium failed ({error}); foreign text calibrated on English")
        return {}
    step(
        f"calibrating foreign text on {len(texts):,} English validation texts translated into "
        f"{', '.join(languages)}"
    )
    return translated


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=SOURCE_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return "unknown"
    return result.stdout.strip() or "unknown"


def _subsample(frame: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    shuffled = frame.sample(frac=1.0, random_state=seed)
    return shuffled.groupby("label", sort=False).head(per_class).reset_index(drop=True)


def assemble_data(
    sources: Sequence[LabeledData], seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Training and evaluation frames: official test splits where a source has one, a stratified
    hold-out of its training data where it does not."""
    train_parts, test_parts, described = [], [], []
    for source in sources:
        if source.test is not None:
            train_parts.append(source.train)
            test_parts.append(source.test)
            described.append(f"{source.name}:official-test")
            continue
        counts = source.train["label"].value_counts()
        too_few = sorted(counts[counts < 2].index.astype(str))
        if too_few:
            raise TrainingError(
                f"{source.name}: every label needs at least 2 examples to hold one out for "
                f"evaluation; too few for: {', '.join(too_few[:10])}"
            )
        train, test = train_test_split(
            source.train,
            test_size=HOLDOUT_FRACTION,
            random_state=seed,
            stratify=source.train["label"],
        )
        train_parts.append(train)
        test_parts.append(test)
        described.append(f"{source.name}:holdout-{HOLDOUT_FRACTION}-seed-{seed}")
    train_frame = pd.concat(train_parts, ignore_index=True)
    test_frame = pd.concat(test_parts, ignore_index=True)
    if train_frame["label"].nunique() < 2:
        raise TrainingError("training data must contain at least two different labels")
    return train_frame, test_frame, ",".join(described)


def _validation_split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """15 % of the training data, stratified, to calibrate on. A label with fewer than
    ``MIN_TO_VALIDATE`` examples keeps them all for fitting rather than stop the others being
    calibrated (xSID has intents with 1 and 2 examples among 240). None when fewer than two
    labels could be held out, or too little data would be left to learn from."""
    counts = frame["label"].value_counts()
    common = frame["label"].isin(counts[counts >= MIN_TO_VALIDATE].index)
    pool, rare = frame[common], frame[~common]
    labels = pool["label"].nunique()
    # A stratified split needs a validation row per label and rows left to learn from.
    size = max(round(len(pool) * VALIDATION_FRACTION), labels)
    if labels < 2 or len(pool) - size < labels:
        return None
    fit, validation = train_test_split(
        pool, test_size=size, random_state=seed, stratify=pool["label"]
    )
    if len(rare):
        fit = pd.concat([fit, rare])
    return fit, validation


@dataclass
class Calibration:
    """What training chose on its validation split; the model refitted on everything keeps it."""

    temperature: float = 1.0
    multilingual_temperature: float = 1.0
    # "english" (or the training text's language), or "apertium:es,it" when foreign text was
    # calibrated on translated validation
    multilingual_calibration: str = "english"
    # The members that read foreign text, by index; None: every multilingual one.
    foreign_members: list[int] | None = None
    threshold: float = DEFAULT_THRESHOLD
    # For text not written in English: chosen on the translated validation, never below
    # ``threshold``. None: none was chosen, ``threshold`` applies.
    foreign_threshold: float | None = None

    def apply(self, estimator: Any) -> Any:
        estimator.temperature = self.temperature
        estimator.multilingual_temperature = self.multilingual_temperature
        estimator.foreign_members_ = self.foreign_members
        estimator.triage_threshold_ = self.threshold
        estimator.foreign_threshold_ = self.foreign_threshold
        return estimator


def _nll(probabilities: np.ndarray, gold_index: np.ndarray) -> float:
    picked = probabilities[np.arange(len(gold_index)), gold_index]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())


def _choose_foreign_members(
    estimator: Any, by_member: dict[int, np.ndarray], gold_index: np.ndarray
) -> tuple[list[int], float]:
    """Which multilingual members read foreign text, and their temperature, by log-likelihood on
    translated validation. Fine-tuning on English can wear away what an encoder knew of other
    languages, so the fine-tuned member is kept for foreign text only when it helps there; the
    frozen encoders always read it. Measured on xSID (240 English sentences): with the
    fine-tuned member German 89.3 %, Italian 88.7 %; without it 90.7 % and 91.7 %."""
    everyone = list(by_member)
    candidates = [everyone]
    frozen = [i for i in everyone if member_name(estimator.members[i]) != "finetune"]
    if frozen and frozen != everyone:
        candidates.append(frozen)
    best: tuple[float, list[int], float] | None = None
    for members in candidates:
        mixed = geometric_mean([by_member[i] for i in members])
        temperature = fit_temperature(mixed, gold_index)
        loss = _nll(scale(mixed, temperature), gold_index)
        if best is None or loss < best[0] - 1e-9:
            best = (loss, members, temperature)
    assert best is not None
    return best[1], best[2]


def fit_calibrated(
    kind: str,
    frame: pd.DataFrame,
    *,
    seed: int = 0,
    epochs: int = 4,
    out_of_scope: OutOfScope | None = None,
    desk_map: DeskMap | None = None,
    target_precision: float = 0.97,
    native_languages: Sequence[str] = (ENGLISH,),
    text_languages: Sequence[str] | None = None,
    encoder: str = E5_FOLDER,
    step: Callable[[str], None] = lambda _message: None,
) -> tuple[Any, Calibration]:
    """The training recipe: fit on 85 % of ``frame``; on the other 15 % fit the temperatures,
    choose the members that read foreign text and the triage threshold; then refit on all of
    it, keeping those choices (the same recipe with 15 % more data: no example is wasted).
    Too little data to hold any out: no calibration, the default threshold.

    ``native_languages``: what ``frame`` is written in, most common first; the model reads them
    as written (``native_languages_``), and everything else as foreign text. ``text_languages``:
    each text's, where known (else all in the first native language). ``encoder``: the
    transformer encoder the e5 and fine-tuned members read (``encoders.encoder_name``)."""
    calibration = Calibration()
    if text_languages is not None:
        frame = frame.assign(language=list(text_languages))
    split = _validation_split(frame, seed)
    if split is not None:
        fit_frame, validation = split
        step(f"fitting {kind} on {len(fit_frame):,} examples to calibrate on {len(validation):,}")
        estimator = build_model(kind, seed, epochs, encoder).fit(
            fit_frame["text"].tolist(), fit_frame["label"].tolist()
        )
        calibration = _calibrate(
            estimator,
            validation,
            out_of_scope,
            desk_map,
            target_precision,
            native_languages[0],
            step,
        )
    intents = frame["label"].nunique()
    step(f"fitting {kind} on all {len(frame):,} examples, {intents} intents")
    estimator = build_model(kind, seed, epochs, encoder)
    estimator.fit(frame["text"].tolist(), frame["label"].tolist())
    estimator.native_languages_ = list(native_languages)
    return calibration.apply(estimator), calibration


def _calibrate(
    estimator: Any,
    validation: pd.DataFrame,
    out_of_scope: OutOfScope | None,
    desk_map: DeskMap | None,
    target_precision: float,
    language: str,
    step: Callable[[str], None],
) -> Calibration:
    """``language``: the training text's main language; each validation text's is in its
    ``language`` column where known, else assumed to be that. Apertium translates from
    English, so foreign text is calibrated on the English validation texts, translated, when
    English is the main language."""
    calibration = Calibration()
    # Each member reads the validation texts once; the mixes below reuse its answers.
    validation_texts = validation["text"].tolist()
    by_member = [member.predict_proba(validation_texts) for member in estimator.members]
    native = estimator.native_members
    raw = geometric_mean(
        [p for m, p in zip(estimator.members, by_member, strict=True) if m in native]
    )
    classes = list(estimator.classes_)
    index = {label: i for i, label in enumerate(classes)}
    known = np.array([label in index for label in validation["label"]])
    gold_index = np.array([index.get(label, 0) for label in validation["label"]])
    calibration.temperature = fit_temperature(raw[known], gold_index[known])
    foreign_scores: RoutingScores | None = None
    multilingual = estimator.multilingual_members
    if multilingual:
        translated: dict[str, list[str]] = {}
        english = np.full(len(validation), language == ENGLISH)
        if "language" in validation:
            english = validation["language"].to_numpy() == ENGLISH
        if language == ENGLISH and english.any():
            translated = _translated_validation(
                [text for text, e in zip(validation_texts, english, strict=True) if e], step
            )
        else:
            calibration.multilingual_calibration = language
            step(
                f"foreign text calibrated on the validation text as written ({language}): "
                "Apertium, which makes the translated calibration text, translates from English"
            )
        if translated:
            # Calibrated on the text it will read: foreign text is read less well than
            # English, and an English-fitted temperature makes it overconfident.
            foreign = [text for texts in translated.values() for text in texts]
            known_foreign = np.tile(known[english], len(translated))
            gold_foreign = np.tile(gold_index[english], len(translated))[known_foreign]
            foreign_by_member = {
                i: member.predict_proba(foreign)[known_foreign]
                for i, member in enumerate(estimator.members)
                if member in multilingual
            }
            members, calibration.multilingual_temperature = _choose_foreign_members(
                estimator, foreign_by_member, gold_foreign
            )
            calibration.foreign_members = members
            foreign_scores = routing_scores(
                scale(
                    geometric_mean([foreign_by_member[i] for i in members]),
                    calibration.multilingual_temperature,
                ),
                classes,
                [classes[i] for i in gold_foreign],
                desk_map,
            )
            calibration.multilingual_calibration = "apertium:" + ",".join(translated)
            step(
                "foreign text read by "
                + "+".join(member_name(estimator.members[i]) for i in members)
            )
        else:
            alone = geometric_mean(
                [p for m, p in zip(estimator.members, by_member, strict=True) if m in multilingual]
            )
            calibration.multilingual_temperature = fit_temperature(alone[known], gold_index[known])
    scores = routing_scores(
        scale(raw, calibration.temperature), classes, validation["label"].tolist(), desk_map
    )
    if out_of_scope is not None and out_of_scope.tuning:
        # Any desk is the wrong desk for these: routing one counts against precision.
        outside = routing_scores(
            scale(estimator.mean_proba(out_of_scope.tuning), calibration.temperature),
            classes,
            None,
            desk_map,
        )
        # Background examples stand for a share of the traffic, however many there are.
        weight = 1.0
        if out_of_scope.share is not None:
            share = out_of_scope.share
            weight = share / (1 - share) * len(scores.confidence) / len(out_of_scope.tuning)
        scores = RoutingScores(
            np.concatenate([scores.confidence, outside.confidence]),
            np.concatenate([scores.correct, outside.correct]),
            np.concatenate(
                [np.ones(len(scores.confidence)), np.full(len(outside.confidence), weight)]
            ),
        )
    calibration.threshold = choose_threshold(scores, target_precision)
    step(
        f"temperature {calibration.temperature:.2f}; triage threshold "
        f"{calibration.threshold:.3f} meets {target_precision:.0%} precision on validation"
    )
    if foreign_scores is not None:
        # Off-topic messages are judged on English above; foreign text gets no lower a bar.
        calibration.foreign_threshold = max(
            calibration.threshold, choose_threshold(foreign_scores, target_precision)
        )
        step(
            f"foreign text: temperature {calibration.multilingual_temperature:.2f}, threshold "
            f"{calibration.foreign_threshold:.3f} ({target_precision:.0%} precision on the "
            "translated validation)"
        )
    return calibration


def train(
    settings: Settings,
    sources: Sequence[str],
    *,
    model_name: str | None = None,
    kind: str = DEFAULT_KIND,
    seed: int = 0,
    limit_per_class: int | None = None,
    promote: str = "auto",
    epochs: int = 4,
    step: Callable[[str], None] = lambda _message: None,
) -> TrainingReport:
    if kind not in MODEL_KINDS:
        raise TrainingError(f"unknown model kind {kind!r} (known: {', '.join(MODEL_KINDS)})")
    if not sources:
        raise TrainingError("give at least one --data source")
    model_name = model_name or settings.model_name

    step(f"loading {', '.join(sources)}")
    store = DatasetStore(settings, log=step)
    try:
        loaded = [load_source(source, store) for source in sources]
    except DatasetError as error:
        raise TrainingError(str(error)) from error
    train_frame, test_frame, eval_description = assemble_data(loaded, seed)
    train_frame, out_of_scope_train = split_out_of_scope(train_frame)
    test_frame, out_of_scope_test = split_out_of_scope(test_frame)
    if limit_per_class:
        train_frame = _subsample(train_frame, limit_per_class, seed)
        eval_description += f",train-limit-{limit_per_class}"
    out_of_scope = _out_of_scope(settings, store, out_of_scope_train, out_of_scope_test, step)
    out_of_scope_train, out_of_scope_test = out_of_scope.tuning, out_of_scope.test

    try:
        desk_map: DeskMap | None = DeskMap.from_yaml(settings.desks_path)
    except DeskMapError:
        desk_map = None

    encoder_source = None
    encoder = encoder_name(settings.encoder)
    if needs_e5(kind):
        try:
            encoder, encoder_source = pin_configured_encoder(settings, log=step)
        except EncoderError as error:
            raise TrainingError(str(error)) from error
        step(f"encoder: {encoder} from {encoder_source.source}")

    languages, native_languages, text_languages = _training_languages(
        settings, train_frame["text"].tolist(), step
    )
    started = time.perf_counter()
    estimator, calibration = fit_calibrated(
        kind,
        train_frame,
        seed=seed,
        epochs=epochs,
        out_of_scope=out_of_scope,
        desk_map=desk_map,
        target_precision=settings.target_precision,
        native_languages=native_languages,
        text_languages=text_languages,
        encoder=encoder,
        step=step,
    )
    threshold = calibration.threshold
    train_seconds = time.perf_counter() - started

    # The held-out text is in the training languages: read as written, by every member.
    step(f"evaluating on {len(test_frame):,} held-out examples")
    probabilities = estimator.predict_proba(test_frame["text"].tolist())
    gold = test_frame["label"].tolist()
    evaluation = evaluate_probabilities(
        probabilities, list(estimator.classes_), gold, desk_map, threshold
    )
    if out_of_scope_test:
        record_out_of_scope(
            evaluation,
            estimator.predict_proba(out_of_scope_test),
            list(estimator.classes_),
            desk_map,
        )

    step("logging the run and registering the model in MLflow")
    lineage: dict[str, str] = {}
    for source in loaded:
        lineage.update(source.lineage)
    lineage.update(out_of_scope.lineage)
    params: dict[str, Any] = {
        "kind": kind,
        "seed": seed,
        "sources": ",".join(sources),
        "limit_per_class": limit_per_class or "none",
        "n_train": len(train_frame),
        "n_eval": len(test_frame),
        "n_classes": int(train_frame["label"].nunique()),
        "training_languages": languages,
        "native_languages": ",".join(native_languages),
        **({"encoder": encoder} if needs_e5(kind) else {}),
        "temperature": round(calibration.temperature, 4),
        "multilingual_temperature": round(calibration.multilingual_temperature, 4),
        "multilingual_members": "+".join(
            member_name(member) for member in estimator.multilingual_members
        ),
        **({"epochs": epochs} if "finetune" in kind else {}),
        "out_of_scope.source": out_of_scope.source,
        "out_of_scope.n_tuning": len(out_of_scope_train),
        "out_of_scope.n_test": len(out_of_scope_test),
        "out_of_scope.share": out_of_scope.share if out_of_scope.share is not None else "as given",
        "target_precision": settings.target_precision,
        "multilingual_calibration": calibration.multilingual_calibration,
        "foreign_threshold": (
            "as English"
            if calibration.foreign_threshold is None
            else round(calibration.foreign_threshold, 4)
        ),
        **(
            {f"tfidf.{key}": value for key, value in DEFAULT_PARAMS.items()}
            if reads_tfidf(kind)
            else {}
        ),
    }
    tags = {
        "eval_data": eval_description,
        "training.name": "+".join(source.name for source in loaded),
        "evaluation.name": eval_description,
        "code_version": __version__,
        "git_commit": _git_commit(),
        **lineage,
    }
    if encoder_source is not None:
        tags["encoder.source"] = encoder_source.source
        tags["encoder.detail"] = encoder_source.detail
    use_source = None
    if any(getattr(m, "encoder", None) == USE_NAME for m in estimator.members):
        use_source = UniversalSentenceEncoder.source().source
        tags["encoder.use.source"] = use_source
    registry = ModelRegistry(settings)
    with tempfile.TemporaryDirectory() as scratch:
        report_files = write_report(
            evaluation, probabilities, list(estimator.classes_), gold, Path(scratch)
        )
        registered = registry.log_trained_model(
            estimator=estimator,
            model_name=model_name,
            params=params,
            metrics={**evaluation.as_metrics(), "train_seconds": train_seconds},
            tags=tags,
            datasets={"training": train_frame, "evaluation": test_frame},
            artifacts={path.name: path for path in report_files},
            sample_texts=test_frame["text"].head(5).tolist(),
            promote=promote,
        )
    return TrainingReport(
        registered=registered,
        evaluation=evaluation,
        n_train=len(train_frame),
        n_classes=int(train_frame["label"].nunique()),
        train_seconds=train_seconds,
        sources=list(sources),
        encoder_source=None if encoder_source is None else encoder_source.source,
        encoder=encoder if encoder_source is not None else None,
        use_source=use_source,
        foreign_text=_describe_foreign(estimator, calibration),
        native_languages=tuple(native_languages),
    )


def _describe_foreign(estimator: Any, calibration: Calibration) -> str | None:
    """How the model reads foreign text (not in its native languages), for the training
    summary."""
    members = getattr(estimator, "multilingual_members", [])
    if not members:
        return None
    if calibration.foreign_threshold is None and members == estimator.native_members:
        return None
    native = getattr(estimator, "native_languages_", None) or [ENGLISH]
    threshold = (
        ("the English threshold" if native == [ENGLISH] else f"the {'/'.join(native)} threshold")
        if calibration.foreign_threshold is None
        else f"threshold {calibration.foreign_threshold:.3f}"
    )
    read_by = "+".join(member_name(member) for member in members)
    return f"read by {read_by}, {threshold}, calibrated on {calibration.multilingual_calibration}"
