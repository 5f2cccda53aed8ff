"""Search strategies, one per module, all registered in :data:`STRATEGIES`."""

from zoo.search.base import STRATEGIES, ConfigError, OneShotStrategy, Strategy

__all__ = ["STRATEGIES", "ConfigError", "OneShotStrategy", "Strategy"]
