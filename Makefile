# Two commands for a new user: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test fuzz lint bench clean venv gnuradio xvfb

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/backscatter demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

fuzz: $(STAMP)
	VENV=$(VENV) sh fuzz/run.sh

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/backscatter bench

# GNU Radio 3.10 (Debian's package, run by the system python3) for gnuradio/ and tests/test_gnuradio.py
GR_PYTHON ?= /usr/bin/python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
gnuradio:
	@if $(GR_PYTHON) -c 'from gnuradio import blocks, gr, zeromq' 2>/dev/null; then \
		echo "GNU Radio is installed ($(GR_PYTHON))"; \
	else \
		echo "installing GNU Radio (apt-get, about a minute)"; \
		$(SUDO) apt-get update -qq >/tmp/gnuradio-apt.log 2>&1 && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends gnuradio \
			>>/tmp/gnuradio-apt.log 2>&1 || { tail -20 /tmp/gnuradio-apt.log; exit 1; }; \
		$(GR_PYTHON) -c 'from gnuradio import gr; print("GNU Radio", gr.version(), "installed")'; \
	fi

# Xvfb (a real X server) for the GUI's smoke test in tests/test_gui_xvfb.py (skipped without it)
xvfb:
	@if command -v xvfb-run >/dev/null && command -v Xvfb >/dev/null; then \
		echo "Xvfb is installed"; \
	else \
		echo "installing xvfb xauth (apt-get)"; \
		$(SUDO) apt-get update -qq >/tmp/xvfb-apt.log 2>&1 && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends xvfb xauth \
			>>/tmp/xvfb-apt.log 2>&1 || { tail -20 /tmp/xvfb-apt.log; exit 1; }; \
	fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
