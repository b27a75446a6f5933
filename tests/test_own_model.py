"""A model this toolkit fine-tuned recognises people: SFace converted to PyTorch, fine-tuned by the training
engine (head-only epoch, then the whole network) on real faces, its threshold measured on held-out
identities, then the live loop on the sample video names the enrolled man and calls the woman Unknown
(what `make demo` does with the sample-sface-finetune recipe, here with fewer steps)."""
from __future__ import annotations

import csv
from pathlib import Path


import config
from facedata.detect import DetectorConfig, FaceDetector
from models_definition.zoo import load_model
from recognition.gallery import UNKNOWN, enrol
from recognition.realtime import Recognizer, SpeedOptions, run
from recognition.recorder import FaceLog
from recognition.sources import open_source
from training import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]


def test_fine_tuned_sface_names_the_enrolled_man(small_aligned, sample_data, tmp_path):
    recipe = dict(config.TRAIN_RECIPES["sample-sface-finetune"])
    recipe.update(data=str(small_aligned), open_set_query=3, open_set_distractor=8, max_train_classes=None,
                  batch_size=16, batches_per_epoch=2, epochs=2, workers=0, progress=False)
    trainer = Trainer(TrainConfig.from_dict(recipe), tmp_path / "run")
    trainer.fit()
    assert trainer.history[-1]["epoch"] == 2 and trainer.history[-1]["train_loss"] is not None
    # the last epoch trained the whole network: its weights are no longer SFace's
    registry = {"ours": dict(checkpoint=tmp_path / "run" / "last.pt", threshold_fpr=1e-2)}
    emb = load_model("ours", registry, device="cpu")
    assert emb.threshold is not None and emb.threshold_fpr == 1e-2  # measured on the held-out identities
    detector = DetectorConfig(thresholds=(0.65, 0.75, 0.85), min_face_size_px=60)
    gallery = enrol(ROOT / "people_faces", emb, FaceDetector(detector), None)
    rec = Recognizer(emb, gallery, emb.threshold, detector, SpeedOptions(threaded_reader=False))
    source = open_source(str(sample_data / "sample_video.mp4"))
    try:
        run(source.frames(), rec, None, FaceLog(tmp_path / "faces.csv"))
    finally:
        source.close()
    with open(tmp_path / "faces.csv") as f:
        rows = list(csv.DictReader(f))
    # frames 0-71 the man, 72-143 the woman, 144-215 both (man left, woman right)
    man = [r for r in rows if int(r["frame"]) < 72 or (int(r["frame"]) >= 144 and float(r["x2"]) < 330)]
    woman = [r for r in rows if 72 <= int(r["frame"]) < 144 or (int(r["frame"]) >= 144 and float(r["x1"]) > 310)]
    named = {int(r["frame"]) for r in man if r["name"] == "pyfeat_man"}
    assert len(named) >= 0.9 * len({int(r["frame"]) for r in man})
    unknown = sum(r["name"] == UNKNOWN for r in woman)
    assert woman and unknown >= 0.95 * len(woman)
