# Two commands: `make run` and `make test`. Each sets up what it needs on a fresh Debian 12
# machine with Python 3.11, pip, git, node and npm.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEB_PACKAGES := dcmtk fonts-noto-cjk chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint typecheck contracts pytest system-deps viewer clean

# The OHIF Viewer, served by the service at /viewer: the prebuilt dist/ of the npm package,
# pinned, fetched once with npm into a git-ignored cache (never at run time).
OHIF_VERSION := 3.13.2
VIEWER_DIR := .viewer/ohif-$(OHIF_VERSION)
VIEWER_STAMP := $(VIEWER_DIR)/dist/index.html

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the project and its tests call: dcmtk (storescu and friends), a CJK font.
system-deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(VIEWER_STAMP):
	@mkdir -p .viewer
	@echo "fetching @ohif/app@$(OHIF_VERSION) with npm pack (about 50 MB, once)"
	cd .viewer && npm pack --silent @ohif/app@$(OHIF_VERSION) >/dev/null
	rm -rf $(VIEWER_DIR).tmp && mkdir -p $(VIEWER_DIR).tmp
	tar -xzf .viewer/ohif-app-$(OHIF_VERSION).tgz -C $(VIEWER_DIR).tmp --strip-components=1 package/dist
	rm -rf $(VIEWER_DIR) && mv $(VIEWER_DIR).tmp $(VIEWER_DIR)
	rm -f .viewer/ohif-app-$(OHIF_VERSION).tgz

viewer: $(VIEWER_STAMP)

run: $(STAMP) system-deps viewer
	$(VENV)/bin/telemed serve --demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

contracts: $(STAMP)
	$(VENV)/bin/lint-imports

pytest: $(STAMP) system-deps viewer
	$(PY) -m pytest

test: lint typecheck contracts pytest

clean:
	rm -rf $(VENV) var .viewer .mypy_cache .ruff_cache .pytest_cache
