#!/usr/bin/env bash
# The first run of the README's first command as a new user meets it: a fresh clone of this checkout's HEAD, a
# fresh venv, nothing cached but pip's wheels. Times the install and the everyday command apart, and prints both.
# The command is read from the README (its line after "# 1."), so this measures what the README says.
# PIP_INSTALL='pip install --no-compile -e .' times another install command with the same run; RUN_ARGS='backbone=X'
# appends arguments to the everyday command (RUN_ARGS=backbone=tiny_decoder: the decoder-only default's first run).
# Run from the checkout: bash experiments/benchmarks/first_run.sh
set -euo pipefail
checkout=$(cd "$(dirname "$0")/../.." && pwd)
readme_command=$(awk '/^# 1\./ {found=1} found && /^pip install/ {print; exit}' "$checkout/README.md")
[ -n "$readme_command" ] || { echo "no '# 1.' command found in $checkout/README.md" >&2; exit 1; }
install=${PIP_INSTALL:-${readme_command%% && *}}
everyday=${readme_command#* && }${RUN_ARGS:+ $RUN_ARGS}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$checkout" "$work/clone"
python -m venv "$work/venv"
cd "$work/clone"
unset SOFTPROMPT_XL_CACHE SOFTPROMPT_XL_ROOT SOFTPROMPT_XL_TINY_PRETRAIN_STEPS SOFTPROMPT_XL_TEST_CACHE
now() { date +%s.%N; }
start=$(now)
(source "$work/venv/bin/activate" && eval "$install") > "$work/install.log" 2>&1 || { tail -20 "$work/install.log" >&2; exit 1; }
installed=$(now)
(source "$work/venv/bin/activate" && eval "$everyday") > "$work/run.log" 2>&1 || { tail -20 "$work/run.log" >&2; exit 1; }
done=$(now)
python - "$start" "$installed" "$done" "$install" "$everyday" <<'EOF'
import sys
start, installed, done = map(float, sys.argv[1:4])
print(f"install ({sys.argv[4]}): {installed - start:.1f} s")
print(f"run ({sys.argv[5]}): {done - installed:.1f} s")
print(f"first run in all: {done - start:.1f} s")
EOF
grep -o '\[lp_ta sk qa\].*' "$work/run.log" | head -1
