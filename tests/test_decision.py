"""The call-progress decision model (decision.py): each rule on its own, then end to end.

Claims are written by hand with the real channels' declared facts, so every test states
the call shape it stands for; each rule's test fails when the rule is taken out.
"""

import numpy as np
import pytest

from audio_classifier import Classifier, ClassifierConfig, Evidence, Hints, synth
from audio_classifier.channels import LATEST_PER_TIER, ChannelInfo
from audio_classifier.channels.asr import INFO as ASR
from audio_classifier.channels.fingerprint import INFO as FINGERPRINT
from audio_classifier.channels.signalling import SIGNALLING_INFO
from audio_classifier.channels.tone import INFO as TONE
from audio_classifier.config import DecisionConfig
from audio_classifier.decision import (
    HOLD_PENDING,
    HOLD_PREAMBLE,
    HOLD_PROGRESS,
    HOLD_TRANSITION,
    NOTHING_HEARD_CONFIDENCE,
    Memory,
    decide,
)
from audio_classifier.errors import ConfigError
from audio_classifier.resample import Resampler
from audio_classifier.tone_plans import ToneSpec

CFG = DecisionConfig()
MODEL = ChannelInfo("model", window_s=1.5, claims=LATEST_PER_TIER)
INFOS = {i.name: i for i in (TONE, MODEL, ASR, FINGERPRINT, SIGNALLING_INFO)}


def ev(label, score, channel="tone", start=0.0, end=1.0, **kw):
    return Evidence(channel, label, score, start, end, **kw)


def verdict(claims, now=30.0, ended=False, pending=(), config=CFG):
    return decide(claims, INFOS, config, now_s=now, ended=ended, pending=pending)


# -- scoring -----------------------------------------------------------------------------


def test_single_claim_keeps_its_score_and_channels_combine():
    assert verdict([ev("busy_tone", 0.92)]).confidence == pytest.approx(0.92)
    alone = verdict([ev("vacant", 0.8, "model")]).confidence
    agree = verdict([ev("vacant", 0.8, "model"), ev("vacant", 0.8, "asr")])
    disagree = verdict([ev("vacant", 0.8, "model"), ev("suspended", 0.6, "asr")])
    assert agree.label == "vacant" and agree.confidence > alone
    assert disagree.label == "vacant" and disagree.confidence < alone


def test_no_evidence_is_unknown_and_says_how_rarely_that_is_right():
    nothing = verdict([])
    assert nothing.label == "unknown" and nothing.confidence == NOTHING_HEARD_CONFIDENCE < 0.5


# -- rule 1: exact labels ----------------------------------------------------------------


def test_rule_exact_a_tone_heard_by_two_channels_counts_once():
    # both heard the same busy tone: the stronger claim, not the product (0.92 x 0.9 -> 0.99)
    both = verdict([ev("busy_tone", 0.92), ev("busy_tone", 0.9, "model")])
    assert both.confidence == pytest.approx(0.92)
    # a label no channel measures exactly multiplies
    assert verdict([ev("vacant", 0.93), ev("vacant", 0.8, "model")]).confidence > 0.95


def test_rule_exact_an_unconfirmed_tone_label_pushes_no_progress_aside():
    # the model calling babble over ringback "fax": no fax tone was heard, ringback stays
    ringing = [ev("ringback", 0.93, end=8.0), ev("ringback", 0.95, "model", 6.5, 8.0)]
    result = verdict([*ringing, ev("fax", 0.88, "model", 6.0, 7.5)])
    assert result.label == "ringback" and result.confidence > 0.9
    # heard by the tone channel too, fax wins
    assert verdict([*ringing, ev("fax", 0.88, "model", 6.0, 7.5), ev("fax", 0.6, end=7.0)]).label == "fax"
    # an announcement is not tone-defined: the model's claim supersedes ringback (once the
    # ringing stopped: within the ringing's span, the tone channel outranks it)
    stopped = [ev("ringback", 0.93, end=5.0), ev("ringback", 0.95, "model", 3.5, 5.0)]
    assert verdict([*stopped, ev("vacant", 0.7, "model", 5.0, 6.5)]).label == "vacant"


