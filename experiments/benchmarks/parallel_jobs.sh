#!/usr/bin/env bash
# Wall time of two jobs per stage one after another (hydra/launcher=local) and side by side
# (hydra/launcher=local_parallel, max_parallel=2): `+combo=lp_ta lang=sk,cs -m`, i.e. two language prompts, then
# two runs. Side by side it runs twice: with each job's share of the cores (the launcher's default) and with every
# job asking for all of them (OMP_NUM_THREADS=<cores>, as before the share: threads spin-wait on each other).
# Each run in a fresh paths.root (its own cache: every variant tokenises the same); the tiny backbone is the shipped
# one, never built. Extra arguments go to every command (e.g. task_stage.max_steps=100).
# Run from the checkout on an otherwise idle machine: bash experiments/benchmarks/parallel_jobs.sh
set -euo pipefail
unset SOFTPROMPT_XL_CACHE SOFTPROMPT_XL_TINY_PRETRAIN_STEPS SOFTPROMPT_XL_ROOT
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cores=$(python -c "from softprompt_xl.runtime.cluster import cores; print(cores())")
time_one() {  # $1 = name, then the launcher's overrides
  local name=$1 start end; shift
  start=$(date +%s.%N)
  python -m softprompt_xl.train +combo=lp_ta lang=sk,cs "paths.root=$work/$name" "$@" -m > "$work/$name.log" 2>&1 \
    || { tail -20 "$work/$name.log" >&2; exit 1; }
  end=$(date +%s.%N)
  printf '%-52s %7.1f s   (%s)\n' "$name" "$(python -c "print($end - $start)")" \
    "$(grep -ho 'Torch threads: [0-9]*' "$work/$name"/outputs/multirun/*/*/*.log | sort | uniq -c | xargs)"
}
echo "$cores cores"
(unset OMP_NUM_THREADS MKL_NUM_THREADS; time_one one-after-another hydra/launcher=local "$@")
(unset OMP_NUM_THREADS MKL_NUM_THREADS; time_one side-by-side-each-its-share hydra/launcher=local_parallel \
  hydra.launcher.max_parallel=2 "$@")
(export OMP_NUM_THREADS=$cores MKL_NUM_THREADS=$cores; time_one side-by-side-each-all-cores \
  hydra/launcher=local_parallel hydra.launcher.max_parallel=2 "$@")
