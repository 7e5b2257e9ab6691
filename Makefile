# Two commands do everything: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run serve test lint bench setup engine images clean test-deps sandbox

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Berth needs Python 3.11 or newer"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,dev]'
	@touch $(STAMP)

engine:
	@scripts/ensure-docker

images: engine
	@scripts/build-images

# bubblewrap: the sandbox host commands run in (scripts/ensure-sandbox installs it on Debian as root).
sandbox:
	@scripts/ensure-sandbox

setup: $(STAMP) engine images sandbox

# The desktop app; with no display (a server, SSH) it says so and serves headless, as `make serve`.
run: setup
	$(VENV)/bin/berth

serve: setup
	$(VENV)/bin/berth serve

# What the tests use from the system: a real X server and a tray host (the tray test), a D-Bus
# session with gnome-keyring (tokens in a real Secret Service), and openssl and iproute2 for the second
# engine of tests/engines (certificates, its bridge), openssh for its ssh:// engine test (a private sshd on
# 127.0.0.1). Installed on Debian when missing (as root).
TEST_DEPS := xvfb xauth x11-utils imagemagick libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libxcb-cursor0 trayer \
	dbus gnome-keyring openssl iproute2 openssh-server openssh-client
TEST_TOOLS := Xvfb trayer xdpyinfo dbus-run-session gnome-keyring-daemon openssl ip sshd ssh ssh-keygen
test-deps:
	@missing=; for t in $(TEST_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing $(TEST_DEPS) (for:$$missing)"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(TEST_DEPS) >/dev/null \
			|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(TEST_DEPS) >/dev/null; }; \
		else \
			echo "test-deps:$$missing missing and cannot be installed here (not root on Debian): tests that need them are skipped" >&2; \
		fi; \
	fi

# Lint, then the whole suite in one pytest process (the desktop tests included), timed. `.ci/run` is this.
test: setup test-deps validate-desktop lint
	@start=$$(date +%s); $(PY) -m pytest; rc=$$?; \
	echo "make test: the suite took $$(( $$(date +%s) - start )) s"; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check app tests bench
	$(VENV)/bin/ruff format --check app tests bench
	$(VENV)/bin/mypy app

# Every bench in turn (bench/summary.py lists them), then one table of each figure against its goal.
bench: setup
	$(PY) -m bench.summary

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
