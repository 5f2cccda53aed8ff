"""Object detection task (deepforest's tree crowns, COCO json, Pascal VOC).

The modules in ``PLUGIN_MODULES`` register the task, its ``detection`` space and genotype, the
detector builder, the fine-tuner, the hub facts and the MMDetection bridge (mmdet itself is imported
on use); :func:`zoo.plugins.load_plugins` imports them. The package imports nothing itself, so the
hub can import ``hub`` alone.
"""

PLUGIN_MODULES = ("finetune", "hub", "model", "space", "integrations.mmdet", "task")
