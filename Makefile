# headflow: one obvious way to run things. See README.md.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PYTHONHASHSEED := 0
PREFECT_API := http://127.0.0.1:4200/api

.PHONY: env demo test test-fast ui flow summary lint clean lock

env: $(STAMP)

# The environment is rebuilt whenever the pins change.
$(STAMP): requirements.lock pyproject.toml
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found; headflow needs Python 3.11 (set PY=...)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -r requirements.lock
	# insightface ships sample portraits the demo corpus uses; its own deps are optional (--no-deps).
	$(BIN)/python -m pip install -q --no-deps "insightface==2.1"
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: env
	$(BIN)/python -m headflow.demo_run

test: env
	$(BIN)/python -m pytest -q -p no:cacheprovider tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests: treating as failure"; exit 1; fi; exit $$rc

test-fast: env
	$(BIN)/python -m pytest -q -m "not slow" tests

ui: env
	$(BIN)/prefect config set PREFECT_API_URL=$(PREFECT_API) >/dev/null
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

flow: env
	PREFECT_API_URL=$(PREFECT_API) $(BIN)/python -m pipelines.preprocess

summary: env
	$(BIN)/python -m headflow.summary

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -E '^(headflow|insightface)' > requirements.lock.new && mv requirements.lock.new requirements.lock

clean:
	rm -rf data/raw/demo data/interim data/processed reports/*.json reports/plots
