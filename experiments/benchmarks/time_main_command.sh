#!/usr/bin/env bash
# Wall time of the everyday command, cold (empty paths.root: loads the shipped tiny backbone, trains the
# language prompt) and warm (both reused), 3 runs each; prints every time and the medians.
# Run from the checkout: bash experiments/benchmarks/time_main_command.sh
set -euo pipefail
runs=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
time_one() {  # $1 = paths.root
  local start end
  start=$(date +%s.%N)
  SOFTPROMPT_XL_ROOT="$1" python -m softprompt_xl.train +combo=lp_ta lang=sk -m > "$work/log" 2>&1 || { tail -20 "$work/log" >&2; exit 1; }
  end=$(date +%s.%N)
  python -c "print(round($end - $start, 1))"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
cold=(); warm=()
for i in $(seq "$runs"); do
  root="$work/root$i"
  cold+=("$(time_one "$root")")
  warm+=("$(time_one "$root")")
done
echo "cold runs (s): ${cold[*]}  median: $(printf '%s\n' "${cold[@]}" | median)"
echo "warm runs (s): ${warm[*]}  median: $(printf '%s\n' "${warm[@]}" | median)"
grep -o '\[lp_ta sk qa\].*' "$work/log" | head -1
