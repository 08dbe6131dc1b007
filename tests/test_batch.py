"""The batch runner when a worker process dies (a crash in native code, an OOM kill)."""

import json
import os

import soundfile as sf

from audio_classifier import Classifier, ClassifierConfig, synth
from audio_classifier.batch import RecordWriter, expand_paths, run


class CrashingClassifier(Classifier):
    """Kills its worker process on any input named crash*.wav, as a segfault would."""

    def classify_file(self, path, **kwargs):
        if os.path.basename(str(path)).startswith("crash"):
            os._exit(1)
        return super().classify_file(path, **kwargs)


def crashing_factory(config: ClassifierConfig) -> Classifier:
    return CrashingClassifier(config)


def test_a_dying_worker_fails_only_its_input(tmp_path):
    busy = synth.cadenced(synth.spec("CN", "busy"), 3.0)
    names = ["a.wav", "b.wav", "crash.wav", "c.wav", "d.wav", "e.wav"]
    for name in names:
        sf.write(tmp_path / name, busy, 8000)
    out = tmp_path / "out.jsonl"
    config = ClassifierConfig(model_path=None, samples_path=None, asr_model=None)
    with RecordWriter(str(out), []) as writer:
        succeeded, failed = run(
            expand_paths([str(tmp_path)]), writer, config=config, factory=crashing_factory, jobs=2
        )
    assert (succeeded, failed) == (5, 1)
    records = {os.path.basename(r["path"]): r for r in map(json.loads, out.read_text().splitlines())}
    assert set(records) == set(names)
    assert "worker process died" in records["crash.wav"]["error"]
    assert all(
        records[n]["label"] == "busy_tone" and records[n]["error"] is None for n in names if n != "crash.wav"
    )
