"""Object detection task (deepforest's tree crowns, COCO json, Pascal VOC)."""
from tasks.detection.task import Detection

__all__ = ["Detection"]
