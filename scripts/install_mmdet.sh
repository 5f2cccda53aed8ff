#!/usr/bin/env bash
# Optional: MMDetection 3.3.0 for the hand-off of searched backbones/necks (tasks/detection/integrations/mmdet.py).
# mmcv 2.1.0 has no wheel for this torch; it is built from its PyPI source package with its ops
# (about 11 minutes on 2 cores). The built wheel is kept in $ZOO_WHEEL_CACHE (default
# ~/.cache/zoo/wheels) so later runs on the same machine reuse it. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=".venv/bin/pip"
PY=".venv/bin/python"
CACHE="${ZOO_WHEEL_CACHE:-${HOME:-/root}/.cache/zoo/wheels}"
mkdir -p "$CACHE"
if "$PY" -c "import mmdet, mmcv.ops" >/dev/null 2>&1; then
  echo "install_mmdet: mmdet and mmcv with ops already importable"; exit 0
fi
"$PIP" install -q "setuptools<81" wheel ninja
"$PIP" install -q -e ".[mmdet]"   # mmengine, shapely, six, terminaltables (pinned in pyproject.toml)
wheel=$(ls "$CACHE"/mmcv-2.1.0-*.whl 2>/dev/null | head -1 || true)
if [ -z "$wheel" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "$PIP" download -q --no-deps --no-binary :all: mmcv==2.1.0 -d "$work"
  tar -xzf "$work"/mmcv-2.1.0.tar.gz -C "$work"
  # this torch's headers need C++20
  sed -i 's/-std=c++17/-std=c++20/g' "$work"/mmcv-2.1.0/setup.py
  (cd "$work"/mmcv-2.1.0 && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" "$OLDPWD/$PIP" wheel --no-build-isolation --no-deps -w "$CACHE" .)
  wheel=$(ls "$CACHE"/mmcv-2.1.0-*.whl | head -1)
fi
"$PIP" install -q --no-deps "$wheel"
"$PIP" install -q --no-deps mmdet==3.3.0
"$PY" -c "import mmdet, mmcv.ops; print('install_mmdet: mmdet', mmdet.__version__, 'mmcv', __import__('mmcv').__version__)"
