# Shortcuts for the README's commands. Everything written goes under runs/ (paths.root).
.PHONY: install demo report test test-e2e test-all test-slurm slurm-up slurm-down toy-data clean

install:
	pip install -e '.[test]'

demo: install  ## the everyday command on the embedded default (tiny mT5, bundled data, offline)
	python -m softprompt_xl.train +combo=lp_ta lang=sk -m

report:  ## tables, transfer matrices and plots of the finished results under runs/reports/all/
	python -m softprompt_xl.report

test: install  ## the default suite (the e2e, slow and SLURM tests excluded)
	python -m pytest

test-e2e: install  ## the `e2e` tests: end-to-end runs of half a minute or more each (CI runs them after the default suite)
	python -m pytest -m e2e

test-all: install  ## every test: the default suite, the e2e, slow and SLURM ones (SLURM's skipped without a cluster)
	python -m pytest -m ''

slurm-up:  ## a real single-node SLURM cluster on this machine (root; Debian's packages: `.ci/slurm-cluster install`)
	.ci/slurm-cluster up

slurm-down:  ## stop exactly the daemons slurm-up started (cancels the cluster's jobs first)
	.ci/slurm-cluster down

test-slurm: install  ## the `slurm` tests: sweeps through hydra/launcher=slurm on the single-node cluster
	python -m pytest -m slurm

toy-data:  ## regenerate the bundled toy data (deterministic)
	python -m softprompt_xl.toy.make_toy

clean:  ## delete everything the framework wrote (outputs, store, caches, W&B files)
	rm -rf runs
