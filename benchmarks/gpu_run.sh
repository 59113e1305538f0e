#!/usr/bin/env bash
# One go on a CUDA machine (no internet needed): install the wheelhouse beside the host's own
# torch, run the tiny-profile study end to end (every step, FID from the fid extra on the
# device), then benchmarks/gpu_check.py (the paper profile's parts: throughput and memory).
# Everything lands in one folder: install.log, study.log, figures/ (the main run's), gpu_check.log.
#
#   bash benchmarks/gpu_run.sh [OUT] [--device cuda|cpu]      (from the checkout, after
#   make wheelhouse on any Linux x86-64 machine with internet, and copying the checkout over)
# --device cpu checks the script itself on a CPU machine (gpu_check.py --tiny: figures mean
# nothing). HOST_TORCH names the torch and torchvision to install when the host Python has none.
set -euo pipefail
OUT=${1:-gpu-run-$(date +%Y%m%d-%H%M)}
DEVICE=cuda
[[ "${2:-}" == "--device" ]] && DEVICE=${3:?--device cuda or cpu}
WHEELS=$(realpath "${WHEELS:-wheelhouse}")
CHECKOUT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT" && OUT=$(realpath "$OUT")
START=$SECONDS
say() { echo "[$((SECONDS - START)) s] $*" | tee -a "$OUT/run.log"; }

say "install into $OUT/venv from $WHEELS (no index)"
"${PYTHON:-python3}" -m venv --system-site-packages "$OUT/venv" > "$OUT/install.log" 2>&1
if ! "$OUT/venv/bin/python" -c "import torch, torchvision" 2>/dev/null; then
    # shellcheck disable=SC2086  # a list of requirements
    "$OUT/venv/bin/pip" install --quiet ${HOST_TORCH:-torch torchvision} >> "$OUT/install.log" 2>&1
fi
PIP_CONFIG_FILE=/dev/null "$OUT/venv/bin/pip" install --quiet --disable-pip-version-check \
    --no-index --find-links "$WHEELS" "glioma-suite[fid,gpu]" >> "$OUT/install.log" 2>&1
PYTHON_BIN="$OUT/venv/bin/python"
[[ "$DEVICE" == cpu ]] && export CUDA_VISIBLE_DEVICES=""
"$PYTHON_BIN" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    | tee -a "$OUT/run.log"

say "tiny-profile study on $DEVICE"
export GLIOMA_HOME="$OUT/home" GLIOMA_OFFLINE=1 GLIOMA_PROFILES="$OUT/profiles.json" TQDM_MININTERVAL=10
# the test suite's tiny profile, with FID on (the fid extra's network, on the device)
(cd "$CHECKOUT/tests" && "$PYTHON_BIN" -c "
import json, sys
from step_helpers import TINY_PROFILE
profile = {**TINY_PROFILE, 'score_gen': {**TINY_PROFILE['score_gen'], 'inception': 'auto'}}
json.dump({'tiny': profile}, open(sys.argv[1], 'w'), indent=1)" "$OUT/profiles.json")
(cd "$OUT" && "$OUT/venv/bin/glioma" main --profile tiny --n_boot 200) > "$OUT/study.log" 2>&1
"$PYTHON_BIN" - "$OUT/figures" >> "$OUT/study.log" 2>&1 <<'PY'
import sys
import mlflow
from glioma.tracking import configure_tracking
configure_tracking()
(main,) = mlflow.search_runs(search_all_experiments=True, output_format="list",
                             filter_string="tags.step = 'main'", max_results=1)
mlflow.artifacts.download_artifacts(run_id=main.info.run_id, dst_path=sys.argv[1])
print("main run", main.info.run_id, "figures in", sys.argv[1])
PY
tail -n 12 "$OUT/study.log" | tee -a "$OUT/run.log"

say "gpu_check.py on $DEVICE"
CHECK=(--device "$DEVICE" --seconds 20)
[[ "$DEVICE" == cpu ]] && CHECK+=(--tiny)
(cd "$CHECKOUT/benchmarks" && "$PYTHON_BIN" gpu_check.py "${CHECK[@]}") > "$OUT/gpu_check.log" 2>&1
tail -n 25 "$OUT/gpu_check.log" | tee -a "$OUT/run.log"
say "done: $OUT"
