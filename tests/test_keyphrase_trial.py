"""The key-phrase trial's targets and rule (training/keyphrase_trial.py)."""

import numpy as np
import pytest

from training import keyphrase_trial as trial


def _index(phrase: str) -> int:
    return next(i for i, (p, _, _) in enumerate(trial.phrases()) if p == phrase)


def test_phrases_are_the_mandarin_lexicons_labelled_ones():
    phrases = {p: label for p, label, _ in trial.phrases()}
    assert phrases["空号"] == "vacant" and phrases["关机"] == "powered_off"
    assert all(label != "-" for label in phrases.values())
    assert not any(p.isascii() for p in phrases)


def test_a_phrase_is_placed_by_the_characters_before_it():
    # 10 characters over 2 s: 空号 is the 7th and 8th
    spans = trial.align("您拨打的号码是空号啊", 1.0, 3.0)
    found = {(i, round(a, 2), round(b, 2)) for i, a, b in spans}
    assert (_index("空号"), 2.4, 2.8) in found

    # a comma is a pause longer than a character: what follows it starts later
    def start(text: str) -> float:
        return next(a for i, a, _ in trial.align(text, 0.0, 2.0) if i == _index("请稍后再拨"))

    assert start("关机，请稍后再拨") > start("关机请稍后再拨") * 1.1


def test_inputs_are_positive_while_the_phrase_is_recent_and_inside():
    ends = 0.76 + 0.08 * np.arange(60)
    y = trial.targets(ends, [(_index("关机"), 2.0, 2.5)])
    t = ends[trial.CONTEXT - 1 :]
    positive = t[y[:, _index("关机")] == 1]
    assert positive.min() >= 2.5 - trial.SLACK_S and positive.max() <= 2.5 + trial.RECENT_S
    assert y.sum() == len(positive) and len(positive) >= 8  # about 10 inputs per occurrence


def test_the_lexicon_rule_picks_the_highest_priority_phrase_heard():
    heard = {_index("请稍后再拨"): 0.99, _index("无法接通"): 0.6}
    assert trial.label_of(heard) == "unreachable"  # 无法接通 outranks 请稍后再拨
    assert trial.label_of({}) is None


@pytest.mark.parametrize("n", [0, 5, trial.CONTEXT, 40])
def test_inputs_are_every_run_of_context_embeddings(n):
    vectors = np.arange(n * 96, dtype=np.float32).reshape(n, 96)
    x = trial.inputs(vectors)
    assert x.shape == (max(0, n - trial.CONTEXT + 1), trial.CONTEXT * 96)
    if len(x):
        np.testing.assert_array_equal(x[-1], vectors[-trial.CONTEXT :].ravel())
