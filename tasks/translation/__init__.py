"""Translation task: searched encoder and decoder cells (the Evolved Transformer's space), BLEU and chrF.

Importing the package registers the ``seq2seq`` ops, space and genotype, the translator builder,
the task, the fine-tuner, the hub facts and the transformers bridge (transformers itself is
imported only when a translator is decoded or handed off).
"""

from tasks.translation import finetune, hub, integrations, model, ops, space  # noqa: F401  (register)
from tasks.translation.task import Translation

__all__ = ["Translation"]
