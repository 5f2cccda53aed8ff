"""Image classification task (digits, Fashion-MNIST, ImageFolder).

The modules in ``PLUGIN_MODULES`` register the task, the cell network's builder, its fine-tuner,
its hub facts and the timm bridge (timm itself is imported on use); :func:`zoo.plugins.load_plugins`
imports them. The package imports nothing itself, so the hub can import ``hub`` alone.
"""

PLUGIN_MODULES = ("finetune", "hub", "model", "integrations.timm", "task")
