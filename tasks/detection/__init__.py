"""Object detection task (deepforest's tree crowns, COCO json, Pascal VOC).

Importing the package registers the task, its ``detection`` space and genotype, the detector
builder, the fine-tuner, the hub facts and the MMDetection bridge.
"""

from tasks.detection import finetune, hub, model, space  # noqa: F401  (register)
from tasks.detection.integrations import mmdet  # noqa: F401  (registers the "mmdet" bridge; mmdet itself is imported on use)
from tasks.detection.task import Detection

__all__ = ["Detection"]
