# Shared settings for Weft's scripts: repository root, tool locations and the
# pinned CometBFT version. Source it; do not execute it.
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WEFT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEFT_TOOLS="$WEFT_ROOT/.tools"
# CometBFT v1.x speaks protobufs the Rust crates do not: keep this pinned.
COMETBFT_VERSION=0.38.25
COMETBFT_BIN="${WEFT_COMETBFT_BIN:-$WEFT_TOOLS/bin/cometbft}"

export WEFT_ROOT WEFT_TOOLS COMETBFT_VERSION COMETBFT_BIN

# Prints a message to stderr and exits non-zero.
weft_die() {
    echo "error: $*" >&2
    exit 1
}

# Helm renders and lints the charts under charts/ in the test suite (never
# against a cluster). Pinned like CometBFT: `go install ...@latest` would
# move under us.
HELM_VERSION=3.22.0
HELM_BIN="${WEFT_HELM_BIN:-$WEFT_TOOLS/bin/helm}"
export HELM_VERSION HELM_BIN
