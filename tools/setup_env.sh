#!/usr/bin/env bash
# Create .venv/ with torch, mmcv (built with its C++ ops), mmdet, mmseg and
# convmlp_mm. Idempotent: a second run checks the stamp and takes seconds.
#
#   VENV=.venv            where the environment lives
#   TORCH_SPEC=torch==2.13.0
#   TORCH_INDEX_URL=      e.g. a CUDA wheel index, for a GPU machine
#   PYTHON=python3        interpreter that creates the environment
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}
MMCV_SPEC=mmcv==2.1.0
PY="$VENV/bin/python"
STAMP="$VENV/.convmlp_mm-installed"

say() { printf '[setup] %s\n' "$*"; }

# What the stamp records: anything that changes it reinstalls.
wanted="$(cat setup.py tools/setup_env.sh | sha1sum | cut -d' ' -f1) $TORCH_SPEC $TORCH_INDEX_URL"

ops_ok() {
  # An isolated or torch-less build of mmcv silently skips the C++ ops;
  # loading one compiled op proves they are there.
  "$PY" - <<'PY' 2>/dev/null
from mmcv.utils import ext_loader
ext_loader.load_ext('_ext', ['nms', 'roi_align_forward'])
PY
}

link_for_mim() {
  # mim (openmim 0.3.9) reads a package's model index from
  # <where its metadata is>/convmlp_mm/.mim/model-index.yml, i.e. from
  # site-packages/convmlp_mm/, where an editable install puts nothing: link
  # the checkout's package there (imports then find it through the link;
  # setup.py makes .mim/ links to model-index.yml and configs/). The link
  # is added to the install's RECORD, so `pip uninstall convmlp_mm` removes
  # it. Prints nothing when the link is already there. (-I: not the
  # checkout's convmlp_mm.egg-info, which the current folder would show.)
  "$PY" -I - "$PWD/convmlp_mm" <<'PY'
import importlib.metadata as md
import os
import os.path as osp
import sys

package = sys.argv[1]
dist = md.distribution('convmlp_mm')
link = osp.join(str(dist.locate_file('')), 'convmlp_mm')
if osp.islink(link) and osp.realpath(link) == osp.realpath(package):
    raise SystemExit(0)
if osp.lexists(link):
    raise SystemExit(f'[setup] ERROR: {link} exists and is not a link to '
                     f'{package}: pip uninstall convmlp_mm, then run again')
os.symlink(package, link)
(record, ) = [f.locate() for f in dist.files if f.name == 'RECORD']
with open(record, 'a') as f:
    f.write('convmlp_mm,,\n')
print(f'[setup] linked {link} -> {package} (for mim)')
PY
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ] && ops_ok \
    && "$PY" -c 'import convmlp_mm, convmlp_mm_cli' 2>/dev/null \
    && link_for_mim; then
  say "environment $VENV is up to date"
  exit 0
fi

if [ ! -x "$PY" ]; then
  say "creating virtual environment $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
pip_install() {
  # This machine's pip config names local index folders that do not exist
  # for every package; drop those warnings, keep everything else.
  "$PY" -m pip install --disable-pip-version-check -q "$@" 2>&1 \
    | { grep -v "^WARNING: Location 'file:" || true; }
  return "${PIPESTATUS[0]}"
}

say "installing $TORCH_SPEC${TORCH_INDEX_URL:+ from $TORCH_INDEX_URL}"
if [ -n "$TORCH_INDEX_URL" ]; then
  pip_install "$TORCH_SPEC" --index-url "$TORCH_INDEX_URL"
else
  pip_install "$TORCH_SPEC"
fi

# mmcv's setup.py imports torch and pkg_resources: build tools first.
say "installing build tools (setuptools<82 keeps pkg_resources, wheel, ninja)"
pip_install 'setuptools>=77.0.3,<82' wheel ninja

if ops_ok; then
  say "$MMCV_SPEC with compiled ops already installed"
else
  say "building $MMCV_SPEC with its C++ ops (about 10 minutes the first time; pip caches the wheel)"
  # --no-build-isolation: the build must see the installed torch, otherwise
  # it silently produces mmcv without ops.
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    pip_install --no-build-isolation "$MMCV_SPEC"
  if ! ops_ok; then
    say "ERROR: mmcv installed without its compiled ops. Remove it ($PY -m pip uninstall mmcv), clear pip's cached wheel (pip cache remove mmcv) and run again."
    exit 1
  fi
fi

say "installing convmlp_mm (editable) with mmengine, mmdet, mmsegmentation and the test, onnx and tensorboard extras"
pip_install -e '.[tests,onnx,tensorboard]'
link_for_mim

"$PY" - <<'PY'
import torch, mmcv, mmengine, mmdet, mmseg, convmlp_mm
import onnx, onnxruntime, onnxscript  # the onnx extra (docs/deployment.md)
print(f'[setup] torch {torch.__version__} (CUDA {torch.cuda.is_available()}), '
      f'mmengine {mmengine.__version__}, mmcv {mmcv.__version__}, '
      f'mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, '
      f'convmlp_mm {convmlp_mm.__version__} registered in '
      f'{", ".join(convmlp_mm.REGISTERED_IN)}')
PY
echo "$wanted" > "$STAMP"
say "done: activate with 'source $VENV/bin/activate'"