def test_rule_exact_a_tone_the_tone_channel_never_heard_is_a_guess():
    # the model taking pink noise for ringback: no ringing was heard, so not a sure "keep"
    guess = verdict([ev("ringback", 0.97, "model", 7.0, 8.5)], ended=True)
    assert guess.label == "ringback" and guess.confidence <= CFG.outcome_floor
    heard = verdict([ev("ringback", 0.97, "model", 7.0, 8.5), ev("ringback", 0.8, end=8.0)], ended=True)
    assert heard.confidence == pytest.approx(0.97)


# -- rule 2: authority over a span -------------------------------------------------------


def test_rule_authority_a_measured_tone_outranks_the_model_within_its_span():
    # a steady test tone the model takes for a voicemail greeting
    steady = ev("unknown", 0.85, "tone", 0.0, 8.0, detail={"tone": "steady"})
    result = verdict([steady, ev("voicemail", 0.99, "model", 6.5, 8.0)], ended=True)
    assert result.label == "unknown" and result.confidence == pytest.approx(0.85)
    # an identified recording outranks the tone channel in turn
    prompt = ev("voicemail", 0.95, "fingerprint", 1.0, 7.5)
    assert verdict([steady, prompt], ended=True).label == "voicemail"


def test_rule_authority_an_identified_recording_outranks_the_model_within_its_span():
    prompt = ev("vacant", 0.95, "fingerprint", 2.0, 6.0)
    inside = ev("human", 0.99, "model", 4.0, 5.5)
    result = verdict([prompt, inside])
    assert result.label == "vacant" and result.confidence == pytest.approx(verdict([prompt]).confidence)
    # a claim that reaches outside the span still competes
    straddling = ev("human", 0.99, "model", 1.0, 2.5)
    assert verdict([prompt, straddling]).label == "human"
    # the same claims from a channel of no authority: the model's stronger claim wins
    assert verdict([ev("vacant", 0.95, "asr", 2.0, 6.0), inside]).label == "human"


def test_rule_authority_a_window_mostly_over_a_measured_tone_heard_the_tone():
    # a SIT under babble; the model's window began before it and mostly covers it
    nc = ev("network_busy", 0.93, "tone", 4.9, 6.0, preamble=True)
    over = ev("voicemail", 0.97, "model", 4.5, 6.0)
    assert verdict([nc, over], ended=True).label == "network_busy"
    # a window whose larger part lies after the SIT hears what follows it
    after = ev("suspended", 0.97, "model", 5.6, 7.1)
    assert verdict([nc, after], ended=True).label == "suspended"


# -- rule 3: cadence gaps ----------------------------------------------------------------


def test_rule_cadence_gaps_the_gaps_of_ringback_are_not_silence():
    gap = ev("silence", 0.997, "model", 12.5, 14.0)
    result = verdict([ev("ringback", 0.97, end=11.0), gap])
    assert result.label == "ringback" and result.confidence == pytest.approx(0.97)
    # the tone channel's own silence still competes, and without its ringback the model's stands
    assert verdict([ev("ringback", 0.97), ev("silence", 0.99)]).label == "silence"
    assert verdict([ev("ringback", 0.9, "model"), gap]).label == "silence"


# -- rule 4: phases ----------------------------------------------------------------------


def test_rule_phases_an_outcome_supersedes_progress_and_specific_explains_generic():
    assert verdict([ev("ringback", 0.97), ev("busy_tone", 0.92)]).label == "busy_tone"
    result = verdict([ev("busy_tone", 0.97, start=4.0, end=6.0), ev("vacant", 0.85, "asr", 0.5, 3.5)])
    assert result.label == "vacant" and result.confidence == pytest.approx(0.85, abs=0.01)
    assert verdict([ev("ringback", 0.9), ev("busy_tone", 0.4)]).label == "ringback"


