# Make front door of doit-ollama. A target fails when the command underneath fails; Make's
# own exit status is then 2 (GNU Make has no other failure code), and its last line names
# the command's own exit code: "make: *** [Makefile:NN: verify] Error 1".
PYTHON ?= python3
VENV ?= .venv
# doit from the virtual environment `make venv` made, else the doit on PATH.
DOIT ?= $(if $(wildcard $(VENV)/bin/doit),$(VENV)/bin/doit,doit)
MODELS ?= models
LOCK ?= lock/models.lock
# Touched after each `doit build` that `make models` ran (see below).
BUILT := .doit-ollama/make-models.stamp

.PHONY: venv test models verify lock-check status lint bench bench-quick bench-real demo

venv: $(VENV)/installed.stamp  ## a virtual environment (.venv) with doit-ollama and its test tools

# A virtual environment of its own: Debian's and Ubuntu's system Python refuse `pip install`
# outside one (PEP 668, "externally-managed-environment"). Remade when pyproject.toml changes.
$(VENV)/installed.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $@

test: venv  ## run the test suite (in .venv)
	$(VENV)/bin/python -m pytest

models: $(BUILT)  ## build every stale model and update the lock

# Remade when anything under models/ (or the lock) changed since the last `make models`. The
# lock cannot be this target: a comment-only edit rebuilds nothing and leaves the lock as it
# is, so Make would run `doit build` again on every call; the stamp records that it ran.
$(BUILT): $(shell find $(MODELS) -type f 2>/dev/null) $(wildcard $(LOCK))
	$(DOIT) build
	@mkdir -p $(@D) && touch $@

verify:  ## lock vs sources vs server; fails on any difference
	$(DOIT) verify

lock-check:  ## lock vs sources only, no server needed (CI without Ollama)
	$(DOIT) verify --offline

status:  ## one line per model: up to date, stale and why, missing, drifted
	$(DOIT) status

lint:  ## the Modelfile checklist
	$(DOIT) lint

bench: venv  ## benchmarks at full size (1000 models, 2 GiB of weights; ~5 min); see docs/performance.md
	$(VENV)/bin/python bench/run.py

bench-quick: venv  ## benchmarks at small sizes (under a minute); fails only on count targets
	$(VENV)/bin/python bench/run.py --quick

bench-real: venv  ## doit build vs an `ollama create` loop on real Ollama servers it starts (OLLAMA=path/to/ollama, or OLLAMA_TEST_BINARY)
	$(VENV)/bin/python bench/real_server.py $(if $(OLLAMA),--ollama $(OLLAMA))

demo: venv  ## this repository's models built against the Ollama test double (no Ollama needed)
	$(VENV)/bin/python scripts/demo.py
