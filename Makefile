# Two commands: `make run` and `make test`. Each sets up what it needs on a fresh Debian 12
# machine with Python 3.11, pip, git, node and npm.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# What serving needs (`make run`), and that plus the test tools (`make test`).
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# Debian packages: dcmtk (storescu and friends) and a CJK font for serving; chromium for the
# browser tests.
RUN_DEB_PACKAGES := dcmtk fonts-noto-cjk
TEST_DEB_PACKAGES := $(RUN_DEB_PACKAGES) chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint typecheck contracts pytest run-deps test-deps system-deps viewer clean

# The OHIF Viewer, served by the service at /viewer: the prebuilt dist/ of the npm package,
# pinned, fetched once with npm into a git-ignored cache (never at run time).
OHIF_VERSION := 3.13.2
VIEWER_DIR := .viewer/ohif-$(OHIF_VERSION)
VIEWER_STAMP := $(VIEWER_DIR)/dist/index.html
# dicom-parser reads DICOM headers in the send page, before anything is sent: its minified
# build from the npm package, pinned, beside the viewer in the same cache.
DICOM_PARSER_VERSION := 1.8.21
DICOM_PARSER_DIR := .viewer/dicom-parser-$(DICOM_PARSER_VERSION)
DICOM_PARSER_STAMP := $(DICOM_PARSER_DIR)/dicomParser.min.js

$(PY):
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP) $(RUN_STAMP)

# Installs the Debian packages of $(1) that are missing.
define apt_install
	@missing=""; for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

run-deps:
	$(call apt_install,$(RUN_DEB_PACKAGES))

test-deps system-deps:
	$(call apt_install,$(TEST_DEB_PACKAGES))

$(VIEWER_STAMP):
	@mkdir -p .viewer
	@echo "fetching @ohif/app@$(OHIF_VERSION) with npm pack (about 50 MB, once)"
	cd .viewer && npm pack --silent @ohif/app@$(OHIF_VERSION) >/dev/null
	rm -rf $(VIEWER_DIR).tmp && mkdir -p $(VIEWER_DIR).tmp
	tar -xzf .viewer/ohif-app-$(OHIF_VERSION).tgz -C $(VIEWER_DIR).tmp --strip-components=1 package/dist
	rm -rf $(VIEWER_DIR) && mv $(VIEWER_DIR).tmp $(VIEWER_DIR)
	rm -f .viewer/ohif-app-$(OHIF_VERSION).tgz

$(DICOM_PARSER_STAMP):
	@mkdir -p .viewer
	cd .viewer && npm pack --silent dicom-parser@$(DICOM_PARSER_VERSION) >/dev/null
	rm -rf $(DICOM_PARSER_DIR).tmp && mkdir -p $(DICOM_PARSER_DIR).tmp
	tar -xzf .viewer/dicom-parser-$(DICOM_PARSER_VERSION).tgz -C $(DICOM_PARSER_DIR).tmp --strip-components=1 package/dist/dicomParser.min.js package/LICENSE
	mv $(DICOM_PARSER_DIR).tmp/dist/dicomParser.min.js $(DICOM_PARSER_DIR).tmp/ && rmdir $(DICOM_PARSER_DIR).tmp/dist
	rm -rf $(DICOM_PARSER_DIR) && mv $(DICOM_PARSER_DIR).tmp $(DICOM_PARSER_DIR)
	rm -f .viewer/dicom-parser-$(DICOM_PARSER_VERSION).tgz

viewer: $(VIEWER_STAMP) $(DICOM_PARSER_STAMP)

# The set-up steps are independent: run them side by side, then serve.
run:
	$(MAKE) --no-print-directory -j3 $(RUN_STAMP) run-deps viewer
	$(VENV)/bin/telemed serve --demo

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(DEV_STAMP)
	$(VENV)/bin/mypy

contracts: $(DEV_STAMP)
	$(VENV)/bin/lint-imports

pytest: $(DEV_STAMP) test-deps viewer
	$(PY) -m pytest

test: lint typecheck contracts pytest

clean:
	rm -rf $(VENV) var .viewer .mypy_cache .ruff_cache .pytest_cache
