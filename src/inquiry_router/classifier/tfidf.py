"""The TF-IDF model: word 1-2-grams and character 2-5-grams into a multinomial logistic
regression. Logistic regression's probabilities are already close to calibrated; measured on
Banking77 it beat a sigmoid- or isotonic-calibrated LinearSVC (91.5 % vs 91.1-91.3 % accuracy).
"""

from __future__ import annotations

from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

DEFAULT_PARAMS: dict[str, Any] = {
    "word_ngram_max": 2,
    "char_ngram_min": 2,
    "char_ngram_max": 5,
    "char_min_df": 2,
    "C": 30.0,
    "max_iter": 2000,
}


def build_tfidf_model(random_state: int = 0, **overrides: Any) -> Pipeline:
    params = {**DEFAULT_PARAMS, **overrides}
    features = FeatureUnion(
        [
            (
                "words",
                TfidfVectorizer(ngram_range=(1, int(params["word_ngram_max"])), sublinear_tf=True),
            ),
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(int(params["char_ngram_min"]), int(params["char_ngram_max"])),
                    min_df=int(params["char_min_df"]),
                    sublinear_tf=True,
                ),
            ),
        ]
    )
    classifier = LogisticRegression(
        C=float(params["C"]), max_iter=int(params["max_iter"]), random_state=random_state
    )
    return Pipeline([("features", features), ("classifier", classifier)])
