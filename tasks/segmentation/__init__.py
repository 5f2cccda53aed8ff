"""Semantic segmentation task (Auto-DeepLab: searched cell + network-level path).

Importing the package registers the task, its ``segmentation`` space and genotype, the
segmenter builder, the fine-tuner, the hub facts and the segmentation-models-pytorch bridge.
"""

from tasks.segmentation import finetune, hub, model, space  # noqa: F401  (register)
from tasks.segmentation.integrations import smp  # noqa: F401  (registers the "smp" bridge; smp itself is imported on use)
from tasks.segmentation.task import Segmentation

__all__ = ["Segmentation"]
