# cnn-design: one environment per framework, the chapter, its tests.
#   make run [FRAMEWORK=jax]   run the chapter end to end (full training)
#   make test                  pytest in all four environments, the notebooks under nbval, the HTML page
#   make bench                 speed and memory of every framework (results/bench.json)
#   make notebooks             one notebook per framework in notebooks/ (README, "Reading elsewhere")
#   make dist                  the wheel and sdist of d2lsupport in dist/
# Both set up what is missing first.

# The frameworks, one `name:Title` each: the name as d2lsupport.core.MODULES has it,
# the title as its Jupyter kernel shows it. A new framework is one entry here.
FRAMEWORK_TITLES := pytorch:PyTorch mxnet:MXNet tensorflow:TensorFlow jax:JAX
FRAMEWORKS := $(foreach fw,$(FRAMEWORK_TITLES),$(firstword $(subst :, ,$(fw))))
title = $(word 2,$(subst :, ,$(filter $(1):%,$(FRAMEWORK_TITLES))))
FRAMEWORK ?= pytorch
ENVS_DIR ?= .venv
PYTHON ?= python3
CHAPTER := chapter_cnn_design/cnn-design
RECORDED := tests/notebooks
# the package of `make dist` (in DIST_DIR), its version stated once in d2lsupport/__init__.py
DIST_DIR ?= dist
VERSION := $(shell sed -n "s/^__version__ = '\(.*\)'$$/\1/p" d2lsupport/__init__.py)
WHEEL := $(DIST_DIR)/d2lsupport-$(VERSION)-py3-none-any.whl
# A folder (or URL base) holding the four Fashion-MNIST files; empty means the
# official download location. Defaults to the project's shared mirror when present.
FASHION_MNIST_MIRROR ?= $(abspath $(wildcard ../shared/data/fashion-mnist))
export FASHION_MNIST_MIRROR


env_python = $(ENVS_DIR)/$(1)/bin/python
stamp = $(ENVS_DIR)/$(1)/.installed

.PHONY: setup run test data ipynb library translation notebooks dist record lock lab kernels study \
	bench drift bn-check memory clean-envs
# (test-, pytest-, nbval- and data-<framework> are not .PHONY: make skips pattern rules
# for phony targets.)

setup: $(foreach fw,$(FRAMEWORKS),$(call stamp,$(fw)))

# An environment is rebuilt only when its lock file or the package metadata changes.
# pip leaves compiling the packages' modules to Python, which compiles those that are
# imported when they first are (a quarter of TensorFlow's install time saved).
PIP_INSTALL = pip install -q --disable-pip-version-check --no-compile
$(ENVS_DIR)/%/.installed: requirements/%.txt pyproject.toml
	@echo "== creating the $* environment in $(ENVS_DIR)/$*"
	rm -rf $(ENVS_DIR)/$*
	$(PYTHON) -m venv $(ENVS_DIR)/$*
	$(ENVS_DIR)/$*/bin/$(PIP_INSTALL) -r requirements/$*.txt
	$(ENVS_DIR)/$*/bin/$(PIP_INSTALL) --no-deps -e .
	$(ENVS_DIR)/$*/bin/python -m ipykernel install --sys-prefix --name cnn-design-$* \
		--display-name "cnn-design ($(call title,$*))" > /dev/null
	touch $@

data: data-$(FRAMEWORK)

# The data set fetched and verified with one framework's environment (the code is
# framework-free; `make test` makes all four in its setup step).
data-%: $(call stamp,%)
	$(call env_python,$*) -m d2lsupport.data

# The chapter end to end in one framework, full budget; results go to results/.
# TIME_LIMIT=minutes stops training after the epoch that passes it (recorded as such).
run: $(call stamp,$(FRAMEWORK)) data
	mkdir -p results
	D2L_RESULTS_DIR=$(CURDIR)/results D2L_TIME_LIMIT=$(TIME_LIMIT) \
	$(call env_python,$(FRAMEWORK)) -m tools.run_notebook --framework $(FRAMEWORK) \
		$(CHAPTER).ipynb results/cnn-design.$(FRAMEWORK).ipynb
	@echo "results: results/regnetx32.$(FRAMEWORK).json"

