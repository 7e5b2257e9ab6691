# Two commands do everything: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run serve test lint bench setup engine images clean ui-deps

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Berth needs Python 3.11 or newer"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,dev]'
	@touch $(STAMP)

engine:
	@scripts/ensure-docker

images: engine
	@scripts/build-images

setup: $(STAMP) engine images

run: setup
	$(VENV)/bin/berth serve

serve: setup
	$(VENV)/bin/berth serve

# The tray test needs a real X server and a tray host; install them on Debian when missing (as root).
UI_DEPS := xvfb xauth x11-utils imagemagick libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libxcb-cursor0 trayer dbus
ui-deps:
	@if ! command -v Xvfb >/dev/null || ! command -v trayer >/dev/null || ! command -v xdpyinfo >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing $(UI_DEPS)"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(UI_DEPS) >/dev/null \
			|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(UI_DEPS) >/dev/null; }; \
		else \
			echo "ui-deps: Xvfb or trayer missing and cannot install them here; the tray test will be skipped" >&2; \
		fi; \
	fi

# The desktop tests run in a process of their own: Qt and qasync keep process-wide state (the
# QApplication, loops bound to it) that the other suites' subprocesses and loops should not share.
test: setup ui-deps validate-desktop
	$(PY) -m pytest --ignore=tests/ui
	$(PY) -m pytest tests/ui

lint: $(STAMP)
	$(VENV)/bin/ruff check app tests bench
	$(VENV)/bin/ruff format --check app tests bench
	$(VENV)/bin/mypy app

bench: setup
	$(PY) bench/temp_run.py
	$(PY) bench/concurrent.py
	$(PY) bench/peers.py

# Packaging (packaging/README.md): a one-folder bundle in dist/berth/, and the desktop integration.
.PHONY: package install-desktop desktop-deps validate-desktop
APP_ID := io.github.berth.Berth

package: $(STAMP)
	rm -rf dist/berth build/pyinstaller
	$(PY) -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller packaging/berth.spec
	@du -sh dist/berth

install-desktop:
	packaging/linux/install-desktop.sh

desktop-deps:
	@packaging/linux/desktop-deps.sh

validate-desktop: desktop-deps
	desktop-file-validate packaging/linux/$(APP_ID).desktop
	appstreamcli validate --no-net packaging/linux/$(APP_ID).metainfo.xml

clean:
	rm -rf $(VENV) build dist *.egg-info
