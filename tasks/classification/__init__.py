"""Image classification task (digits, Fashion-MNIST, ImageFolder)."""
from tasks.classification.task import Classification

__all__ = ["Classification"]
