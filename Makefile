# headflow: one obvious way to run things. See README.md.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PYTHONHASHSEED := 0
PREFECT_API := http://127.0.0.1:4200/api
# Prefect keeps its database and settings inside the project, not in ~/.prefect.
export PREFECT_HOME := $(CURDIR)/.prefect

.PHONY: env demo test test-fast quality quality-lipsync ui flow summary report clean lock serve

env: $(STAMP)

# pip warns once per package about index folders some machines configure but lack; hide that noise.
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

# The environment is rebuilt whenever the pins change.
$(STAMP): requirements.lock pyproject.toml
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found; headflow needs Python 3.11 (set PY=...)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24" $(QUIET_PIP)
	$(BIN)/python -m pip install -q -r requirements.lock $(QUIET_PIP)
	# insightface ships sample portraits the demo corpus uses; its own deps are optional (--no-deps).
	$(BIN)/python -m pip install -q --no-deps "insightface==2.1" $(QUIET_PIP)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e . $(QUIET_PIP)
	touch $(STAMP)

demo: env
	$(BIN)/python -m headflow.demo_run

# Two pytest-xdist workers (the CI machine has 2 cores); a test file stays on one worker, so module
# fixtures (the e2e demo run) are built once. TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2
test: env
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=30 -m "not quality" -n $(TEST_WORKERS) --dist loadfile tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests: treating as failure"; exit 1; fi; exit $$rc

# The quality configurations (not in CI): minutes of training each, figures printed. Needs `make demo`'s
# data first (the shards). The expert: width 0.5 x 40 epochs, EMA 0.998 (~40 CPU-minutes: 59 CPU-s an epoch on one thread), held-out balanced
# accuracy on the test speaker against the 0.85 target.
quality: env
	@test -f data/interim/shards/shards.parquet || { echo "error: no shards; run 'make demo' first"; exit 1; }
	PYTHONPATH=src:. $(BIN)/python bench/expert.py --set model.width=0.5 loop.epochs=40 loop.ema_decay=0.998
	$(BIN)/python -m pytest -q -s -p no:cacheprovider -m quality --durations=0 tests; rc=$$?; [ $$rc -eq 5 ] && exit 0; exit $$rc

# The lip-sync generator's quality configuration as a DVC experiment (~80 min on one core; the figures it
# gets: README "Generator families", all of them in docs/results/lipsync.md). Needs `make demo` first (its upstream
# stages are then cached).
LIPSYNC_QUALITY := -S train_lipsync.model.width=0.25 -S train_lipsync.data.n_references=5 \
	-S train_lipsync.loop.batch_size=4 -S train_lipsync.loop.epochs=24 -S train_lipsync.stage2_epochs=8 \
	-S train_lipsync.samples_per_epoch=1000 -S train_lipsync.val_windows=32
quality-lipsync: env
	@test -f data/interim/shards/shards.parquet || { echo "error: no shards; run 'make demo' first"; exit 1; }
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dvc exp run -n lipsync-quality $(LIPSYNC_QUALITY)

test-fast: env
	$(BIN)/python -m pytest -q -m "not slow and not quality" tests

ui: env
	PREFECT_API_URL=$(PREFECT_API) $(BIN)/prefect server start --host 127.0.0.1 --port 4200

flow: env
	@$(BIN)/python -c "import urllib.request as u; u.urlopen('$(PREFECT_API)/health', timeout=5)" 2>/dev/null || \
	  { echo "error: no Prefect server answers at $(PREFECT_API); start one with 'make ui' in another terminal"; exit 1; }
	PREFECT_API_URL=$(PREFECT_API) $(BIN)/python -m pipelines.preprocess

summary: env
	$(BIN)/python -m headflow.summary

# The evaluation report (reports/report.html, rebuilt from data/interim/evaluate); with EXP="a b ...",
# those DVC experiments side by side (reports/compare.html) from `dvc exp show --json`.
report: env
	$(BIN)/headflow report $(if $(EXP),--exp $(EXP),)

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -E '^(headflow|insightface)' > requirements.lock.new && mv requirements.lock.new requirements.lock

clean:
	rm -rf data/raw/demo data/interim data/processed reports/metrics reports/plots reports/fit3dmm reports/report.html reports/compare.html

# Deployments of every flow (pipeline, preprocess, train, generate, evaluate) served from this process:
# with `make ui` running, start runs from the UI (Deployments -> <flow>/headflow -> Custom run).
serve: env
	@$(BIN)/python -c "import urllib.request as u; u.urlopen('$(PREFECT_API)/health', timeout=5)" 2>/dev/null || \
	  { echo "error: no Prefect server answers at $(PREFECT_API); start one with 'make ui' in another terminal"; exit 1; }
	PREFECT_API_URL=$(PREFECT_API) $(BIN)/python -m pipelines.serve