def test_rule_phases_a_weak_outcome_after_the_ringing_stopped_ends_progress():
    ringing = [ev("ringback", 0.95, end=3.8), ev("ringback", 0.8, "model", 1.5, 3.5)]
    after = ev("ported", 0.43, "model", 6.8, 8.3)
    result = verdict([*ringing, after])
    assert result.label == "ported" and result.confidence == pytest.approx(0.43)
    # a weak claim made while the ringback was still heard does not end it
    assert verdict([*ringing, ev("human", 0.43, "model", 2.0, 3.5)]).label == "ringback"


# -- rule 5: the SIT is a preamble -------------------------------------------------------


def sit(label="sit", score=0.85, end=3.0):
    return ev(label, score, "tone", end - 1.0, end, preamble=True, detail={"tone": "sit"})


def test_rule_preamble_the_announcement_after_a_sit_decides():
    # an RO SIT (wrong_number_format) followed by "all circuits are busy", once the words
    # are heard as surely as the SIT was
    result = verdict([sit("wrong_number_format", 0.9), ev("network_busy", 0.95, "model", 3.0, 4.5)])
    assert result.label == "network_busy" and result.confidence == pytest.approx(0.95, abs=0.01)
    assert result.hold is None
    # the SIT's subtype supports the label that agrees with it
    agreeing = verdict([sit("vacant", 0.93), ev("vacant", 0.6, "model", 3.0, 4.5)])
    assert agreeing.label == "vacant" and agreeing.confidence > 0.9
    # the model's own "sit" over the tone neither rivals the announcement nor raises the SIT
    busy = ev("busy", 0.9, "model", 3.0, 4.5)
    assert verdict([sit(), ev("sit", 0.99, "model", 2.0, 3.5), busy]).label == "busy"


def test_rule_preamble_weaker_claims_after_a_sit_are_what_it_explains():
    # an intercept SIT, then babble the model half-takes for an announcement: still the SIT
    babble = ev("powered_off", 0.59, "model", 3.0, 4.5)
    result = verdict([sit("sit", 0.85), babble], ended=True)
    assert result.label == "sit" and result.confidence == pytest.approx(0.85)
    # while the words are not yet sure, the SIT's label is the interim answer
    unsure = ev("network_busy", 0.8, "model", 3.0, 4.5)
    assert verdict([sit("wrong_number_format", 0.9), unsure]).label == "wrong_number_format"


def test_rule_preamble_a_sit_alone_waits_then_decides():
    for label, score in [("sit", 0.85), ("vacant", 0.93), ("network_busy", 0.93)]:
        claims = [sit(label, score, end=3.0), ev("sit", 0.99, "model", 1.5, 3.0)]
        waiting = verdict(claims, now=3.0 + CFG.sit_wait_s - 0.25)
        assert waiting.label == label and waiting.hold == HOLD_PREAMBLE
        assert verdict(claims, now=3.0 + CFG.sit_wait_s).hold is None
        assert verdict(claims, now=3.5, ended=True).hold is None
    # the wait is configurable
    assert verdict([sit()], now=3.6, config=DecisionConfig(sit_wait_s=0.5)).hold is None


def test_rule_preamble_something_heard_after_a_sit_is_waited_for_longer():
    """The model's claim moves with its window; once it was heard within the first wait,
    the call remembers it, and the SIT waits for the words to be recognised."""
    memory = Memory()

    def at(now, label, score):  # the model's latest claim: the 1.5 s window ending now
        claims = [sit("vacant", 0.93), ev(label, score, "model", now - 1.5, now)]
        return decide(claims, INFOS, CFG, now_s=now, memory=memory)

    assert at(4.75, "unreachable", 0.4).hold == HOLD_PREAMBLE  # heard within the first wait
    later = at(3.0 + CFG.sit_wait_s + 2.0, "unreachable", 0.5)
    assert later.label == "vacant" and later.hold == HOLD_PREAMBLE  # still waiting
    clear = at(3.0 + CFG.sit_wait_s + 3.0, "unreachable", 0.95)
    assert clear.label == "unreachable" and clear.hold is None
    assert at(3.0 + CFG.announcement_wait_s, "unreachable", 0.5).hold is None  # waited long enough
    # without the memory, the same late claims would let the SIT decide at the first wait
    fresh = decide([sit("vacant", 0.93), ev("unreachable", 0.5, "model", 5.5, 7.0)], INFOS, CFG, now_s=7.0)
    assert fresh.hold is None


