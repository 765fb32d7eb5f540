# BlockBot core. The two commands: `make run` (local stack) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: help install run stop test test-fast lint typecheck pytest docs migrate migrate-local revision up down logs ps \
        build secrets env compose-config clean lock lock-check local-images compose-test bench-capacity
.DEFAULT_GOAL := help

## help: list the documented targets (also what `make` alone does)
help:
	@echo "make TARGET, where TARGET is one of:"
	@awk '/^## [a-z-]+: / { name = substr($$2, 1, length($$2) - 1); sub(/^## [a-z-]+: /, ""); printf "  %-16s%s\n", name, $$0 }' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-* && touch $@

## install: create .venv and install the project with its dev dependencies
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

## lint: ruff check, ruff format --check and the import contracts (lint-imports)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

## typecheck: mypy --strict
typecheck: $(STAMP)
	$(BIN)/mypy .

## pytest: the test suite only (PYTEST_ARGS="tests/api -x" to narrow it)
pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

## docs: regenerate docs/api.md and docs/problems.md from the OpenAPI documents and error types
docs: $(STAMP)
	$(BIN)/python -m devstack.api_docs

## migrate-local: run the migrate job against DATABASE_URL (local, no Docker)
migrate-local: $(STAMP)
	$(BIN)/python -m services.migrate

## revision: new Alembic revision with the next number, e.g. make revision m="add widgets"
revision: $(STAMP)
	@test -n "$(m)" || { echo 'usage: make revision m="what it changes"' >&2; exit 2; }
	@last=$$(ls migrations/versions | sed -n 's/^\([0-9][0-9][0-9][0-9]\)_.*\.py$$/\1/p' | sort | tail -n 1); \
	$(BIN)/alembic revision -m "$(m)" --rev-id $$(printf '%04d' $$(expr "$${last:-0}" + 1))

## Docker Compose operator tasks. PROD=1 adds compose.prod.yaml (TLS, production settings);
## PROFILES="monitoring" adds Prometheus and Grafana. Settings and secrets come from ENV_FILE
## (default .env, see .env.example), the project name from its COMPOSE_PROJECT_NAME (default
## blockbot); DOCKER_COMPOSE is the Compose v2 command (default `docker compose`).
DOCKER_COMPOSE ?= docker compose
ENV_FILE      ?= .env
COMPOSE_FILES := -f compose.yaml $(if $(PROD),-f compose.prod.yaml)
COMPOSE       := $(DOCKER_COMPOSE) --env-file $(ENV_FILE) $(COMPOSE_FILES) $(foreach p,$(PROFILES),--profile $(p))
## build: build the one blockbot-core image (infra/Dockerfile)
build:
	$(COMPOSE) build migrate
## up: build if needed, migrate, start everything, wait until healthy
up:
	$(COMPOSE) up -d --build --wait
## down: stop and remove the containers (volumes are kept)
down:
	$(COMPOSE) down
## logs: follow the logs of every service, or of SERVICE=auth
logs:
	$(COMPOSE) logs -f --tail=200 $(SERVICE)
## ps: the state of every container
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
## bench-capacity: what one vCPU serves, empty and at scale (bench/capacity.py; ARGS="--small" for a
## one-minute run, ARGS="--scale 0.1" for a tenth of 10,000 orgs / 1M users / 10M audit events)
bench-capacity: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python bench/capacity.py $(ARGS)

## compose-test: the Docker Compose stack for real (tests/compose; needs a Docker engine)
compose-test: $(STAMP)
	$(BIN)/pytest -m compose tests/compose -p no:cacheprovider $(PYTEST_ARGS)