# First everything the tests need is set up (the environments, the data, the page's
# tools), three jobs at a time: much of it is waiting on downloads. Then the tests, two
# jobs at a time (TEST_JOBS): much of a job's time goes to work on one core (starting
# processes, importing, XLA compiling JAX's steps). Each framework's pytest and nbval
# runs are separate jobs, started in the order of TEST_ORDER, longest first (as measured;
# BENCHMARKS.md), so that no long job is left to run alone at the end; the page comes
# last, as it shows what the four notebooks ran, and so the nbval runs come before the
# last pytest run, which runs beside the page. (Were the environments prerequisites of
# the same make run, make would start the jobs in another order.) Each job's output is
# printed when it finishes. The jobs of a framework that the measured order leaves
# out (a new one) start before the docs tests and the page.
SETUP_JOBS ?= 3
TEST_JOBS ?= 2
MEASURED_ORDER := pytest-jax pytest-pytorch nbval-jax pytest-tensorflow nbval-pytorch \
	nbval-tensorflow nbval-mxnet
UNMEASURED := $(filter-out $(MEASURED_ORDER) pytest-mxnet,\
	$(foreach fw,$(FRAMEWORKS),pytest-$(fw) nbval-$(fw)))
TEST_ORDER := $(MEASURED_ORDER) $(UNMEASURED) pytest-docs pytest-mxnet test-page
test:
	$(MAKE) --no-print-directory -j$(SETUP_JOBS) --output-sync=target \
		$(addprefix data-,$(FRAMEWORKS)) $(docs_stamp) debian-browser $(WHEEL)
	$(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target $(TEST_ORDER)

# JAX keeps the programs it compiles in this folder, so that its test processes and
# the page's JAX tab compile each step once (keyed by the program and JAX's version).
JAX_CACHE_DIR ?= $(abspath _build/jax-cache)
pytest-% nbval-% html test-page: export JAX_COMPILATION_CACHE_DIR = $(JAX_CACHE_DIR)

# One framework's tests: pytest, and its notebook under nbval. (pytest-% and nbval-% do
# not make the data: a job that runs first would change the order in which `make test`
# starts them; the data module fetches a missing file itself.)
test-%: data-% pytest-% nbval-%
	@:

# pytest: this framework's tests, and the framework-free ones where FREE_TESTS_IN says.
# These run in the PyTorch environment for TensorFlow and JAX too: their lock files pin
# the same versions of every package the three share (checked by
# tests/test_environment.py); MXNet's numpy is older.
FREE_TESTS_IN := pytorch mxnet
pytest-%: $(call stamp,%)
	cd tests && D2L_FRAMEWORK=$* D2L_FRAMEWORK_TESTS_ONLY=$(if $(filter $*,$(FREE_TESTS_IN)),0,1) \
		$(abspath $(call env_python,$*)) -m pytest -q -p no:cacheprovider .

# Each framework's notebook (notebooks/<framework>, as recorded in $(RECORDED) without
# its install cell) under nbval in the small training budget, comparing the recorded
# deterministic outputs, and run as a reader outside the repository would: the wheel of
# `make dist` installed in a new environment under $(INSTALLED) (outside the
# checkout), the notebook run from there (tools/outside.py says how). The notebook as nbval ran it is kept in
# $(EXECUTED) for the page (tests/executed_notebook.py).
EXECUTED := $(abspath _build/executed)
INSTALLED ?= $(or $(TMPDIR),/tmp)/cnn-design-installed
nbval-%: $(call stamp,%) $(WHEEL)
	$(call env_python,$*) -m tools.outside --framework $* --wheel $(WHEEL) \
		--notebook $(RECORDED)/cnn-design.$*.ipynb --executed $(EXECUTED)/cnn-design.$*.ipynb \
		--dir $(INSTALLED)/$* --data $(or $(D2L_DATA_DIR),data/fashion-mnist)

# Regenerate the reader's notebook from the markdown source.
ipynb: $(call stamp,$(FRAMEWORK))
	$(call env_python,$(FRAMEWORK)) -m d2lsupport.notebook $(CHAPTER).md $(CHAPTER).ipynb

# The Indonesian edition: cnn-design.id.md from the English source and the translated
# paragraphs (chapter_cnn_design/translations/id.md), then its notebook. `python -m
# d2lsupport.translation status` lists the English paragraphs that changed since.
translation: $(call stamp,$(FRAMEWORK))
	$(call env_python,$(FRAMEWORK)) -m d2lsupport.translation build id
	$(call env_python,$(FRAMEWORK)) -m d2lsupport.notebook $(CHAPTER).id.md $(CHAPTER).id.ipynb

# One notebook per framework for reading elsewhere (tools/notebooks.py; a test fails
# when they are not current with the chapter).
notebooks: $(call stamp,$(FRAMEWORK)) ipynb
	$(call env_python,$(FRAMEWORK)) -m tools.notebooks

# The wheel and sdist of d2lsupport, with the records the chapter reads inside
# (pyproject.toml), built in a small environment of their own.
DIST_ENV := $(ENVS_DIR)/dist
dist: $(WHEEL)
$(WHEEL): $(DIST_ENV)/.installed pyproject.toml LICENSE README.md \
		$(wildcard d2lsupport/*.py d2lsupport/chapter/*.py results/study*.jsonl results/regnetx32.*.json)
	rm -rf $(DIST_DIR) build && mkdir -p $(DIST_DIR)
	$(DIST_ENV)/bin/python -m build --no-isolation --outdir $(DIST_DIR) . > $(DIST_DIR)/build.log 2>&1 \
		|| { cat $(DIST_DIR)/build.log; exit 1; }
	rm -rf build
	@tail -n 1 $(DIST_DIR)/build.log
$(DIST_ENV)/.installed: requirements/dist.txt
	rm -rf $(DIST_ENV)
	$(PYTHON) -m venv $(DIST_ENV)
	$(DIST_ENV)/bin/$(PIP_INSTALL) -r requirements/dist.txt
	touch $@

# Regenerate the library's copy of the chapter's network: the cells marked #@save go
# into d2lsupport/chapter/<framework module>.py (a test fails when they differ).
library: $(call stamp,$(FRAMEWORK))
	$(call env_python,$(FRAMEWORK)) -m d2lsupport.library $(CHAPTER).md

# Re-record the outputs nbval compares against: each framework's notebook run in the
# small budget, without its install cell.
record: setup data ipynb notebooks
	mkdir -p $(RECORDED)
	for fw in $(FRAMEWORKS); do \
		D2L_SMALL_BUDGET=1 $(ENVS_DIR)/$$fw/bin/jupyter nbconvert \
			--to notebook --execute --ExecutePreprocessor.kernel_name=python3 \
			--TagRemovePreprocessor.enabled=True --TagRemovePreprocessor.remove_cell_tags=install \
			--output-dir $(RECORDED) --output cnn-design.$$fw.ipynb notebooks/$$fw/cnn-design.ipynb || exit 1; \
	done

# Re-resolve the pinned lock files from requirements/*.in (needs the registries).
lock:
	for fw in $(FRAMEWORKS); do \
		rm -rf /tmp/cnn-design-lock && $(PYTHON) -m venv /tmp/cnn-design-lock && \
		/tmp/cnn-design-lock/bin/pip install -q -r requirements/$$fw.in -r requirements/common.in && \
		{ echo "# Full lock for the $$fw environment, generated from $$fw.in + common.in by 'make lock'."; \
		  /tmp/cnn-design-lock/bin/pip freeze | sed 's/+cpu$$//'; } > requirements/$$fw.txt || exit 1; \
	done

# JupyterLab from the PyTorch environment, offering the four framework kernels.
lab: setup
	$(call env_python,pytorch) -m pip install -q jupyterlab
	JUPYTER_PATH=$(subst $(eval) ,:,$(foreach fw,$(FRAMEWORKS),$(abspath $(ENVS_DIR)/$(fw)/share/jupyter))) \
		$(call env_python,pytorch) -m jupyter lab chapter_cnn_design/

# The design-space study at equal cost: STUDY_N networks per space within 10% of
# STUDY_MFLOPS, one epoch each; then the first STUDY_LONG_N per space retrained for
# STUDY_LONG_EPOCHS epochs (does the short budget rank them as the long one does?);
# then the EDF figure. Resumable; STUDY_FRAMEWORK's Trainer (its environment runs it).
# About 90 minutes on 2 cores with the defaults.
STUDY_N ?= 64
STUDY_MFLOPS ?= 0.5
STUDY_LONG_N ?= 6
STUDY_LONG_EPOCHS ?= 4
STUDY_FRAMEWORK ?= pytorch
study_run = $(call env_python,$(STUDY_FRAMEWORK)) -m d2lsupport.study run --framework $(STUDY_FRAMEWORK) \
	--mflops $(STUDY_MFLOPS) $(STUDY_ARGS)
study: $(call stamp,$(STUDY_FRAMEWORK)) data
	$(study_run) --out results/study-cost.jsonl -n $(STUDY_N)
	$(study_run) --out results/study-long.jsonl -n $(STUDY_LONG_N) --epochs $(STUDY_LONG_EPOCHS)
	$(call env_python,$(STUDY_FRAMEWORK)) -m d2lsupport.study plot results/study-cost.jsonl \
		--out img/edf-study-cost.svg
	$(call env_python,$(STUDY_FRAMEWORK)) -m d2lsupport.study plot results/study.jsonl \
		--out img/edf-study.svg

# Speed and memory: every framework in its own process; each against the book's way of
# training its tab (alternated epochs); JAX's and PyTorch's steps operation by operation.
# Writes results/bench.json and prints markdown tables (see BENCHMARKS.md). Takes about
# 25 minutes on 2 cores; run it on an otherwise idle machine.
BENCH_REPS ?= 8
BENCH_PAIRS ?= 3
PROFILED := jax pytorch
bench: setup data
	mkdir -p _build/bench results
	for fw in $(FRAMEWORKS); do \
		$(ENVS_DIR)/$$fw/bin/python -m tools.bench measure --framework $$fw \
			--reps $(BENCH_REPS) --out _build/bench/$$fw.json && \
		$(ENVS_DIR)/$$fw/bin/python -m tools.bench book --framework $$fw \
			--pairs $(BENCH_PAIRS) --out _build/bench/book.$$fw.json || exit 1; \
	done
	for fw in $(PROFILED); do \
		$(ENVS_DIR)/$$fw/bin/python -m tools.bench profile --framework $$fw \
			--out _build/bench/profile.$$fw.json || exit 1; \
	done
	$(call env_python,pytorch) -m tools.bench report \
		$(foreach fw,$(FRAMEWORKS),_build/bench/$(fw).json _build/bench/book.$(fw).json) \
		$(foreach fw,$(PROFILED),_build/bench/profile.$(fw).json) --out results/bench.json

# The long-run check: per-epoch time and resident memory of a 6-epoch fit on a subset
# shaped like a real epoch, in every framework (see BENCHMARKS.md for how long it takes).
# The batch-normalization check: validation with running against per-batch statistics
# after the same 100 training steps, in every framework.
# $(call check_all,COMMAND,RESULT): `python -m tools.bench COMMAND` in every framework's
# environment, then one report in results/RESULT.json.
check_all = mkdir -p _build/bench results && \
	for fw in $(FRAMEWORKS); do \
		$(ENVS_DIR)/$$fw/bin/python -m tools.bench $(1) --framework $$fw \
			--out _build/bench/$(1).$$fw.json || exit 1; \
	done && \
	$(call env_python,pytorch) -m tools.bench report \
		$(foreach fw,$(FRAMEWORKS),_build/bench/$(1).$(fw).json) --out results/$(2).json

drift: setup data
	$(call check_all,drift,drift)

bn-check: setup data
	$(call check_all,bn,bn-check)

# Resident memory through the phases of training RegNetX32, in every framework.
memory: setup data
	$(call check_all,memory,memory)

# Register the four kernels for your own Jupyter (in ~/.local/share/jupyter).
kernels: setup
	for fw in $(FRAMEWORKS); do \
		$(ENVS_DIR)/$$fw/bin/python -m ipykernel install --user --name cnn-design-$$fw \
			--display-name "cnn-design ($$fw)" || exit 1; \
	done

clean-envs:
	rm -rf $(addprefix $(ENVS_DIR)/,$(FRAMEWORKS))

# ---------------------------------------------------------------------------------------
# The chapter as a d2lbook HTML page (README, "The HTML page").
#   make html [FULL=1]   _build/html/, each framework's tab evaluated in its environment;
#                        small training budget unless FULL=1 (the page says which)
#   make test-html       the browser test of the built page (headless Debian chromium)
#   make test-page       (part of make test) the page built from the notebooks that nbval
#                        ran in the four suites, instead of running each tab again, and
#                        the browser test of it
DOCS_ENV := $(ENVS_DIR)/docs
docs_stamp := $(DOCS_ENV)/.installed
FULL ?=
full_flag = $(if $(filter-out 0 no false,$(FULL)),--full)

.PHONY: html test-html test-page pytest-docs debian-pandoc debian-browser lock-docs clean-html

# $(call debian,COMMAND,PACKAGES): install the Debian PACKAGES when COMMAND is missing
# (as root, with apt-get; otherwise say what to install).
debian = command -v $(1) >/dev/null || { \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "== installing Debian packages: $(2)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $(2) >/dev/null; \
	else echo "error: $(1) is missing; install the Debian packages: $(2)"; exit 1; fi; }

# The docs environment: d2lbook and Sphinx from the pinned lock, MathJax from npm.
$(docs_stamp): requirements/docs.txt requirements/docs-js/package.json requirements/docs-js/package-lock.json
	@echo "== creating the docs environment in $(DOCS_ENV)"
	rm -rf $(DOCS_ENV)
	$(PYTHON) -m venv $(DOCS_ENV)
	$(DOCS_ENV)/bin/$(PIP_INSTALL) -r requirements/docs.txt
	mkdir -p $(DOCS_ENV)/js
	cp requirements/docs-js/package.json requirements/docs-js/package-lock.json $(DOCS_ENV)/js/
	cd $(DOCS_ENV)/js && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

debian-pandoc:
	@$(call debian,pandoc,pandoc)

# (after pandoc: two apt-get runs at once would wait on each other's lock, or fail)
debian-browser: debian-pandoc
	@$(call debian,chromium,chromium chromium-driver)
	@$(call debian,chromedriver,chromium-driver)

html: setup data $(docs_stamp) debian-pandoc
	$(DOCS_ENV)/bin/python -m tools.book --envs-dir $(ENVS_DIR) $(full_flag)

# Opens the built page from a local server in headless chromium: every tab, images, math;
# screenshots go to _build/screenshots/. (The other tests of tests/html check the build
# itself, in the docs environment: pytest-docs.)
docs_pytest = CNN_DESIGN_HTML_TEST=1 $(DOCS_ENV)/bin/python -m pytest -q -p no:cacheprovider \
	--confcutdir=tests/html
browser_test = $(docs_pytest) tests/html/test_page.py

test-html: html debian-browser pytest-docs
	$(browser_test)

test-page: $(addprefix nbval-,$(FRAMEWORKS)) $(docs_stamp) debian-browser
	$(DOCS_ENV)/bin/python -m tools.book --envs-dir $(ENVS_DIR) --executed $(EXECUTED)
	$(browser_test)

pytest-docs: $(docs_stamp)
	$(docs_pytest) --ignore=tests/html/test_page.py tests/html

lock-docs:
	rm -rf /tmp/cnn-design-lock && $(PYTHON) -m venv /tmp/cnn-design-lock && \
	/tmp/cnn-design-lock/bin/pip install -q -r requirements/docs.in && \
	{ echo "# Full lock for the docs environment, generated from docs.in by 'make lock-docs'."; \
	  /tmp/cnn-design-lock/bin/pip freeze --all | grep -v -E '^(pip|wheel)=='; } > requirements/docs.txt
	cd requirements/docs-js && npm install --package-lock-only --ignore-scripts --no-audit --no-fund

clean-html:
	rm -rf _build
