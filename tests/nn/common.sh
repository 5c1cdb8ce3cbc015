# Shared by the tests/nn scripts: locate the CLI, guests and models; skip (77) when something is absent.
set -u
: "${SHOAL:?SHOAL is not set (run through ctest)}"
: "${SHOAL_GUEST_DIR:?}"
M=${SHOAL_MODELS:-}/stories260K/stories260K.bin
M2=${SHOAL_MODELS:-}/aidreams260K/aidreams260K.bin
if [ ! -f "$M" ] || [ ! -f "$M2" ]; then
    echo "skip: the stories260K / aidreams260K models are not in SHOAL_MODELS (${SHOAL_MODELS:-unset})"
    exit 77
fi
need_guest() {
    for g in "$@"; do
        if [ ! -f "$SHOAL_GUEST_DIR/$g.wasm" ]; then
            echo "skip: guest $g.wasm was not built (no clang + wasi-libc)"
            exit 77
        fi
    done
}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
check() { # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        echo "ok   $1"
    else
        echo "FAIL $1"
        echo "  expected: $2"
        echo "  actual:   $3"
        fails=$((fails + 1))
    fi
}