## --- Operating BlockBot (README "Operating BlockBot"): admin, key rotation, backups ---------
.PHONY: admin admin-compose rotate-key backup restore backup-compose restore-compose
# `make run`'s servers (set DEVSTACK_POSTGRES_PORT / DEVSTACK_REDIS_PORT if you moved them).
DEV_PG_URL    := postgresql://postgres@127.0.0.1:$(or $(DEVSTACK_POSTGRES_PORT),55432)/blockbot
DEV_REDIS_URL := redis://127.0.0.1:$(or $(DEVSTACK_REDIS_PORT),56379)/0
# Compose: the migrate job's container (administrator URL, and the services' Redis URL and key
# prefix: compose.yaml gives it both).
COMPOSE_ADMIN = $(COMPOSE) run --rm migrate
## admin: the admin command line against `make run`, e.g. make admin ARGS="users"
admin: $(STAMP)
	@ENV=development DATABASE_URL="$(DEV_PG_URL)" REDIS_URL="$(DEV_REDIS_URL)" $(BIN)/python -m services.admin $(ARGS)
## admin-compose: the same inside Docker Compose, e.g. make admin-compose ARGS="orgs"
admin-compose:
	@$(COMPOSE_ADMIN) python -m services.admin $(ARGS)
## rotate-key: one signing-key rotation step, STEP=status|add|promote|retire|emergency, in ENV_FILE
##             (default .env for Compose; .dev/secrets.env for make run); then restart auth
rotate-key: $(STAMP)
	@$(BIN)/python -m services.auth.key_rotation $(or $(STEP),status) --env-file $(ENV_FILE) $(if $(FORCE),--force)

# Backups: FILE defaults to backups/blockbot-<UTC time>.dump (custom format, no role passwords).
BACKUP_TIME := $(shell date -u +%Y%m%dT%H%M%SZ)
FILE ?= backups/blockbot-$(BACKUP_TIME).dump
DEV_ROOT ?= .dev
## backup: dump `make run`'s database to FILE (consistent while it runs; starts PostgreSQL if stopped)
backup: $(STAMP)
	@$(BIN)/python -m services.admin.backup dump $(FILE) --local $(DEV_ROOT)
## restore: FILE=... into an EMPTY `make run` database (stop it, rm -rf .dev/postgres), then migrate
restore: $(STAMP)
	@test -n "$(FILE)" -a -f "$(FILE)" || { echo "restore: FILE=<backup file> is required"; exit 2; }
	@$(BIN)/python -m services.admin.backup restore $(FILE) --local $(DEV_ROOT)
## backup-compose: the same from Docker Compose's postgres (pg_dump inside the container)
# The dump holds password hashes: created owner-only (umask 077) and new (noclobber, `set -C`)
# before its first byte, and removed when pg_dump fails.
backup-compose:
	@umask 077 && mkdir -p $(dir $(FILE)) && rm -f $(FILE).partial && set -C && \
	if $(COMPOSE) exec -T postgres sh -c 'pg_dump -U postgres --format=custom -d "$$POSTGRES_DB"' > $(FILE).partial; \
	then mv $(FILE).partial $(FILE) && echo "backup written to $(FILE)"; \
	else rm -f $(FILE).partial; echo "backup-compose: pg_dump failed, nothing written" >&2; exit 1; fi
## restore-compose: FILE=... into an EMPTY Compose database (see README), migrate, then start
restore-compose:
	@test -n "$(FILE)" -a -f "$(FILE)" || { echo "restore-compose: FILE=<backup file> is required"; exit 2; }
	$(COMPOSE) up -d --wait postgres redis
	@$(COMPOSE_ADMIN) python -m services.admin.backup bootstrap-roles
	$(COMPOSE) exec -T postgres sh -c 'pg_restore -U postgres -d "$$POSTGRES_DB" --exit-on-error --single-transaction' < $(FILE)
	$(COMPOSE) run --rm migrate
	@$(COMPOSE_ADMIN) python -m services.admin.backup verify
	@$(COMPOSE_ADMIN) python -m services.admin.backup reconcile-redis
	$(COMPOSE) up -d --wait

## clean: remove .venv and the tool caches (not .dev, the make run data)
clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
