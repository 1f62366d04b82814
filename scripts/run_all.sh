#!/usr/bin/env bash
# The whole sweep in one command: zero-shot CLIP, CoOp at 1/2/4 shots x 3 seeds, figure, report.
#   bash scripts/run_all.sh --demo      offline demo (synthetic data, random weights), results/demo/
#   bash scripts/run_all.sh             the real run (needs ~/.cache/clip/RN50.pt and data/caltech-101)
# Every option is passed to scripts/run_all.py; see: bash scripts/run_all.sh --help
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-$(command -v python || command -v python3)}"
exec "$python" "$here/run_all.py" "$@"
