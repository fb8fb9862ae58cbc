#!/usr/bin/env bash
# Build the wheel of the previous release that tests/reliability/test_rolling_upgrade.py
# runs beside the new code: tests/reliability/previous/build.sh COMMIT
# The wheel's version is the project's version with the commit as its local part
# (0.1.0+gfda2b05), so an installed copy says which commit it is; COMMIT records the
# full hash. Needs setuptools in the running Python, or the network for pip's build
# isolation; the test itself installs the wheel offline.
set -euo pipefail
commit="$(git rev-parse --verify "${1:?usage: $0 COMMIT}^{commit}")"
short="$(git rev-parse --short=7 "$commit")"
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git archive "$commit" | tar -x -C "$work"
sed -i -E "s/^version = \"([^\"+]+)\"/version = \"\1+g$short\"/" "$work/pyproject.toml"
grep -q "^version = \".*+g$short\"" "$work/pyproject.toml" \
    || { echo "no version line to stamp in $commit's pyproject.toml" >&2; exit 1; }
rm -f "$here"/*.whl
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$here" "$work"
echo "$commit" > "$here/COMMIT"
ls -l "$here"/*.whl
