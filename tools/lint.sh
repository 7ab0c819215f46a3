#!/usr/bin/env bash
# The lint gate: every hook of .pre-commit-config.yaml (flake8, isort, yapf
# and pre-commit-hooks' checks, settings in setup.cfg) over every tracked
# file. Exits non-zero, with the diff, when the tree is not clean; the fixers
# leave their fixes in the tree, so running it again after `git add` passes.
#
#   bash tools/lint.sh          # the whole tree (what .ci/run runs)
#   pre-commit install          # the same hooks on each `git commit`
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python}"
exec "$PY" -m pre_commit run --all-files --show-diff-on-failure --color never
