# The two commands: `make run` (the whole system on embedded defaults) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: run test test-shifted-clock test-pkcs11 lint format browser promtool softhsm docs clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

.env:
	$(PY) scripts/write_env.py .env

run: $(VENV)/.installed .env
	@$(PY) scripts/port_free.py $(PORT)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py signing_keys ensure
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py check --database default
	@$(PY) scripts/first_admin_hint.py $(PY)
	@echo "Ctrl-C stops web, worker and beat. \"Issuer running at\" follows once the web server listens."
	@trap 'trap - INT TERM EXIT; kill $$(jobs -p) 2>/dev/null; wait; exit 0' INT TERM EXIT; \
	RUN_BANNER=1 $(VENV)/bin/gunicorn -c config/gunicorn.conf.py config.wsgi --bind 127.0.0.1:$(PORT) & \
	$(VENV)/bin/celery -A config worker --loglevel INFO --concurrency 2 & \
	$(VENV)/bin/celery -A config beat --loglevel INFO --schedule var/celerybeat-schedule & \
	$(VENV)/bin/celery -A config call issuer.tasks.signing_key_policy >/dev/null; \
	$(VENV)/bin/celery -A config call issuer.tasks.token_refresh >/dev/null; \
	wait

# Chromium for the browser tests: Debian's package, never a downloaded browser.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
		|| echo "Could not install chromium (needs root): the browser tests will be skipped (failed under CI=true)."

# promtool for the alert-rule tests: Debian's prometheus package.
promtool:
	@command -v promtool >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
		apt-get install -y -qq prometheus >/dev/null; } \
		|| echo "Could not install prometheus (needs root): the promtool tests will be skipped (failed under CI=true)."

# SoftHSM2 for the PKCS#11 signing-key tests: Debian's softhsm2 package (each test run makes its own token).
softhsm:
	@command -v softhsm2-util >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq softhsm2 >/dev/null; } \
		|| echo "Could not install softhsm2 (needs root): the PKCS#11 tests will be skipped (failed under CI=true)."

test: $(VENV)/.installed browser promtool softhsm
	$(VENV)/bin/pytest -n 2 -p no:cacheprovider

# The suite again with Python's clock two years ahead: a date that only holds until some day fails now, not then.
# Tests marked wall_clock (they compare with PostgreSQL's now(), Redis TTLs or another process) are listed, not run.
test-shifted-clock: $(VENV)/.installed browser promtool softhsm
	TEST_CLOCK_SHIFT_DAYS=730 $(VENV)/bin/pytest -n 2 -p no:cacheprovider

# The suite again with every new key made in the SoftHSM2 token (tests of the local backend's own matter pin it).
test-pkcs11: $(VENV)/.installed browser promtool softhsm
	ISSUER_SIGNING_KEY_BACKEND=pkcs11 $(VENV)/bin/pytest -n 2 -p no:cacheprovider

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The documentation site into var/site (open var/site/index.html; no network needed). `make test` builds it too,
# with the same --strict, in tests/test_docs.py.
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir var/site

clean:
	rm -rf var db.sqlite3 test-artifacts
