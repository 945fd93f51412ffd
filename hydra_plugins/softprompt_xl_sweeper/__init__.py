"""Hydra plugins of softprompt_xl (Hydra only loads plugins from the `hydra_plugins` namespace)."""
