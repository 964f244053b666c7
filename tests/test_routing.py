from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from inquiry_router.config import Settings
from inquiry_router.datasets import DatasetStore
from inquiry_router.domain import Prediction, Reading, reading_for
from inquiry_router.routing import DeskMap, DeskMapError, Router

from .conftest import mirror_dir

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "desks.yaml"


def test_shipped_desks_file_maps_every_banking77_intent_once(tmp_path: Path) -> None:
    desk_map = DeskMap.from_yaml(SHIPPED)
    categories = DatasetStore(Settings(home=tmp_path, data_mirror=mirror_dir())).fetch(
        "banking77", "categories.json"
    )
    intents = json.loads(categories.path.read_text())
    desk_map.check_covers(intents)  # raises if any intent has no desk
    assert desk_map.triage_desk == "triage"
    assert 5 <= len(desk_map.names) <= 10


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"desks": {"cards": {"intents": ["a"]}}}, "triage_desk 'triage' is not defined"),
        (
            {"desks": {"triage": {}, "cards": {"intents": ["a"]}, "cash": {"intents": ["a"]}}},
            "intent 'a' is mapped to both 'cards' and 'cash'",
        ),
        ({"desks": {"triage": {}, "Cards!": {"intents": ["a"]}}}, "desk 'Cards!'"),
        ({"desks": {"triage": {}, "cards": {"intentz": ["a"]}}}, "unknown key(s) intentz"),
        ({"desks": {"triage": {}, "cards": {"threshold": 1.5}}}, "threshold 1.5"),
        ({"desks": {"triage": {"intents": ["a"]}}}, "must not take intents"),
        ({"desks": []}, "non-empty mapping"),
    ],
)
def test_invalid_desks_file_names_the_bad_entry(raw: object, named: str) -> None:
    with pytest.raises(DeskMapError) as error:
        DeskMap.from_dict(raw, source="desks.yaml")
    assert named in str(error.value)
    assert str(error.value).startswith("desks.yaml")


def test_unparseable_yaml_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "desks.yaml"
    broken.write_text("desks: [unclosed\n")
    with pytest.raises(DeskMapError, match="not valid YAML"):
        DeskMap.from_yaml(broken)


def test_model_intents_without_a_desk_are_named() -> None:
    desk_map = DeskMap.from_dict({"desks": {"triage": {}, "cards": {"intents": ["card_arrival"]}}})
    with pytest.raises(DeskMapError, match="no desk handles: refund"):
        desk_map.check_covers(["card_arrival", "refund"])


def _prediction(**probabilities: float) -> Prediction:
    ranked = sorted(probabilities.items(), key=lambda item: -item[1])
    return Prediction(ranked[0][0], ranked[0][1], ranked[1][0], ranked[1][1], probabilities)


DESKS = DeskMap.from_dict(
    {
        "desks": {
            "triage": {},
            "cards": {"intents": ["card_arrival", "card_linking"]},
            "cash": {"intents": ["atm_support"], "threshold": 0.9},
        }
    }
)


def test_sibling_intents_add_up_to_a_confident_desk() -> None:
    prediction, routing = Router(DESKS, 0.55).route(
        _prediction(card_arrival=0.35, card_linking=0.30, atm_support=0.35)
    )
    assert routing.desk == "cards"
    assert routing.auto_routed
    assert routing.desk_confidence == pytest.approx(0.65)
    assert prediction.intent == "card_arrival"
    assert "0.65 >= threshold 0.55" in routing.reason


def test_below_threshold_goes_to_triage_with_the_numbers() -> None:
    _, routing = Router(DESKS, 0.55).route(
        _prediction(card_arrival=0.41, card_linking=0.0, atm_support=0.59)
    )
    assert routing.desk == "triage"  # cash has its own threshold of 0.9
    assert not routing.auto_routed
    assert "0.59 < triage threshold 0.90" in routing.reason
    assert "cash" in routing.reason


def test_the_intent_reported_belongs_to_the_chosen_desk() -> None:
    prediction, routing = Router(DESKS, 0.5).route(
        _prediction(atm_support=0.40, card_arrival=0.31, card_linking=0.29)
    )
    assert routing.desk == "cards"
    assert prediction.intent == "card_arrival"
    assert prediction.runner_up == "atm_support"


def test_text_not_written_in_english_meets_its_own_higher_threshold() -> None:
    router = Router(DESKS, 0.55, foreign_threshold=0.8)
    prediction = _prediction(card_arrival=0.7, card_linking=0.0, atm_support=0.3)
    _, english = router.route(prediction)
    _, foreign = router.route(prediction, Reading.FOREIGN)
    assert english.desk == "cards" and english.auto_routed
    assert foreign.desk == "triage" and not foreign.auto_routed
    assert "0.70 < triage foreign-text threshold 0.80" in foreign.reason
    # A desk's own threshold (cash: 0.9) is the lead's choice, for every language.
    assert router.threshold_for("cash", foreign=True) == 0.9
    # In a batch, each text gets the threshold of its reading: undetermined text, read both
    # ways, is held to the foreign-text one too.
    routed = router.route_batch([prediction] * 3, [Reading.NATIVE, Reading.FOREIGN, Reading.BOTH])
    assert [routing.desk for _, routing in routed] == ["cards", "triage", "triage"]


def test_a_text_unlike_every_intent_goes_to_triage_however_sure_the_intent() -> None:
    router = Router(DESKS, 0.55, off_topic_threshold=-0.1, foreign_off_topic_threshold=0.05)
    sure = _prediction(card_arrival=0.95, card_linking=0.0, atm_support=0.05)
    _, near = router.route(sure, Reading.NATIVE, off_topic=-0.2)
    _, far = router.route(sure, Reading.NATIVE, off_topic=0.0)
    assert near.desk == "cards" and near.auto_routed
    assert far.desk == "triage" and not far.auto_routed
    assert far.reason.startswith("looks off-topic")
    assert "0.000 > -0.100" in far.reason
    # Triage still sees which desks it resembles most.
    assert far.candidates[0].desk == "cards"
    # Foreign text lies further from the (English) examples: it has its own gate.
    _, foreign = router.route(sure, Reading.FOREIGN, off_topic=0.0)
    assert foreign.desk == "cards"
    # No score (a model without a detector): the threshold alone decides.
    routed = router.route_batch([sure, sure], [Reading.NATIVE] * 2, [0.0, -0.5])
    assert [routing.desk for _, routing in routed] == ["triage", "cards"]
    assert router.route(sure)[1].desk == "cards"


def test_one_rule_says_how_each_text_is_read() -> None:
    assert reading_for("en") is Reading.NATIVE
    assert reading_for("de") is Reading.FOREIGN
    assert reading_for("und") is Reading.BOTH
    # A model trained on German and English reads both as written, and English as foreign
    # when trained on German alone.
    assert reading_for("de", ("de", "en")) is Reading.NATIVE
    assert reading_for("en", ("de",)) is Reading.FOREIGN


def test_the_desks_file_is_read_once_and_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "desks.yaml"
    path.write_text("desks:\n  triage: {}\n  cards:\n    intents: [card_arrival]\n")
    first = DeskMap.from_yaml(path)
    assert DeskMap.from_yaml(path) is first
    path.write_text("desks:\n  triage: {}\n  cash:\n    intents: [atm_support]\n")
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock says
    assert DeskMap.from_yaml(path).desk_for("atm_support") == "cash"
