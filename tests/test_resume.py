"""The checkpointing callback leaves the process as it found it once a stage is over."""

from __future__ import annotations

import gc
import signal
import weakref

import lightning as L
import torch
from torch.utils.data import DataLoader

from softprompt_xl.runtime.resume import Checkpointing


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_finished_stage_leaves_the_signal_handlers_and_its_model_behind(tmp_path):
    def before(signum, frame):
        pass

    previous = {s: signal.signal(s, before) for s in Checkpointing.SIGNALS}
    try:
        module = Tiny()
        trainer = L.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, callbacks=[Checkpointing(tmp_path, 1)], accelerator="cpu")
        trainer.fit(module, DataLoader(torch.randn(8, 4), batch_size=2))
        # Not the finished trainer's handler: it would swallow SIGTERM between stages and hold the stage's model.
        assert all(signal.getsignal(s) is before for s in Checkpointing.SIGNALS)
        gone = weakref.ref(module)
        del module, trainer
        gc.collect()
        assert gone() is None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