def test_rule_preamble_no_answer_follows_a_sit():
    # a French announcement after a VC SIT, taken by the model for a voicemail greeting
    misread = ev("voicemail", 0.96, "model", 3.2, 4.7)
    result = verdict([sit("vacant", 0.93), misread], now=4.7 + CFG.announcement_wait_s, ended=True)
    assert result.label == "vacant"


def test_rule_preamble_a_sit_guess_is_no_preamble():
    # the model alone calling something "sit" while the tone channel heard none
    result = verdict([ev("sit", 0.6, "model", 0.0, 1.5), ev("vacant", 0.95, "model", 0.25, 1.75)], now=1.75)
    assert result.label == "vacant" and result.hold is None


# -- rule 6: signalling hints ------------------------------------------------------------


def test_rule_hints_never_override_clear_audio():
    tone = ev("congestion_tone", 0.92)
    for cause in (1, 17, 34):
        assert verdict([tone, *Hints(q850_cause=cause).evidence()]).label == "congestion_tone"
    agreeing = verdict([tone, *Hints(q850_cause=34).evidence()]).confidence
    conflicting = verdict([tone, *Hints(q850_cause=1).evidence()]).confidence
    assert agreeing > 0.92 > conflicting


def test_rule_hints_decide_only_when_the_audio_holds_nothing_but_progress():
    alone = verdict(Hints(sip_status=404).evidence())
    assert alone.label == "vacant" and 0.5 < alone.confidence < CFG.decision_threshold
    assert verdict([ev("ringback", 0.95), *Hints(sip_status=486).evidence()]).label == "busy"
    # a faint busy tone the tone channel missed, and SIP 486: the audio's label, raised
    faint = ev("busy_tone", 0.57, "model", 0.0, 1.0)
    hinted = verdict([faint, *Hints(sip_status=486).evidence()])
    assert hinted.label == "busy_tone" and hinted.confidence > 0.57
    q850_wins = Hints(sip_status=404, q850_cause=17).evidence()
    assert {e.label for e in q850_wins} == {"busy", "busy_tone"}


# -- when a verdict may become final -----------------------------------------------------


def test_gate_progress_is_never_final():
    assert verdict([ev("ringback", 0.99)]).hold == HOLD_PROGRESS
    assert verdict([ev("color_ringback", 0.99, "model")], ended=True).hold == HOLD_PROGRESS


def test_gate_transition_a_model_window_straddling_the_ringing_waits():
    ringing = ev("ringback", 0.95, "tone", 0.0, 6.0)
    straddling = ev("human", 0.95, "model", 5.0, 6.5)
    assert verdict([ringing, straddling], now=6.5).hold == HOLD_TRANSITION
    # a window wholly after the ringing may decide, and so may another channel agreeing
    assert verdict([ringing, ev("human", 0.95, "model", 6.0, 7.5)], now=7.5).hold is None
    agreed = verdict([ringing, straddling, ev("human", 0.9, "asr", 6.1, 6.5)], now=6.5)
    assert agreed.hold is None
    # the model's own progress windows do not place the transition: it cannot locate it
    own = [ev("ringback", 0.9, "model", 4.0, 5.5), straddling]
    assert verdict(own, now=6.5).hold is None


