"""Fusion of channel evidence, with and without signalling hints."""

import numpy as np
import pytest

from audio_classifier import Classifier, ClassifierConfig, Evidence, Hints, synth
from audio_classifier.config import FusionConfig
from audio_classifier.errors import ConfigError
from audio_classifier.fusion import fuse
from audio_classifier.resample import Resampler

CFG = FusionConfig()


def ev(label, score, channel="tone"):
    return Evidence(channel, label, score, 0.0, 1.0)


def test_single_claim_keeps_its_score():
    result = fuse([ev("busy_tone", 0.92)], CFG)
    assert result.label == "busy_tone" and result.confidence == pytest.approx(0.92)


def test_agreeing_channels_raise_confidence_and_disagreeing_lower_it():
    alone = fuse([ev("vacant", 0.8, "model")], CFG).confidence
    agree = fuse([ev("vacant", 0.8, "model"), ev("vacant", 0.8, "asr")], CFG)
    disagree = fuse([ev("vacant", 0.8, "model"), ev("suspended", 0.6, "asr")], CFG)
    assert agree.label == "vacant" and agree.confidence > alone
    assert disagree.label == "vacant" and disagree.confidence < alone


def test_tiers_outcome_supersedes_progress_and_specific_explains_generic():
    assert fuse([ev("ringback", 0.97), ev("busy_tone", 0.92)], CFG).label == "busy_tone"
    result = fuse([ev("busy_tone", 0.97), ev("vacant", 0.85, "asr")], CFG)
    assert result.label == "vacant" and result.confidence == pytest.approx(0.85, abs=0.01)
    # a weak outcome does not push ringback aside
    assert fuse([ev("ringback", 0.9), ev("busy_tone", 0.4)], CFG).label == "ringback"


def test_a_weak_outcome_heard_after_the_ringing_stopped_ends_progress():
    # ringback, then an announcement under babble the model is unsure of (held-out clips)
    ringing = [Evidence("tone", "ringback", 0.95, 0.0, 3.8), Evidence("model", "ringback", 0.8, 1.5, 3.5)]
    after = Evidence("model", "ported", 0.43, 6.8, 8.8)
    result = fuse([*ringing, after], CFG)
    assert result.label == "ported" and result.confidence == pytest.approx(0.43)
    # a weak claim made while the ringback was still heard does not end it
    during = Evidence("model", "human", 0.43, 2.0, 4.0)
    assert fuse([*ringing, during], CFG).label == "ringback"
    # nor does an unconfirmed tone label (no fax tone sounded), nor one window that began
    # just before the ringback's last claim ended
    assert fuse([*ringing, Evidence("model", "fax", 0.43, 6.8, 8.8)], CFG).label == "ringback"
    assert fuse([*ringing, Evidence("model", "ported", 0.43, 3.7, 5.7)], CFG).label == "ringback"
    # silence before a weak announcement is progress too
    quiet = [Evidence("model", "silence", 0.9, 0.0, 2.0), after]
    assert fuse(quiet, CFG).label == "ported"
    # a signalled outcome still decides when no audio outcome reaches the floor
    hinted = Evidence("signalling", "busy", 0.9, 0.0, 0.0, {"sip_status": 486})
    assert fuse([*ringing, after, hinted], CFG).label == "busy"


def test_a_tone_label_from_another_channel_pushes_nothing_aside_without_the_tone_channel():
    # the model calling babble over ringback "fax": no fax tone was heard, ringback stays
    ringing = [ev("ringback", 0.93), ev("ringback", 0.95, "model")]
    result = fuse([*ringing, ev("fax", 0.88, "model")], CFG)
    assert result.label == "ringback" and result.confidence > 0.9
    assert fuse([ev("ringback", 0.8), ev("sit", 0.7, "model")], CFG).label == "ringback"
    # heard by the tone channel too, the same claim wins as before
    assert fuse([*ringing, ev("fax", 0.88, "model"), ev("fax", 0.6)], CFG).label == "fax"
    # alone, it still stands on its own score
    alone = fuse([ev("fax", 0.88, "model")], CFG)
    assert alone.label == "fax" and alone.confidence == pytest.approx(0.88)
    # announcements are not tone-defined: the model's claim supersedes ringback
    assert fuse([*ringing, ev("vacant", 0.7, "model")], CFG).label == "vacant"
    # an unconfirmed tone label is no outcome heard: a signalled outcome decides
    hinted = Evidence("signalling", "busy", 0.9, 0.0, 0.0, {"sip_status": 486})
    assert fuse([*ringing, ev("fax", 0.88, "model"), hinted], CFG).label == "busy"


def test_the_gaps_of_a_cadenced_tone_are_not_silence():
    # the model's last window fell in a 4 s gap of CN ringback: the tone channel heard the cadence
    gap = Evidence("model", "silence", 0.997, 12.5, 14.5)
    result = fuse([ev("ringback", 0.97), gap], CFG)
    assert result.label == "ringback" and result.confidence == pytest.approx(0.97)
    # the tone channel's own silence still competes, and without its ringback the model's stands
    assert fuse([ev("ringback", 0.97), ev("silence", 0.99)], CFG).label == "silence"
    assert fuse([ev("ringback", 0.9, "model"), gap], CFG).label == "silence"


