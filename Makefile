# mri-dl-labs: `make grade` grades your labs, `make test` runs the project's own test suite.
# Both create .venv and install requirements.txt first if needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export MPLBACKEND := Agg

.PHONY: grade solutions test stubs bench data clean help

help:
	@echo "make grade      grade labs/ (your work) and print the score table"
	@echo "make solutions  grade the reference solutions (instructors)"
	@echo "make test       the project's test suite: grader against solutions + tests/"
	@echo "make stubs      regenerate labs/ from solutions/ (instructors)"
	@echo "make data       prepare the offline datasets (MNIST subset, DTI, MR images)"
	@echo "make bench      timing benchmarks (bench/)"

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

grade: $(STAMP)
	$(PY) -m grader $(ARGS)

solutions: $(STAMP)
	$(PY) -m grader --solutions $(ARGS)

test: $(STAMP)
	$(PY) -m pytest --solutions grader tests $(ARGS)

stubs: $(STAMP)
	$(PY) -m grader.stubs

data: $(STAMP)
	$(PY) -m data prepare all

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf figures grader-results.json .pytest_cache