def test_gate_pending_an_identification_under_way_is_waited_for_briefly():
    claim = ev("human", 0.97, "model", 0.5, 2.0)
    pending = ev("voicemail", 0.0, "fingerprint", 1.5, 1.5)
    assert verdict([claim], now=2.0, pending=[pending]).hold == HOLD_PENDING
    assert verdict([claim], now=1.5 + CFG.pending_wait_s, pending=[pending]).hold is None
    # a pending claim for the same label does not hold it
    assert verdict([claim], now=2.0, pending=[ev("human", 0.0, "fingerprint", 1.5, 1.5)]).hold is None
    # a SIT still arriving (tone channel) holds the model's claim over its first tones
    arriving = ev("sit", 0.85, "tone", 1.7, 1.99, detail={"tone": "sit", "arriving": True})
    assert verdict([claim], now=2.0, pending=[arriving]).hold == HOLD_PENDING
    # ... but not an identified recording, which outranks the tone channel
    assert verdict([ev("human", 0.97, "fingerprint", 0.5, 2.0)], now=2.0, pending=[arriving]).hold is None


def test_decision_options_are_checked():
    cfg = ClassifierConfig().with_options(decision_threshold=0.99, act_threshold=0.97, sit_wait_s=1.0)
    assert cfg.decision.decision_threshold == 0.99 and cfg.decision.act_threshold == 0.97
    assert cfg.decision.sit_wait_s == 1.0
    for bad in ({"decision_threshold": 1.5}, {"act_threshold": 0.0}, {"sit_wait_s": -1.0}):
        with pytest.raises(ConfigError):
            ClassifierConfig().with_options(**bad)
    with pytest.raises(ConfigError, match="unknown option"):
        ClassifierConfig().with_options(bogus=1)


# -- end to end, on synthetic tones ------------------------------------------------------


@pytest.fixture(scope="module")
def tones_and_model():
    return Classifier(ClassifierConfig(samples_path=None, asr_model=None))


def test_session_with_hints_end_to_end(tones_and_model):
    busy = synth.cadenced(synth.spec("CN", "busy"), 4.0)
    plain = tones_and_model.classify_array(busy, 8000)
    hinted = tones_and_model.classify_array(busy, 8000, hints={"sip_status": 486})
    contrary = tones_and_model.classify_array(busy, 8000, hints={"q850_cause": 1})
    assert plain.label == hinted.label == contrary.label == "busy_tone"
    assert hinted.confidence > plain.confidence
    silent = tones_and_model.classify_array(synth.silence(3.0), 8000, hints={"q850_cause": 17})
    assert silent.label == "busy" and not silent.confidence >= 0.9


def test_a_short_busy_tone_with_sip_486_stays_a_busy_tone(tones_and_model):
    """One second of NANP busy: the tone channel has not matched its cadence yet, the model
    hears it faintly; SIP 486 raises the audio's label instead of replacing it."""
    busy = synth.add_noise(synth.cadenced(synth.spec("NANP", "busy"), 1.0), 15, np.random.default_rng(0))
    decision = tones_and_model.classify_array(busy, 8000, hints={"sip_status": 486})
    assert decision.label == "busy_tone"


@pytest.mark.parametrize("freqs", [(425.0,), (350.0, 440.0), (1000.0,), (700.0, 1300.0)])
def test_a_steady_tone_is_no_music_ringback(tones_and_model, freqs):
    x = synth.add_noise(synth.tone(freqs, 8.0), 20, np.random.default_rng(1))
    decision = tones_and_model.classify_array(x, 8000)
    assert decision.action != "keep" or decision.confidence < 0.9
    assert ("tone", "unknown") in {(e.channel, e.label) for e in decision.evidence}


def test_a_sit_alone_is_final_on_its_own_label_only_after_the_wait(tones_and_model):
    x = np.concatenate([synth.silence(0.5), synth.sit("vc"), synth.silence(5.0)])
    decision = tones_and_model.classify_array(x, 8000)
    sit_end = max(e.end_s for e in decision.evidence if e.preamble)
    assert decision.label == "vacant" and decision.final
    assert decision.decided_at_s >= sit_end + CFG.sit_wait_s


