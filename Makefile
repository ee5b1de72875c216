# Make front door of doit-ollama. Every target fails (non-zero) when the task underneath does.
PYTHON ?= python3
DOIT ?= doit
LOCK := lock/models.lock

.PHONY: test models verify lock-check status lint bench bench-quick bench-real demo

test:  ## run the test suite
	pytest

models: $(LOCK)  ## build every stale model and update the lock

# The lock is a real Make target: it is remade when any Modelfile changed.
$(LOCK): $(shell find models -type f 2>/dev/null)
	$(DOIT) build

verify:  ## lock vs sources vs server; exit 1 on any difference
	$(DOIT) verify

lock-check:  ## lock vs sources only, no server needed (CI without Ollama)
	$(DOIT) verify --offline

status:  ## one line per model: up to date, stale and why, missing, drifted
	$(DOIT) status

lint:  ## the Modelfile checklist
	$(DOIT) lint

bench:  ## benchmarks at full size (1000 models, 2 GiB of weights; ~5 min); see docs/performance.md
	$(PYTHON) bench/run.py

bench-quick:  ## benchmarks at small sizes (under a minute); fails only on count targets
	$(PYTHON) bench/run.py --quick

bench-real:  ## doit build vs an `ollama create` loop on real Ollama servers it starts (OLLAMA=path/to/ollama, or OLLAMA_TEST_BINARY)
	$(PYTHON) bench/real_server.py $(if $(OLLAMA),--ollama $(OLLAMA))

demo:  ## this repository's models built against the Ollama test double (no Ollama needed)
	$(PYTHON) scripts/demo.py
