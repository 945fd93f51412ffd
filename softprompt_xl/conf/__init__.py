"""The Hydra config tree, a package so that Hydra finds it by module (pkg://softprompt_xl.conf), installed or not."""
