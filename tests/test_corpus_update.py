"""Updating a corpus after a prompt edit: only the labels whose recipe changed are made
again, and the result is the full build's corpus, file for file."""

import json
from pathlib import Path

import pytest

from training import corpus

LABELS = ("vacant", "busy_tone", "human")
SIZES = (2, 1)  # clips per label: training, held-out


def _build(out: Path, update: bool) -> None:
    corpus.build(out, *SIZES, jobs=1, labels=LABELS, progress=False, update=update)


def _snapshot(out: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of the corpus: its bytes and when it was last written."""
    return {
        str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def _clips_of(snapshot: dict, label: str) -> set[str]:
    return {name for name in snapshot if name.endswith(".wav") and Path(name).name.startswith(f"{label}_")}


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    _build(out, update=False)
    return out, _snapshot(out)


def _tamper(out: Path, change) -> None:
    path = out / corpus.RECIPE_RECORD
    record = json.loads(path.read_text(encoding="utf-8"))
    change(record)
    path.write_text(json.dumps(record), encoding="utf-8")


def _contents(snapshot: dict) -> dict[str, bytes]:
    return {name: data for name, (data, _) in snapshot.items()}


def _rewritten(before: dict, after: dict) -> set[str]:
    return {name for name in before if name.endswith(".wav") and after[name][1] != before[name][1]}


def test_a_label_whose_prompts_changed_is_made_again_and_the_rest_kept(full):
    out, original = full
    before = _snapshot(out)
    _tamper(out, lambda r: r["labels"].update(vacant="an earlier wording"))
    _build(out, update=True)
    after = _snapshot(out)
    assert _rewritten(before, after) == _clips_of(before, "vacant")
    assert _contents(after) == _contents(original)  # the full build's corpus


def test_a_missing_clip_makes_its_label_again(full):
    out, original = full
    before = _snapshot(out)
    (out / "train" / "human_0001.wav").unlink()
    _build(out, update=True)
    after = _snapshot(out)
    assert _rewritten(before, after) == _clips_of(before, "human")  # the missing one too
    assert _contents(after) == _contents(original)


@pytest.mark.parametrize("how", ["common", "no record", "not a record"])
def test_a_changed_recipe_or_an_unfinished_corpus_is_made_again_whole(full, how):
    out, original = full
    before = _snapshot(out)
    if how == "common":
        _tamper(out, lambda r: r.update(common="other code"))
    elif how == "no record":  # a build stopped halfway leaves none
        (out / corpus.RECIPE_RECORD).unlink()
    else:
        (out / corpus.RECIPE_RECORD).write_text("[]", encoding="utf-8")
    _build(out, update=True)
    after = _snapshot(out)
    assert _rewritten(before, after) == {name for name in before if name.endswith(".wav")}
    assert _contents(after) == _contents(original)


def test_each_label_is_tied_to_its_own_prompts_only():
    prompts = corpus.load_prompts()
    edited = json.loads(json.dumps(prompts))
    edited["announcements"]["vacant"]["en"].append("The number you have called has never existed.")
    edited["human"]["zh"].append("喂，您找谁？")
    changed = {
        label
        for label in corpus.MODEL_LABELS
        if corpus.label_prompts(edited, label) != corpus.label_prompts(prompts, label)
    }
    assert changed == {"vacant", "human"}
    edited["sit_before_english"] = [*prompts["sit_before_english"], "barred"]
    assert corpus.label_prompts(edited, "barred") != corpus.label_prompts(prompts, "barred")
