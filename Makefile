# BlockBot core. The two commands: `make run` (local stack) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run test lint typecheck pytest migrate migrate-local revision up down logs ps build secrets compose-config clean

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
## secrets: print freshly generated secrets for .env (paste them in)
secrets: $(STAMP)
	@$(BIN)/python -m devstack.secrets
## compose-config: validate both compose files with every profile (real Compose v2 binary, no daemon)
compose-config: $(STAMP)
	$(BIN)/python -m devstack.compose_check

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
