"""Semantic segmentation task (Auto-DeepLab: searched cell + network-level path).

The modules in ``PLUGIN_MODULES`` register the task, its ``segmentation`` space and genotype, the
segmenter builder, the fine-tuner, the hub facts and the segmentation-models-pytorch bridge (smp
itself is imported on use); :func:`zoo.plugins.load_plugins` imports them. The package imports
nothing itself, so the hub can import ``hub`` alone.
"""

PLUGIN_MODULES = ("finetune", "hub", "model", "space", "integrations.smp", "task")
