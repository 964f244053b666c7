"""``inquiry-router bench loop``: the learning loop end to end, as a support lead runs it.

1. Train on Banking77 with one intent left out entirely (``retrain``: the first version is
   @champion).
2. Serve it; post that intent's training texts as inquiries; each desk corrects up to N of the
   ones the model sent elsewhere, through the API with its own key (reroute to the right desk,
   with the intent).
3. ``retrain``: the configured sources plus the corrections; the challenger is promoted only
   when the rule says so.
4. Both versions on Banking77's official test set: the left-out intent's texts routed to the
   right desk, before and after, and every other intent's desk accuracy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from ..config import Settings
from ..datasets import DatasetStore, load_banking77
from ..domain import InquiryText
from ..pipeline import assemble
from ..registry import ModelRegistry
from ..routing import DeskMap
from .retrain import retrain
from .service_bench import BenchError, running_service

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LoopResult:
    left_out: str
    desk: str
    kind: str
    sent: int
    corrected: int
    summary: str  # retrain's line
    retrain_s: tuple[float, float]  # the first training, the retraining
    before: dict[str, float]
    after: dict[str, float]


def _score(settings: Settings, version: str, left_out: str, desk_map: DeskMap) -> dict[str, float]:
    """On Banking77's test set: the left-out intent's texts routed (without a person) to the
    right desk, their best desk right, and the other intents' desk accuracy."""
    classifier = ModelRegistry(settings).load(f"models:/{settings.model_name}/{version}")
    pipeline = assemble(settings, classifier, desk_map)
    test = load_banking77(DatasetStore(settings)).test
    assert test is not None
    done = pipeline.read([InquiryText(text) for text in test["text"]])
    routed = pipeline.route_read(done)
    gold = test["label"].to_numpy()
    right_desk = np.array([desk_map.desk_for(g) for g in gold])
    best = np.array([desk_map.desk_for(p.intent) for p, _ in routed])
    sent = np.array([r.desk if r.auto_routed else "triage" for _, r in routed])
    mine = gold == left_out
    return {
        "left_out_routed_right": float((sent[mine] == right_desk[mine]).mean()),
        "left_out_best_desk_right": float((best[mine] == right_desk[mine]).mean()),
        "left_out_n": float(mine.sum()),
        "others_desk_accuracy": float((best[~mine] == right_desk[~mine]).mean()),
        "others_routed_share": float((sent[~mine] != "triage").mean()),
    }


def bench_loop(
    settings: Settings,
    left_out: str,
    corrections: int = 50,
    kind: str = "ensemble",
    progress: Progress = lambda _message: None,
) -> LoopResult:
    desk_map = DeskMap.from_yaml(settings.desks_path)
    desk = desk_map.desk_for(left_out)
    if desk is None:
        raise BenchError(f"{left_out!r} is not an intent in {settings.desks_path}")
    if ModelRegistry(settings).champion(settings.model_name) is not None:
        raise BenchError(
            f"{settings.model_name} already has a @champion in {settings.resolved_tracking_uri}: "
            "run the loop in an empty home (INQUIRY_ROUTER_HOME)"
        )
    train = load_banking77(DatasetStore(settings, log=progress)).train
    data = settings.path(Path("data") / f"banking77-without-{left_out}.csv")
    data.parent.mkdir(parents=True, exist_ok=True)
    train[train["label"] != left_out].to_csv(data, index=False)
    settings = settings.model_copy(update={"retrain_sources": str(data)})

    progress(f"1/4 training {kind} on Banking77 without {left_out}")
    started = time.perf_counter()
    retrain(settings, kind=kind, step=progress)
    first_s = time.perf_counter() - started
    before = _score(settings, "1", left_out, desk_map)

    texts = train.loc[train["label"] == left_out, "text"].tolist()
    progress(f"2/4 posting {len(texts)} {left_out} inquiries; desks correct up to {corrections}")
    corrected = 0
    with running_service(settings, database=settings.resolved_database_url) as service:
        keys = {
            name: {"Authorization": f"Bearer {service.store.keys.create(name, desk=name)[1]}"}
            for name in desk_map.names
        }
        with httpx.Client(base_url=service.url, timeout=30) as client:
            ids = [
                client.post("/v1/inquiries", json={"message": text}).json()["id"] for text in texts
            ]
            deadline = time.monotonic() + 600
            while service.routed() < service.total():
                if time.monotonic() > deadline:
                    raise BenchError("the service did not route the inquiries in 10 minutes")
                time.sleep(0.2)
            for inquiry_id in ids:
                if corrected >= corrections:
                    break
                now = client.get(f"/v1/inquiries/{inquiry_id}", headers=service.headers).json()
                if now["desk"] == desk:
                    continue  # in the right desk already: nothing to reroute
                answer = client.post(
                    f"/v1/desks/{now['desk']}/inquiries/{inquiry_id}/reroute",
                    json={"to_desk": desk, "intent": left_out, "note": "bench loop"},
                    headers=keys[now["desk"]],
                )
                if answer.status_code != 200:
                    raise BenchError(f"reroute refused: {answer.status_code} {answer.text[:200]}")
                corrected += 1
    progress(f"   {corrected} corrections made")

    progress("3/4 retraining on Banking77 without it, plus the corrections")
    started = time.perf_counter()
    summary = retrain(settings, kind=kind, step=progress)
    second_s = time.perf_counter() - started
    progress(f"4/4 scoring both versions on Banking77's test set ({summary})")
    after = _score(settings, "2", left_out, desk_map)
    return LoopResult(
        left_out, desk, kind, len(texts), corrected, summary, (first_s, second_s), before, after
    )
