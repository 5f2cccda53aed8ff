"""Translation task: searched encoder and decoder cells (the Evolved Transformer's space), BLEU and chrF.

The modules in ``PLUGIN_MODULES`` register the ``seq2seq`` ops, space and genotype, the translator
builder, the task, the fine-tuner, the hub facts and the transformers bridge (transformers itself is
imported only when a translator is decoded or handed off); :func:`zoo.plugins.load_plugins` imports
them. The package imports nothing itself, so the hub can import ``hub`` alone.
"""

PLUGIN_MODULES = ("finetune", "hub", "integrations", "model", "ops", "space", "task")
