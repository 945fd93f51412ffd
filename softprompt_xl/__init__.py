"""softprompt_xl: cross-lingual parameter-efficient transfer on frozen multilingual seq2seq models."""

__version__ = "0.1.0"
