#!/usr/bin/env bash
# The offline install, as a GPU host without internet does it: a fresh virtualenv gets the
# host's own torch and torchvision (HOST_TORCH, from the host's own index or files), then the
# suite from the wheelhouse alone (no index, no pip configuration), then runs `glioma --help`
# and a tiny prepare + train_ddpm. Prints each stage's time.
#
#   make wheelhouse && bash benchmarks/check_wheelhouse.sh [WHEELHOUSE]
#   HOST_TORCH="/path/torch-....whl torchvision==0.28.0" bash benchmarks/check_wheelhouse.sh
set -euo pipefail
WHEELS=$(realpath "${1:-wheelhouse}")
HOST_TORCH=${HOST_TORCH:-"torch torchvision"}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
timed() { local start=$SECONDS; "$@"; echo "  ... $((SECONDS - start)) s"; }

echo "fresh virtualenv ($(${PYTHON:-python3} --version))"
timed "${PYTHON:-python3}" -m venv "$WORK/venv"
echo "the host's torch: $HOST_TORCH"
# shellcheck disable=SC2086  # HOST_TORCH is a list of requirements
timed "$WORK/venv/bin/pip" install --quiet --disable-pip-version-check $HOST_TORCH
echo "the suite from $WHEELS ($(ls "$WHEELS"/*.whl | wc -l) wheels), no index"
timed env PIP_CONFIG_FILE=/dev/null "$WORK/venv/bin/pip" install --quiet \
    --disable-pip-version-check --no-index --find-links "$WHEELS" "glioma-suite[fid,gpu]"

CHECKOUT=$(cd "$(dirname "$0")/.." && pwd)
export GLIOMA_HOME="$WORK/home" GLIOMA_OFFLINE=1 GLIOMA_PROFILES="$WORK/profiles.json"
export PATH="$WORK/venv/bin:$PATH"
# the test suite's tiny profile (16 px, 8 subjects a grade, a 4-step DDPM)
(cd "$CHECKOUT/tests" && python -c "
import json, sys
from step_helpers import TINY_PROFILE
json.dump({'tiny': TINY_PROFILE}, open(sys.argv[1], 'w'))" "$GLIOMA_PROFILES")
cd "$WORK"
glioma --help > "$WORK/help.txt" && head -n 2 "$WORK/help.txt"
echo "every step's modules import (torchvision against the host's torch included)"
timed python -c "import glioma.pipeline.study, glioma.pipeline.tune"
echo "tiny prepare"
timed glioma prepare --profile tiny --site phantom-a
echo "tiny train_ddpm (HGG)"
timed glioma train_ddpm --profile tiny --site phantom-a --grade HGG
echo "offline install from the wheelhouse: works"
