"""Semantic segmentation task (Auto-DeepLab: searched cell + network-level path).

Importing the package registers the task, its ``segmentation`` space and genotype, the
segmenter builder, the fine-tuner, the hub facts and the segmentation-models-pytorch bridge.
"""

from tasks.segmentation import model, space  # noqa: F401  (register)
from tasks.segmentation.task import Segmentation

__all__ = ["Segmentation"]