def test_silence_over_a_whole_call_does_not_erase_the_answer_in_it():
    import soundfile as sf

    from .conftest import FIXTURES

    answer, rate = sf.read(FIXTURES / "speech" / "human.wav", dtype="float32")
    x = np.concatenate([answer, synth.silence(55.0, sample_rate=rate)])
    classifier = Classifier(ClassifierConfig(samples_path=None, asr_model=None, early_decision=False))
    decision = classifier.classify_array(x, rate)
    assert ("tone", "silence") in {(e.channel, e.label) for e in decision.evidence}
    assert decision.label == "human"


@pytest.mark.parametrize("tone", [("V.25", "fax_ced", 4.0), ("UK", "number_unobtainable", 6.0)])
def test_a_tone_a_plan_explains_is_not_an_unknown_steady_tone(tone):
    plan, name, seconds = tone
    x = synth.tone(synth.spec(plan, name).freqs_hz, seconds)
    decision = Classifier(ClassifierConfig(samples_path=None, asr_model=None)).classify_array(x, 8000)
    assert ("tone", "unknown") not in {(e.channel, e.label) for e in decision.evidence}


def test_ringback_ending_in_a_gap_under_band_limited_noise_stays_ringback(tones_and_model):
    """CN ringback whose last 3.5 s are a gap, its noise low-passed at 3.7 kHz as a codec
    filters a line's noise: the model calls the gap "silence"; the gap rule keeps ringback."""
    spec = synth.spec("CN", "ringback")
    x = synth.cadenced(spec, 14.5)  # bursts at 0, 5 and 10 s
    x = synth.add_noise(x, 40.0, np.random.default_rng(3), reference=synth.tone_power(spec))
    up, down = Resampler(8000, 16000), Resampler(16000, 8000)
    wide = np.concatenate([up.process(x), up.flush()])
    x = synth.g711_channel(np.concatenate([down.process(wide), down.flush()]))
    decision = tones_and_model.classify_array(x, 8000)
    assert ("tone", "ringback") in {(e.channel, e.label) for e in decision.evidence}
    assert decision.label == "ringback" and decision.confidence > 0.9


def test_a_destructive_action_needs_the_act_threshold():
    tones_only = ClassifierConfig(model_path=None, samples_path=None, asr_model=None)
    vc = np.concatenate([synth.silence(0.5), synth.sit("vc"), synth.silence(4.0)])  # vacant at 0.93: remove
    strict = Classifier(tones_only).classify_array(vc, 8000)  # no confidence map: 0.97 on the score
    assert strict.label == "vacant" and strict.withheld_action == "remove" and strict.action == "review"
    assert any("act threshold" in note for note in strict.notes)
    sit_end = max(e.end_s for e in strict.evidence if e.preamble)
    assert strict.decided_at_s == pytest.approx(sit_end + CFG.sit_wait_s, abs=0.26)  # time alone released it
    lenient = Classifier(tones_only.with_options(act_threshold=0.9)).classify_array(vc, 8000)
    assert lenient.action == "remove" and lenient.withheld_action is None
    assert lenient.to_dict()["action"] == "remove" and strict.to_dict()["action"] == "review"


def test_rule_preamble_an_outcome_long_after_the_sit_did_not_follow_it():
    # a vacant-code SIT, silence, and a busy tone starting well after the wait: the SIT decided
    late = 3.0 + CFG.announcement_wait_s + 1.0
    late_tone = ev("busy_tone", 0.95, "tone", late, late + 2.0)
    assert verdict([sit("vacant", 0.93), late_tone]).label == "vacant"
    soon_tone = ev("busy_tone", 0.95, "tone", 3.2, 5.0)
    assert verdict([sit("vacant", 0.93), soon_tone]).label == "busy_tone"


# -- end to end, on a real human voice ---------------------------------------------------

