#!/usr/bin/env bash
# Long crash-safety soak (the short variants run in scripts/test.sh):
#
#   1. tests/clients/test_crash.py with VPNAAS_SOAK_ROUNDS SIGKILL rounds of the
#      server under concurrent Neutron + NSX writers (default 80; ~4 min)
#   2. tests/e2e/agent_crash.sh with CRASH_ROUNDS SIGKILL rounds of the agent
#      mid-apply against a real charon (default 40; needs root; skip: SOAK_SKIP_AGENT=1)
#
#   bash scripts/soak.sh                       # defaults
#   VPNAAS_SOAK_ROUNDS=500 CRASH_ROUNDS=200 CRASH_CONNS=200 bash scripts/soak.sh
#
# VPNAAS_CRASH_SEED / CRASH_SEED replay a run (each prints its seed). Uses the
# venv scripts/test.sh creates (.venv-test) and builds target/ci/vpnaas.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"
VENV="$ROOT/.venv-test"
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
[ -x "$VENV/bin/python" ] || { echo "soak: no $VENV; run bash scripts/test.sh once first" >&2; exit 1; }

export VPNAAS_SOAK_ROUNDS="${VPNAAS_SOAK_ROUNDS:-80}"
export CRASH_ROUNDS="${CRASH_ROUNDS:-40}"

echo "==> cargo build --profile ci -p vpnaas"
cargo build --profile ci -p vpnaas
export VPNAAS_BIN="$ROOT/target/ci/vpnaas"

echo "==> server crash soak: $VPNAAS_SOAK_ROUNDS SIGKILL rounds (tests/clients/test_crash.py)"
"$VENV/bin/python" -m pytest tests/clients/test_crash.py -q -s -p no:cacheprovider

if [ "${SOAK_SKIP_AGENT:-0}" = 1 ]; then
    echo "==> agent crash soak: skipped (SOAK_SKIP_AGENT=1)"
else
    echo "==> agent crash soak: $CRASH_ROUNDS SIGKILL rounds (tests/e2e/agent_crash.sh)"
    E2E_PYTHON="$VENV/bin/python" bash tests/e2e/agent_crash.sh
fi
echo "==> soak passed"
