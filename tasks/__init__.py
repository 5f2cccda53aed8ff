"""Task plug-ins, one per module or package, registered in :data:`TASKS`."""
from tasks.base import TASKS, DataError, Task

__all__ = ["TASKS", "DataError", "Task"]