REAL_PROMPT = "/usr/share/asterisk/sounds/fr_CA_f_June/conf-onlyperson.wav"
"""A real announcement voice (asterisk-core-sounds-fr-wav, CC-BY-SA-3.0; .ci/run installs
it; a voice training never hears): "you are the only person in this conference", in French,
a prompt that says nothing the model knows. (The model now trains on another French voice
and hears that voice's "not in service" as vacant: such a prompt would test the model.)"""


def _real_call(rng, sit_code):
    """NANP ringback, a SIT, the real prompt through mu-law, white noise at 20 dB SNR."""
    import soundfile as sf

    prompt, rate = sf.read(REAL_PROMPT, dtype="float32")
    assert rate == 8000
    parts = [synth.cadenced(synth.spec("NANP", "ringback"), 4.5), synth.silence(0.4), synth.sit(sit_code)]
    parts += [synth.silence(0.3), prompt, synth.silence(1.0)]
    onset = sum(len(p) for p in parts[:-2]) / 8000
    x = synth.g711_channel(synth.add_noise(np.concatenate(parts), 20.0, rng))
    return x, onset


def test_an_enrolled_real_prompt_after_ringback_and_a_contrary_sit_is_found(tmp_path, rng):
    """Enrolled clean (as vacant, for the test), heard call-shaped: the identified recording
    decides, whatever the SIT said (RO: wrong_number_format) and whatever the model makes of
    a French voice."""
    from audio_classifier.samples import SampleLibrary

    library = tmp_path / "library.sqlite"
    with SampleLibrary(library, create=True) as samples:
        samples.add_file(REAL_PROMPT, label="vacant", carrier="test")
    x, onset = _real_call(rng, "ro")
    enrolled = Classifier(ClassifierConfig(samples_path=str(library), asr_model=None)).classify_array(x, 8000)
    assert enrolled.label == "vacant" and enrolled.final
    match = next(e for e in enrolled.evidence if e.channel == "fingerprint")
    assert abs(match.start_s - onset) < 0.1  # located where the recording starts
    assert onset < enrolled.decided_at_s == match.end_s <= onset + 3.0  # decided the moment it matched


def test_a_real_prompt_nobody_enrolled_is_not_removed(rng):
    """The same call without the library, after a VC SIT: the model makes nothing of the
    French words, the SIT says the number is vacant; alone, no certainty to remove it."""
    x, _ = _real_call(rng, "vc")
    classifier = Classifier(ClassifierConfig(samples_path=None, asr_model=None))
    decision = classifier.classify_array(x, 8000)
    # the VC SIT names the outcome; the French words are no answer; 0.93 is no certainty
    assert decision.label == "vacant" and decision.confidence < classifier.act_threshold
    assert decision.action == "review" and decision.withheld_action == "remove"


@pytest.mark.parametrize(
    "freqs, cadence, lead_s",
    [
        ((782.0,), (0.7, 3.3), 2.3),
        ((1205.0,), (0.94, 3.8), 0.5),
        ((842.0, 3190.0), None, 0.0),
        ((2982.0,), None, 0.0),
        ((1234.0,), None, 0.5),
        ((660.0,), None, 1.2),
    ],
)
def test_tones_no_plan_explains_are_never_kept_with_certainty(tones_and_model, freqs, cadence, lead_s):
    """Off-plan beeps after line noise and steady tones up to 3.4 kHz, which the model
    takes for a voicemail beep or music: the tone channel's claim over their span outranks it."""
    if cadence is None:
        tone = synth.tone(freqs, 6.0)
    else:
        tone = synth.cadenced(ToneSpec("none", "off_plan", freqs, cadence, "unknown", ()), 6.0)
    x = synth.add_noise(
        np.concatenate([synth.silence(lead_s), tone]),
        25,
        np.random.default_rng(5),
        reference=synth.tone_power(freqs),
    )
    decision = tones_and_model.classify_array(synth.g711_channel(x), 8000)
    assert not (decision.action == "keep" and decision.confidence >= 0.9), decision
    assert decision.label == "unknown"
