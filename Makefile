# BlockBot core. The two commands: `make run` (local stack) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run test lint typecheck pytest migrate migrate-local revision up down logs ps build secrets env \
        compose-config clean lock lock-check local-images compose-test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## run: start PostgreSQL, Redis, migrate, auth, api, worker and Traefik on http://localhost:8080
run: $(STAMP)
	$(BIN)/python -m devstack.run

## test: lint, type-check and run every test (starts its own PostgreSQL and Redis)
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

## migrate-local: run the migrate job against DATABASE_URL (local, no Docker)
migrate-local: $(STAMP)
	$(BIN)/python -m services.migrate

## revision: new Alembic revision with the next number, e.g. make revision m="add widgets"
revision: $(STAMP)
	@test -n "$(m)" || { echo 'usage: make revision m="what it changes"' >&2; exit 2; }
	@last=$$(ls migrations/versions | sed -n 's/^\([0-9][0-9][0-9][0-9]\)_.*\.py$$/\1/p' | sort | tail -n 1); \
	$(BIN)/alembic revision -m "$(m)" --rev-id $$(printf '%04d' $$(expr "$${last:-0}" + 1))

## Docker Compose operator tasks. PROD=1 adds compose.prod.yaml (TLS, production settings);
## PROFILES="monitoring" adds Prometheus and Grafana. Secrets come from .env (see .env.example).
COMPOSE_FILES := -f compose.yaml $(if $(PROD),-f compose.prod.yaml)
COMPOSE       := docker compose $(COMPOSE_FILES) $(foreach p,$(PROFILES),--profile $(p))
## build: build the one blockbot-core image (infra/Dockerfile)
build:
	$(COMPOSE) build migrate
## up: build if needed, migrate, start everything, wait until healthy
up:
	$(COMPOSE) up -d --build --wait
## down: stop and remove the containers (volumes are kept)
down:
	$(COMPOSE) down
logs:
	$(COMPOSE) logs -f --tail=200 $(SERVICE)
ps:
	$(COMPOSE) ps
## migrate: run the migrate job once more in Docker Compose (it also runs on every `up`)
migrate:
	$(COMPOSE) run --rm migrate
## env: create .env from .env.example with fresh secrets, or fill the placeholders of an
## existing one in place (plain python3, nothing installed first)
env:
	@$(PYTHON) -m devstack.secrets --env-file .env
## secrets: print freshly generated secret lines
secrets:
	@$(PYTHON) -m devstack.secrets
## compose-config: validate both compose files with every profile (real Compose v2 binary, no daemon)
compose-config: $(STAMP)
	$(BIN)/python -m devstack.compose_check

## lock: re-pin every runtime dependency with hashes (infra/requirements.lock, used by the image)
UV := $(BIN)/uv
UV_VERSION := 0.13.9
LOCK_ARGS := pyproject.toml --universal --generate-hashes --python-version 3.11 --quiet \
             --custom-compile-command "make lock"
$(UV): $(STAMP)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
lock: $(UV)
	$(UV) pip compile $(LOCK_ARGS) -o infra/requirements.lock
## lock-check: fail when pyproject.toml changed and infra/requirements.lock was not regenerated
lock-check: $(UV)
	@tmp=$$(mktemp) && cp infra/requirements.lock $$tmp \
	  && $(UV) pip compile $(LOCK_ARGS) -o $$tmp \
	  && diff -u infra/requirements.lock $$tmp && rm -f $$tmp \
	  || { echo "infra/requirements.lock is stale: run make lock" >&2; rm -f $$tmp; exit 1; }
## local-images: build postgres, redis, traefik, prometheus and python images from Debian
## packages under the official tags (no image registry needed; infra/local-images/build.sh)
local-images:
	bash infra/local-images/build.sh
## compose-test: the Docker Compose stack for real (tests/compose; needs a Docker engine)
compose-test: $(STAMP)
	$(BIN)/pytest -m compose tests/compose -p no:cacheprovider $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
