"""Compare the results of a study: paper-style tables, transfer matrices and plots, optionally in W&B.

    python -m softprompt_xl.report [paths.root=DIR] [task=qa] [backbone=tiny] [data=toy] [experiment=NAME]

results.py  which results (store or W&B), filtered; what is missing or failed
tables.py   results into score, cost and transfer tables, grouped by the comparison spec each result records
backbones.py  the same configuration on several backbones, side by side
comparisons.py  confidence intervals and paired comparisons, from the predictions stored beside the results
resampling.py   the bootstrap interval and the approximate-randomisation test on per-example statistics
render.py   a table as Markdown, CSV and LaTeX       plots.py  figures (PNG)
write.py    the report directory, written at once    wandb_io.py  report.wandb=true
dashboard.py  report.dashboard=true: the sweep's dashboard in W&B (dashboard.json; `python -m
            softprompt_xl.report.dashboard push FILE` saves it)    run_files.py  the runs' W&B run files, read back
__main__.py the Hydra app (conf/report.yaml)
"""
