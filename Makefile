# BlockBot core. The two commands: `make run` (local stack) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run stop test test-fast lint typecheck pytest migrate migrate-local revision up down logs ps build secrets compose-config clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## run: start PostgreSQL, Redis, migrate, auth, api, worker and Traefik on http://localhost:8080
run: $(STAMP)
	$(BIN)/python -m devstack.run

## stop: stop a local stack left behind by a killed `make run` or a closed terminal
stop: $(STAMP)
	$(BIN)/python -m devstack.stop

## test: lint, type-check and run every test (starts its own PostgreSQL and Redis)
test: lint typecheck pytest

## test-fast: lint, type-check and the tests not marked slow (no whole stacks, no fault injection)
test-fast: lint typecheck
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

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

## --- Operating BlockBot (README "Operating BlockBot"): admin, key rotation, backups ---------
.PHONY: admin admin-compose rotate-key
# `make run`'s servers (set DEVSTACK_POSTGRES_PORT / DEVSTACK_REDIS_PORT if you moved them).
DEV_PG_URL    := postgresql://postgres@127.0.0.1:$(or $(DEVSTACK_POSTGRES_PORT),55432)/blockbot
DEV_REDIS_URL := redis://127.0.0.1:$(or $(DEVSTACK_REDIS_PORT),56379)/0
# Compose: the migrate job's container (administrator URL) with the services' Redis URL.
COMPOSE_WITH_ENV := set -a && . ./.env && set +a && $(COMPOSE)
COMPOSE_ADMIN    := $(COMPOSE_WITH_ENV) run --rm -e REDIS_URL="redis://:$${REDIS_PASSWORD}@redis:6379/0" -e REDIS_KEY_PREFIX="$${REDIS_KEY_PREFIX:-bb:}" migrate
## admin: the admin command line against `make run`, e.g. make admin ARGS="users"
admin: $(STAMP)
	@ENV=development DATABASE_URL="$(DEV_PG_URL)" REDIS_URL="$(DEV_REDIS_URL)" $(BIN)/python -m services.admin $(ARGS)
## admin-compose: the same inside Docker Compose, e.g. make admin-compose ARGS="orgs"
admin-compose:
	@$(COMPOSE_ADMIN) python -m services.admin $(ARGS)
## rotate-key: one signing-key rotation step, STEP=status|add|promote|retire, in ENV_FILE
##             (default .env for Compose; .dev/secrets.env for make run); then restart auth
ENV_FILE ?= .env
rotate-key: $(STAMP)
	@$(BIN)/python -m services.auth.key_rotation $(or $(STEP),status) --env-file $(ENV_FILE) $(if $(FORCE),--force)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
