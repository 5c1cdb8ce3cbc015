#!/bin/bash
# The official WebAssembly 2.0 core test suite (wast2json output) through `shoal spec-test`.
# Fails on any failed command; skips (77) when the suite is not there.
set -u
dir="${SHOAL_SPEC_DIR:-}/json"
if [ -z "${SHOAL_SPEC_DIR:-}" ] || [ ! -d "$dir" ]; then
    echo "skip: spec suite not found (SHOAL_SPEC_DIR='${SHOAL_SPEC_DIR:-}'; expected \$SHOAL_SPEC_DIR/json/*.json)"
    exit 77
fi
exec "$SHOAL" spec-test "$dir"
