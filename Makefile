# mri-dl-labs (instructor repository): `make grade` grades labs/, `make test` runs the project's
# own test suite. Both create .venv and install requirements.txt first if needed.
# Students get student/Makefile instead (python -m grader release): grade, lab N, data, clean.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU-only Linux machine: `make grade TORCH_INDEX=https://download.pytorch.org/whl/cpu` installs
# the CPU build of torch (about 5 GB less than the default wheel with its CUDA libraries).
TORCH_INDEX ?=
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export MPLBACKEND := Agg

# `make lab 3`: the word after `lab` is the lab's number (`make lab N=3` works too).
ifeq (lab,$(firstword $(MAKECMDGOALS)))
  N ?= $(word 2,$(MAKECMDGOALS))
  $(if $(word 2,$(MAKECMDGOALS)),$(eval $(word 2,$(MAKECMDGOALS)):;@:))
endif
LAB_FILE = $(firstword $(wildcard labs/lab$(N)_*.py labs/lab0$(N)_*.py))

.PHONY: grade solutions test stubs lab lab-number bench data clean help

help:
	@echo "make grade      grade labs/ (your work) and print the score table"
	@echo "make solutions  grade the reference solutions (instructors)"
	@echo "make test       the project's test suite: grader against solutions + tests/"
	@echo "make stubs      regenerate labs/ from solutions/ (instructors)"
	@echo "make lab N      run lab N's sheet from labs/ (python -m labs.labNN_...; ARGS=--quick for lab 5)"
	@echo "make data       prepare the offline datasets (MNIST subset, DTI, MR images; about 8 min)"
	@echo "make bench      timing benchmarks (bench/)"

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_INDEX),$(PY) -m pip install --quiet $$(grep -E '^torch(vision)?==' requirements.txt) --index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

grade: $(STAMP)
	$(PY) -m grader $(ARGS)

solutions: $(STAMP)
	$(PY) -m grader --solutions $(ARGS)

test: $(STAMP)
	$(PY) -m pytest --solutions grader tests $(ARGS)

stubs: $(STAMP)
	$(PY) -m grader.course.stubs

lab: lab-number $(STAMP)
	$(PY) -m labs.$(basename $(notdir $(LAB_FILE))) $(ARGS)

lab-number:
	@test -n "$(N)" || { echo "make lab N: give the lab's number, e.g. make lab 3"; exit 2; }
	@test -n "$(LAB_FILE)" || { echo "make lab $(N): no such lab; the labs are $(notdir $(wildcard labs/lab*_*.py))"; exit 2; }

data: $(STAMP)
	$(PY) -m data prepare all

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf figures grader-results.json grader-seeds.json .pytest_cache
