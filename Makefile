# BlockBot core. The two commands: `make run` (local stack) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run test lint typecheck pytest migrate up down logs ps clean

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

typecheck: $(STAMP)
	$(BIN)/mypy .

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

## migrate: run the migrate job against DATABASE_URL (local, no Docker)
migrate: $(STAMP)
	$(BIN)/python -m services.migrate

## Docker Compose operator tasks
up:
	docker compose up -d
down:
	docker compose down
logs:
	docker compose logs -f --tail=200
ps:
	docker compose ps

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
