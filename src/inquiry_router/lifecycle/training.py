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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import __version__
from ..classifier import DEFAULT_KIND, MODEL_KINDS, TextClassifier
from ..classifier.calibration import Expectation, calibration_folds
from ..classifier.encoders import (
    USE_NAME,
    EncoderError,
    UniversalSentenceEncoder,
    encoder_name,
    pin_configured_encoder,
    shared_encoder,
)
from ..classifier.finetune import MAX_STEPS, FineTunedEncoderClassifier
from ..classifier.kinds import ModelKind, fine_tunes, needs_e5, reads_tfidf
from ..classifier.models import (
    CalibratedEnsemble,
    build_model,
    frozen_layers_once,
    member_name,
)
from ..classifier.tfidf import DEFAULT_PARAMS
from ..config import SOURCE_ROOT, Settings
from ..datasets import (
    DatasetError,
    DatasetStore,
    LabeledData,
    load_clinc150_out_of_scope,
    load_source,
    split_out_of_scope,
)
from ..domain import ENGLISH, UNDETERMINED, ModelRef, Reading
from ..pipeline import assemble, build_detector
from ..registry import ModelRegistry, RegisteredVersion
from ..routing import DeskMap, DeskMapError
from .corrections import SOURCE as CORRECTIONS
from .corrections import load_corrections
from .duration import TrainingTime, describe, encoder_speed, estimate, linear_probe
from .evaluation import Evaluation, evaluate, record_out_of_scope, write_report
from .promotion import Comparison, NothingLeftToCompare, PromotionError, promote_if_better
from .sources import TrainingError, assemble_data, text_digests


@dataclass
class OutOfScope:
    """The off-topic messages a training uses (tuning: to choose the threshold; test: to
    report how many go to triage), and where they came from."""

    tuning: list[str]
    test: list[str]
    source: str
    lineage: dict[str, str]
    # They count as this share of the validation traffic, however many there are.
    share: float


