#!/usr/bin/env bash
# Mutation testing of the security-critical modules (issue: tests that prove what they claim).
# Installs the pinned cargo-mutants from crates.io when missing, then mutates each module and
# runs the unit tests that guard it. Every mutant that survives is either killed by a new test
# or listed in docs/mutants.md with why it is equivalent.
#
#   scripts/mutants.sh                 # every module below
#   scripts/mutants.sh host/src/text.rs
#
# It mutates the working tree in place (each mutant is restored afterwards), so run it on a
# clean checkout that nothing else is building; results go to mutants.out/.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=27.1.0
if ! cargo mutants --version 2>/dev/null | grep -q "$VERSION"; then
    cargo install cargo-mutants --locked --version "$VERSION"
fi

MODULES=(
    host/src/address.rs        # address classes (plugin DNS filter, loopback rule)
    host/src/text.rs           # the terminal sanitizer
    host/src/cli/terminal.rs   # host api's terminal escaper
    host/src/flow/pending.rs   # the pending-state seal
    host/src/store/seal.rs     # the record seal
    host/src/oauth2/response.rs # the token-response parser
)
if [ $# -gt 0 ]; then
    MODULES=("$@")
fi

args=()
for m in "${MODULES[@]}"; do
    args+=(--file "$m")
done
# Unit tests of the library and the program (the e2e suite is too slow to run per mutant).
cargo mutants --in-place --no-shuffle "${args[@]}" -- -p host --lib --bins
