import pytest

from softprompt_xl.data.tasks import metrics


def test_exact_match_and_f1_on_hand_computed_cases():
    # prediction "the big cat", gold "a big dog": after removing articles 1 of 2 tokens overlap -> P=R=F1=0.5
    assert metrics.token_f1("the big cat", "a big dog", "en") == 0.5
    assert metrics.exact_match("The Cat!", "cat", "en") == 1.0
    scores = metrics.squad(["Bratislava", "v Prahe", "nic"], [["Bratislava"], ["Praha", "v Prahe"], ["Košice"]], "sk")
    assert scores["exact_match"] == pytest.approx(100 * 2 / 3)
    assert scores["f1"] == pytest.approx(100 * 2 / 3)


def test_best_gold_answer_counts():
    # precision 1/2, recall 1/1 against the second gold -> F1 2/3, better than 0 against the first
    assert metrics.squad(["big house"], [["tree", "house"]], "en")["f1"] == pytest.approx(100 * 2 / 3)


def test_normalisation_is_not_english_only():
    assert metrics.normalize_answer("«Bratislave»!", "sk") == "bratislave"
    assert metrics.normalize_answer("Žltá  ŽABA.", "sk") == "žltá žaba"  # diacritics kept, case folded
    assert metrics.normalize_answer("హైదరాబాద్‌లో.", "te") == "హైదరాబాద్‌లో"  # vowel signs are not punctuation
    assert metrics.normalize_answer("The cat", "en") == "cat"
    assert metrics.normalize_answer("The cat", "de") == "the cat"  # English articles for English only
    assert metrics.normalize_answer("Die Katze", "de") == "katze"  # German ones for German (MLQA's list)


def test_empty_answers():
    # as the official scripts: two empty answers match exactly but share no token, so F1 is 0
    assert metrics.exact_match("", "", "en") == 1.0 and metrics.token_f1("", "", "en") == 0.0
    assert metrics.token_f1("the", "cat", "en") == 0.0
    assert metrics.squad([], [], "en") == {"exact_match": 0.0, "f1": 0.0}