def test_ringback_ending_in_a_gap_under_band_limited_noise_stays_ringback():
    """CN ringback whose last 3.5 s are a gap, its noise low-passed at 3.7 kHz as a codec
    filters a line's noise. The model shipped before 2026-12-02 called the gap "silence"
    (0.997) and the call with it; the fusion rule above and the recipe's noise under the
    channel's filter (which the current model was trained with) each put that right."""
    classifier = Classifier(ClassifierConfig(samples_path=None, asr_model=None))
    spec = synth.spec("CN", "ringback")
    x = synth.cadenced(spec, 14.5)  # bursts at 0, 5 and 10 s
    x = synth.add_noise(x, 40.0, np.random.default_rng(3), reference=synth.tone_power(spec))
    up, down = Resampler(8000, 16000), Resampler(16000, 8000)
    wide = np.concatenate([up.process(x), up.flush()])
    x = synth.g711_channel(np.concatenate([down.process(wide), down.flush()]))
    decision = classifier.classify_array(x, 8000)
    assert ("tone", "ringback") in {(e.channel, e.label) for e in decision.evidence}
    assert decision.label == "ringback" and decision.confidence > 0.9


def test_channels_hearing_the_same_tone_do_not_multiply():
    # an intercept SIT waits below the threshold for its announcement, however sure the
    # model is that it heard a SIT too: both heard the same tone
    result = fuse([ev("sit", 0.85), ev("sit", 0.8, "model")], CFG)
    assert result.label == "sit" and result.confidence == pytest.approx(0.85)
    assert result.confidence < CFG.decision_threshold
    assert fuse([ev("sit", 0.85), ev("sit", 0.95, "model")], CFG).confidence == pytest.approx(0.95)
    # a SIT that names the outcome and the announcement's words are independent: they multiply
    assert fuse([ev("vacant", 0.93), ev("vacant", 0.8, "model")], CFG).confidence > 0.95


def test_hints_never_override_clear_audio():
    tone = ev("congestion_tone", 0.92)
    for cause, expected in [(1, "congestion_tone"), (17, "congestion_tone"), (34, "congestion_tone")]:
        result = fuse([tone, *Hints(q850_cause=cause).evidence()], CFG)
        assert result.label == expected
    agreeing = fuse([tone, *Hints(q850_cause=34).evidence()], CFG).confidence
    conflicting = fuse([tone, *Hints(q850_cause=1).evidence()], CFG).confidence
    assert agreeing > 0.92 > conflicting


def test_hints_alone_or_after_progress_give_a_tentative_outcome():
    alone = fuse(Hints(sip_status=404).evidence(), CFG)
    assert alone.label == "vacant" and 0.5 < alone.confidence < CFG.decision_threshold
    after_ringback = fuse([ev("ringback", 0.95), *Hints(sip_status=486).evidence()], CFG)
    assert after_ringback.label == "busy"
    q850_wins = Hints(sip_status=404, q850_cause=17).evidence()
    assert {e.label for e in q850_wins} == {"busy", "busy_tone"}


def test_no_evidence_is_unknown():
    assert fuse([], CFG).label == "unknown"


def test_hint_parsing_errors():
    assert Hints.from_mapping({"sip_status": "486", "q850_cause": ""}) == Hints(486, None)
    with pytest.raises(ConfigError, match="sip_status must be an integer"):
        Hints.from_mapping({"sip_status": "busy"})
    with pytest.raises(ConfigError, match=r"within 0\.\.127"):
        Hints.from_mapping({"q850_cause": 300})


def test_session_with_hints_end_to_end(classifier):
    busy = synth.cadenced(synth.spec("CN", "busy"), 4.0)
    plain = classifier.classify_array(busy, 8000)
    hinted = classifier.classify_array(busy, 8000, hints={"sip_status": 486})
    contrary = classifier.classify_array(busy, 8000, hints={"q850_cause": 1})
    assert plain.label == hinted.label == contrary.label == "busy_tone"
    assert hinted.confidence > plain.confidence
    assert any(e.channel == "signalling" for e in hinted.evidence)
    silent = classifier.classify_array(synth.silence(3.0), 8000, hints={"q850_cause": 17})
    assert silent.label == "busy" and not silent.confidence >= 0.9


def test_threshold_is_configurable():
    cfg = ClassifierConfig().with_options(decision_threshold=0.99, max_duration_s=5)
    assert cfg.fusion.decision_threshold == 0.99 and cfg.max_duration_s == 5
    with pytest.raises(ConfigError):
        ClassifierConfig().with_options(decision_threshold=1.5)
    with pytest.raises(ConfigError, match="unknown option"):
        ClassifierConfig().with_options(bogus=1)
