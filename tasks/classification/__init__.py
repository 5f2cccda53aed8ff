"""Image classification task (digits, Fashion-MNIST, ImageFolder).

Importing the package registers the task, its fine-tuner, its hub facts and the timm bridge.
"""

from tasks.classification import finetune, hub  # noqa: F401  (register)
from tasks.classification.integrations import timm  # noqa: F401  (registers the "timm" bridge; timm itself is imported on use)
from tasks.classification.task import Classification

__all__ = ["Classification"]