def out_of_scope_for(
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
        return OutOfScope(own_tuning, own_test, "training data", {}, settings.off_topic_share)
    if settings.background_out_of_scope == "none":
        step("no out-of-scope examples: the threshold only weighs in-scope mistakes")
        return OutOfScope([], own_test, "none", {}, settings.off_topic_share)
    try:
        background = load_clinc150_out_of_scope(store)
    except DatasetError as error:
        step(
            f"warning: no background out-of-scope examples ({error}); the threshold only "
            "weighs in-scope mistakes"
        )
        return OutOfScope([], own_test, f"none ({str(error)[:200]})", {}, settings.off_topic_share)
    step(
        f"background out-of-scope examples: {background.name}, {len(background.tuning)} to "
        f"choose the threshold, {len(background.test)} to test it"
    )
    return OutOfScope(
        background.tuning,
        own_test or background.test,
        background.name,
        {f"out_of_scope.{key}": value for key, value in background.lineage.items()},
        settings.off_topic_share,
    )


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
    comparison: Comparison | None = None  # against the champion, when it became @challenger
    corrections_used: int | None = None  # when corrections were a source
    calibration: str = ""  # what the thresholds were chosen on
    # Per language group (native, foreign): the routed share and precision calibration expects.
    expected: dict[str, Expectation] = field(default_factory=dict)
    off_topic_auroc: float | None = None  # how well the off-topic score separates them
    expected_seconds: float | None = None  # what it was expected to take, said before it began
    # The examples the registered model learned from: n_train, plus those held out to take
    # its figures when it was refitted on all of its data (``refit``: whether, or why not).
    n_final: int | None = None
    refit: str = ""


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
    guesses = build_detector(settings).detect_batch(list(texts), [None] * len(texts))
    # Undetermined text (short, mostly) counts as the language most of the rest is in.
    determined = Counter(g.language for g in guesses if g.language != UNDETERMINED)
    main = determined.most_common(1)[0][0] if determined else ENGLISH
    each = [main if g.language == UNDETERMINED else g.language for g in guesses]
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


def translated_validation(
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


FEW_EXAMPLES = 10  # below this, a label's examples are too few to learn it reliably


def _scarce_labels(frame: pd.DataFrame) -> list[tuple[str, int]]:
    """The labels with fewer than FEW_EXAMPLES training examples, fewest first."""
    counts = frame["label"].value_counts()
    scarce = counts[counts < FEW_EXAMPLES].sort_values()
    return [(str(label), int(n)) for label, n in scarce.items()]


def _corrections_source(settings: Settings, step: Callable[[str], None]) -> LabeledData:
    """The corrections desks made, as a source; labels no desk handles stop the training."""
    try:
        desk_map = DeskMap.from_yaml(settings.desks_path)
    except (DeskMapError, OSError) as error:
        raise TrainingError(
            f"corrections are routed by desks.yaml, which failed: {error}"
        ) from None
    data = load_corrections(settings.resolved_database_url, desk_map)
    if data.unmapped:
        labels = ", ".join(f"{label!r} ({n} corrections)" for label, n in data.unmapped.items())
        raise TrainingError(
            f"no desk in {settings.desks_path} handles {labels}: add each to the intents of the "
            "desk that should receive it, then train again (a new label becomes a new intent)"
        )
    step(data.summary() if data.n else "no corrections yet")
    return data.as_source()


def _expected_time(
    settings: Settings,
    kind: str,
    encoder: str,
    epochs: int,
    seed: int,
    train_frame: pd.DataFrame,
    test_frame: pd.DataFrame,
    out_of_scope: OutOfScope,
    step: Callable[[str], None],
    refit_extra: int | None = None,
) -> TrainingTime:
    """How long an encoder kind should take to train here, said before it starts;
    ``refit_extra``: the held-out examples a last fit adds to the training ones (None: no
    refit)."""
    labels = train_frame["label"].astype(str).tolist()
    folds = calibration_folds(labels, seed, settings.calibration_cv)
    held = sum(len(rows) for _, rows in folds)
    n_read = (
        len(test_frame)
        + len(out_of_scope.tuning)
        + len(out_of_scope.test)
        + len(CALIBRATION_LANGUAGES) * held  # translated for the foreign-text calibration
    )
    speed = encoder_speed(shared_encoder(encoder), train_frame["text"].tolist())
    probe = linear_probe()
    n_classes = len(set(labels))

    finals, n_more = [len(labels)], 0
    if refit_extra is not None:  # the held-out texts, new to the frozen layers' cache
        n_more = refit_extra
        # With one calibration split, its members take the figures: no fit on the training
        # share alone (``CalibratedEnsemble.fit(final=False)``).
        everything = len(labels) + refit_extra
        finals = [everything] if len(folds) == 1 else [len(labels), everything]

    def of(chosen: str) -> TrainingTime:
        sizes = [len(fit) for fit, _ in folds]
        return estimate(
            chosen,
            len(labels),
            n_classes,
            n_read + n_more,
            sizes,
            speed,
            epochs=epochs,
            final_sizes=finals,
            linear_probe_seconds=probe,
        )

    expected = of(kind)
    step(describe(expected, of(ModelKind.ENSEMBLE) if fine_tunes(kind) else None))
    return expected


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
    refit: bool = True,
    step: Callable[[str], None] = lambda _message: None,
) -> TrainingReport:
    """Train on ``sources``, take the figures on what was held out, and register the model.

    ``refit``: once its figures are taken, the model learns again from all of its data: the
    held-out share carved from a source without a test split of its own joins the training
    (official test splits and the corrections' held-out share never do); the temperatures and
    thresholds stay as calibrated. A @challenger is compared with the champion as it was
    before, on what it had not learned."""
    if kind not in MODEL_KINDS:
        raise TrainingError(f"unknown model kind {kind!r} (known: {', '.join(MODEL_KINDS)})")
    if not sources:
        raise TrainingError("give at least one --data source")
    model_name = model_name or settings.model_name

    step(f"loading {', '.join(sources)}")
    store = DatasetStore(settings, log=step)
    try:
        loaded = [
            _corrections_source(settings, step)
            if source == CORRECTIONS
            else load_source(source, store)
            for source in sources
        ]
    except DatasetError as error:
        raise TrainingError(str(error)) from error
    corrections_used = next(
        (int(s.lineage["corrections.used"]) for s in loaded if s.name == CORRECTIONS), None
    )
    loaded = [source for source in loaded if len(source.train)]
    if not loaded:
        raise TrainingError("nothing to train on: every source is empty")
    assembled = assemble_data(loaded, seed)
    train_frame, test_frame, eval_description = (
        assembled.train,
        assembled.test,
        assembled.described,
    )
    train_frame, out_of_scope_train = split_out_of_scope(train_frame)
    test_frame, out_of_scope_test = split_out_of_scope(test_frame)
    if limit_per_class:
        train_frame = _subsample(train_frame, limit_per_class, seed)
        eval_description += f",train-limit-{limit_per_class}"
    scarce = _scarce_labels(train_frame)
    if scarce:
        shown = ", ".join(f"{label} ({n})" for label, n in scarce[:15])
        more = f" and {len(scarce) - 15} more" if len(scarce) > 15 else ""
        step(
            f"warning: {len(scarce)} labels have fewer than {FEW_EXAMPLES} training examples and "
            f"may not be learned reliably: {shown}{more}. Add examples, or let the desks' "
            "corrections add them (`train --data corrections`)"
        )
    out_of_scope = out_of_scope_for(settings, store, out_of_scope_train, out_of_scope_test, step)
    out_of_scope_train, out_of_scope_test = out_of_scope.tuning, out_of_scope.test

    try:
        desk_map: DeskMap | None = DeskMap.from_yaml(settings.desks_path)
    except DeskMapError:
        desk_map = None
    intents = sorted(set(train_frame["label"]))
    if desk_map is None or not desk_map.covers(intents):
        desk_map = DeskMap.one_per_intent(intents)  # judged per intent

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
    refitting = _refit_plan(refit, limit_per_class, assembled.carved)
    expected_time = (
        _expected_time(
            settings,
            kind,
            encoder,
            epochs,
            seed,
            train_frame,
            test_frame,
            out_of_scope,
            step,
            refit_extra=len(assembled.carved) if refitting is None else None,
        )
        if needs_e5(kind)
        else None
    )
    started = time.perf_counter()
    step(f"training {kind}")
    model = build_model(
        kind, seed, epochs, encoder, settings.target_precision, settings.calibration_cv
    )
    # Each text through the fine-tuned member's frozen layers once, from the first fit to
    # the refit.
    with frozen_layers_once(model.members):
        estimator = model.fit(
            train_frame["text"].tolist(),
            train_frame["label"].tolist(),
            languages=text_languages,
            native_languages=native_languages,
            desk_of=desk_map.desk_of,
            out_of_scope=out_of_scope_train,
            out_of_scope_share=out_of_scope.share,
            translate_validation=lambda texts: translated_validation(texts, step),
            # Refitted on everything below: a last fit on the training share would be thrown away.
            final=refitting is not None,
            step=step,
        )
        train_seconds = time.perf_counter() - started
        native = estimator.expected_.get("native")
        if native is not None and native.n and not native.routed:
            step(
                f"warning: no threshold shows {settings.target_precision:.0%} precision on the "
                f"{native.n:,} examples calibration held out: every inquiry will go to triage. "
                "Mislabelled examples do this (the model's right answers count as mistakes): "
                "check the labels of what `inquiry-router evaluate --data FILE` gets wrong, or "
                "lower INQUIRY_ROUTER_TARGET_PRECISION"
            )

        # The held-out text is in the training languages: read as written, by every member, and
        # routed by the same router the service uses.
        step(f"evaluating on {len(test_frame):,} held-out examples")
        pipeline = assemble(
            settings, TextClassifier(estimator, ModelRef(model_name, "new", "")), desk_map
        )
        classes = pipeline.classifier.classes
        test_texts = test_frame["text"].tolist()
        probabilities = estimator.predict_proba(test_texts)
        gold = test_frame["label"].tolist()
        evaluation = evaluate(
            probabilities,
            classes,
            gold,
            pipeline.route(
                probabilities, [Reading.NATIVE] * len(gold), estimator.off_topic_scores(test_texts)
            ),
            pipeline.router.threshold,
            desk_map,
        )
        if out_of_scope_test:
            outside = estimator.predict_proba(out_of_scope_test)
            record_out_of_scope(
                evaluation,
                pipeline.route(
                    outside,
                    [Reading.NATIVE] * len(out_of_scope_test),
                    estimator.off_topic_scores(out_of_scope_test),
                ),
            )

        final, final_frame, final_off_topic = estimator, train_frame, out_of_scope_train
        if refitting is None:
            carved, carved_off_topic = split_out_of_scope(assembled.carved)
            final_frame = pd.concat([train_frame, carved], ignore_index=True)
            final_off_topic = out_of_scope_train + (
                carved_off_topic if out_of_scope.source == "training data" else []
            )
            refit_started = time.perf_counter()
            final = estimator.refitted(
                final_frame["text"].tolist(),
                final_frame["label"].tolist(),
                out_of_scope=final_off_topic,
                step=step,
            )
            refitting = (
                f"yes: on all {len(final_frame):,} examples, the {len(carved):,} held out for the "
                f"figures included; thresholds as calibrated; the figures are of the model before, "
                f"which learned {estimator.n_learned_:,}"
            )
            train_seconds += time.perf_counter() - refit_started
        else:
            step(f"not refitted on the held-out examples: {refitting}")
            refitting = f"no: {refitting}"

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
        "n_final": len(final_frame),
        "refit_on_all": refitting[:500],
        "n_classes": int(train_frame["label"].nunique()),
        "labels_with_few_examples": ",".join(label for label, _ in scarce)[:500] or "none",
        "training_languages": languages,
        "native_languages": ",".join(native_languages),
        **({"encoder": encoder} if needs_e5(kind) else {}),
        "temperature": round(estimator.temperature_, 4),
        "multilingual_temperature": round(estimator.foreign_temperature_, 4),
        "multilingual_members": "+".join(
            member_name(member) for member in estimator.multilingual_members
        ),
        **({"epochs": epochs, "fine_tuning.max_steps": MAX_STEPS} if fine_tunes(kind) else {}),
        "out_of_scope.source": out_of_scope.source,
        "out_of_scope.n_tuning": len(out_of_scope_train),
        "out_of_scope.n_test": len(out_of_scope_test),
        "out_of_scope.share": out_of_scope.share,
        "off_topic_threshold": (
            "none"
            if estimator.off_topic_threshold_ is None
            else round(estimator.off_topic_threshold_, 4)
        ),
        "target_precision": settings.target_precision,
        "multilingual_calibration": estimator.foreign_calibration_,
        "calibration": estimator.calibration_,
        "foreign_threshold": (
            "as native"
            if estimator.foreign_threshold_ is None
            else round(estimator.foreign_threshold_, 4)
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
    if any(getattr(m, "encoder", None) == USE_NAME for m in final.members_):
        use_source = UniversalSentenceEncoder.source().source
        tags["encoder.use.source"] = use_source
    registry = ModelRegistry(settings)
    with tempfile.TemporaryDirectory() as scratch:
        report_files = write_report(evaluation, probabilities, classes, gold, Path(scratch))
        registered = registry.log_trained_model(
            estimator=final,
            model_name=model_name,
            params=params,
            metrics={
                **evaluation.as_metrics(),
                **expected_metrics(estimator),
                "train_seconds": train_seconds,
                **fine_tuning_metrics(final),
                **(
                    {}
                    if expected_time is None
                    else {"expected_train_seconds": expected_time.seconds}
                ),
            },
            tags=tags,
            datasets={
                "training": train_frame,
                "evaluation": test_frame,
                **({"final": final_frame} if final is not estimator else {}),
            },
            artifacts={path.name: path for path in report_files},
            sample_texts=test_frame["text"].head(5).tolist(),
            promote=promote,
            trained_on=text_digests([*final_frame["text"], *final_off_topic]),
        )
    comparison = None
    if registered.is_challenger:
        step("comparing the new version (@challenger) with @champion on the same data")
        comparison = _compare_with_champion(
            settings,
            step,
            before=None
            if final is estimator
            else (
                TextClassifier(
                    estimator, ModelRef(model_name, registered.version, "before its refit")
                ),
                text_digests([*train_frame["text"], *out_of_scope_train]),
            ),
        )
    return TrainingReport(
        comparison=comparison,
        corrections_used=corrections_used,
        registered=registered,
        evaluation=evaluation,
        n_train=len(train_frame),
        n_classes=int(train_frame["label"].nunique()),
        train_seconds=train_seconds,
        sources=list(sources),
        encoder_source=None if encoder_source is None else encoder_source.source,
        encoder=encoder if encoder_source is not None else None,
        use_source=use_source,
        foreign_text=describe_foreign(estimator),
        native_languages=tuple(native_languages),
        calibration=estimator.calibration_,
        expected=dict(estimator.expected_),
        expected_seconds=None if expected_time is None else expected_time.seconds,
        off_topic_auroc=estimator.off_topic_auroc_,
        n_final=len(final_frame),
        refit=refitting,
    )


def _compare_with_champion(
    settings: Settings,
    step: Callable[[str], None],
    before: tuple[TextClassifier, set[str]] | None,
) -> Comparison | None:
    """The new @challenger against @champion, as registered, on what neither learned. When
    they learned it all (a model refitted on its whole file learned its held-out split) and
    the challenger was refitted: as it was ``before`` (the model and the digests of what it
    learned), on its held-out split less what the champion learned (new examples). None, said
    why, when they cannot be compared: it stays @challenger."""
    try:
        try:
            return promote_if_better(settings, step=step)
        except NothingLeftToCompare:
            if before is None:
                raise
            step(
                "nothing left that neither learned; comparing the new version as it was before "
                "its refit, on its own held-out examples the champion did not learn"
            )
        model, learned = before
        return promote_if_better(
            settings, step=step, challenger_model=model, challenger_trained_on=learned
        )
    except PromotionError as error:
        step(f"not compared ({error}); it stays @challenger")
        return None


def _refit_plan(refit: bool, limit_per_class: int | None, carved: pd.DataFrame) -> str | None:
    """None when the model is to learn again from all of its data once its figures are
    taken; else why not."""
    if not refit:
        return "--no-refit"
    if not len(carved):
        return "nothing was held out of the training data (the figures are on test splits)"
    if limit_per_class:
        return "--limit-per-class trains on a sample"
    return None


def fine_tuning_metrics(estimator: CalibratedEnsemble) -> dict[str, float]:
    """How far fine-tuning went: fewer than ``epochs`` where the step cap held a large set
    back (``finetune.MAX_STEPS``)."""
    tuned = [m for m in estimator.members_ if isinstance(m, FineTunedEncoderClassifier)]
    return {"fine_tuning_epochs": float(tuned[0].epochs_)} if tuned else {}


def expected_metrics(estimator: CalibratedEnsemble) -> dict[str, float]:
    """What calibration expects of routing, per language group, as MLflow metrics
    (``expected.native.routed_share``, ``..._low``, ``..._high``, ``expected.foreign...``)."""
    metrics: dict[str, float] = {}
    for group, expectation in estimator.expected_.items():
        metrics |= expectation.as_metrics(f"expected.{group}")
    if estimator.off_topic_auroc_ is not None:
        metrics["off_topic_auroc"] = estimator.off_topic_auroc_
    return metrics


def describe_foreign(estimator: CalibratedEnsemble) -> str | None:
    """How the model reads foreign text (not in its native languages), for the training
    summary."""
    members = estimator.multilingual_members
    if not members:
        return None
    if estimator.foreign_threshold_ is None and members == estimator.native_members:
        return None
    native = estimator.native_languages_
    threshold = (
        ("the English threshold" if native == [ENGLISH] else f"the {'/'.join(native)} threshold")
        if estimator.foreign_threshold_ is None
        else f"threshold {estimator.foreign_threshold_:.3f}"
    )
    read_by = "+".join(member_name(member) for member in members)
    return f"read by {read_by}, {threshold}, calibrated on {estimator.foreign_calibration_}"
