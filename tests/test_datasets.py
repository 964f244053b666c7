from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from inquiry_router.config import Settings
from inquiry_router.datasets import (
    DatasetError,
    DatasetStore,
    load_banking77,
    load_banking77_oos,
    load_source,
    load_xsid,
    read_labeled_file,
    unsegment,
)

from .conftest import mirror_dir


def _store(tmp_path: Path, mirror: Path | None) -> DatasetStore:
    return DatasetStore(
        Settings(home=tmp_path, data_mirror=mirror, download_timeout_s=2)  # type: ignore[arg-type]
    )


def test_banking77_from_the_mirror_is_verified_and_complete(tmp_path: Path) -> None:
    messages: list[str] = []
    store = DatasetStore(Settings(home=tmp_path, data_mirror=mirror_dir()), log=messages.append)
    data = load_banking77(store)
    assert len(data.train) == 10_003
    assert data.test is not None and len(data.test) == 3_080
    assert data.train["label"].nunique() == 77
    assert data.lineage["banking77.source"] in {"mirror", "cache", "download"}
    assert any("banking77/train.csv" in message for message in messages)


def test_banking77_oos_trains_with_its_off_topic_questions_and_tests_on_both_kinds(
    tmp_path: Path,
) -> None:
    store = DatasetStore(Settings(home=tmp_path, data_mirror=mirror_dir()))
    data = load_source("banking77-oos", store)
    in_scope = data.train[data.train["label"] != "oos"]
    assert len(in_scope) == 5_894 and in_scope["label"].nunique() == 50
    # The in-domain off-topic questions (the other 27 intents) tune; validation tests, with
    # 530 in-domain and 200 out-of-domain ones.
    assert (data.train["label"] == "oos").sum() == 2_063
    assert data.test is not None
    assert (data.test["label"] == "oos").sum() == 730 and len(data.test) == 1_504 + 730
    assert data.lineage["banking77-oos.train/seq.in.sha256"].startswith("5ba97261")
    assert data.lineage["banking77-oos.id-oos/train/seq.in.sha256"].startswith("cd0e24f0")
    assert data.lineage["banking77-oos.train.labels_corrected"] == "502"


def test_banking77_oos_questions_take_their_label_from_banking77(tmp_path: Path) -> None:
    # The published files shift labels at the intents' boundaries: a question about a card
    # that stopped working (an intent left out) is published as exchange_via_app, and one
    # about a cash withdrawal's exchange rate (one of the 50) as off-topic.
    store = DatasetStore(Settings(home=tmp_path, data_mirror=mirror_dir()))
    broken = "can you tell me whats going on with my card it seems to be not working?"
    rate = "the rate of exchange for my cash withdrawal is wrong."
    published = load_banking77_oos(store, correct=False)
    labels = dict(zip(published.train["text"], published.train["label"], strict=True))
    assert labels[broken] == "exchange_via_app" and rate in published.in_domain_train
    assert published.corrected == {"train": 0, "valid": 0}
    assert len(published.train) == 5_903  # two blank lines dropped

    corrected = load_banking77_oos(store)
    labels = dict(zip(corrected.train["text"], corrected.train["label"], strict=True))
    assert broken not in labels and broken in corrected.in_domain_train
    assert labels[rate] == "wrong_exchange_rate_for_cash_withdrawal"
    assert rate not in corrected.in_domain_train
    assert corrected.corrected == {"train": 502, "valid": 78}
    assert set(corrected.train["label"]) == set(published.train["label"])
    assert len(corrected.valid) + len(corrected.in_domain_valid) == 1_506 + 528


def test_a_corrupt_mirror_copy_is_refused_with_the_reason(tmp_path: Path) -> None:
    source = mirror_dir()
    assert source is not None, "make test sets INQUIRY_ROUTER_DATA_MIRROR"
    mirror = tmp_path / "mirror"
    (mirror / "banking77").mkdir(parents=True)
    shutil.copy(source / "banking77" / "test.csv", mirror / "banking77" / "test.csv")
    with (mirror / "banking77" / "test.csv").open("a") as handle:
        handle.write("tampered,card_arrival\n")
    with pytest.raises(DatasetError) as error:
        _store(tmp_path, mirror).fetch("banking77", "test.csv")
    message = str(error.value)
    assert "has checksum" in message
    assert "INQUIRY_ROUTER_DATA_MIRROR" in message


def test_a_verified_download_cache_is_reused(tmp_path: Path) -> None:
    source = mirror_dir()
    assert source is not None
    cache = tmp_path / "data" / "raw" / "banking77"
    cache.mkdir(parents=True)
    shutil.copy(source / "banking77" / "categories.json", cache / "categories.json")
    fetched = _store(tmp_path, None).fetch("banking77", "categories.json")
    assert fetched.source == "cache"


def test_xsid_sentences_carry_text_gold_english_and_intent(tmp_path: Path) -> None:
    sentences = load_xsid(_store(tmp_path, mirror_dir()), "de")
    assert len(sentences) > 250
    first = sentences[0]
    assert first.text == "Regnet es heute?"
    assert first.text_en == "Is it going to rain today?"
    assert first.intent == "weather/find"


def test_xsid_japanese_is_read_as_typed_not_word_segmented(tmp_path: Path) -> None:
    # The file has "今日 は 雨 が 降り ます か" and a full-width question mark.
    first = load_xsid(_store(tmp_path, mirror_dir()), "ja")[0]
    assert first.text.startswith("今日は雨が降りますか")
    assert unsegment("ArcLight Hollywood の 上映 時間") == "ArcLight Hollywood の上映時間"
    assert unsegment("明日 の 午前 1 1 時 に") == "明日の午前11時に"
    assert unsegment("wake me at 7 30") == "wake me at 7 30"  # no CJK: left alone


def test_user_files_need_text_and_label(tmp_path: Path) -> None:
    good = tmp_path / "mine.jsonl"
    good.write_text('{"text": "where is my parcel", "label": "shipping"}\n')
    assert read_labeled_file(good).to_dict("records") == [
        {"text": "where is my parcel", "label": "shipping"}
    ]
    missing = tmp_path / "bad.csv"
    missing.write_text("message,label\nhello,greet\n")
    with pytest.raises(DatasetError, match="missing column"):
        read_labeled_file(missing)
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\nhello,greet\n,greet\n")
    with pytest.raises(DatasetError, match="line 3"):
        read_labeled_file(empty)
    with pytest.raises(DatasetError, match="neither a known dataset"):
        load_source("bankingg77", _store(tmp_path, None))
    other = tmp_path / "x.txt"
    other.write_text("a")
    with pytest.raises(DatasetError, match=r"expected a \.csv or \.jsonl"):
        read_labeled_file(other)
