"""Soft prompt: trainable vectors put before the input embeddings (T5: the encoder's; a decoder-only model: its
only stack's, model/family.py); T5's decoder is untouched.

Written here rather than taken from `adapters`, which has no prompt tuning for (m)T5 and drops any
prompt that is not first in a Stack.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from softprompt_xl.model.components.base import Component


class SoftPrompt(Component):
    kind = "prompt"

    def attach(self, model, tokenizer, init_text):
        weight = model.get_input_embeddings().weight.detach()
        n = int(self.config["n_tokens"])
        if self.config.get("init", "text") == "text" and init_text:
            ids = tokenizer(init_text, add_special_tokens=False).input_ids
            ids = (ids * math.ceil(n / len(ids)))[:n]  # tiled to length n, as in the paper
            # Through the embedding module, as the input's own tokens are embedded (Gemma's scales them).
            with torch.no_grad():
                init = model.get_input_embeddings()(torch.tensor(ids, device=weight.device)).detach().clone()
        else:
            generator = torch.Generator().manual_seed(0)
            init = torch.randn(n, weight.shape[1], generator=generator) * weight.float().std()
        self.embedding = nn.Parameter(init.to(device=weight.device, dtype=weight.dtype))

    def detach(self, model):
        pass  # nothing was hooked into the model: the prefix is applied by the composed model

    def owned_parameters(self):
        return {"embedding": self.embedding}

    def input_prefix(self, batch_size):
        return self.embedding.unsqueeze(0).expand(batch_size, -1, -1)
