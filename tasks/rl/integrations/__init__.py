"""Hand-offs of RL policies to the libraries users train with (stable-baselines3).

The bridge is registered here and imports stable-baselines3 only when called, so loading the
task package (every CLI run does) does not import it.
"""

from __future__ import annotations

from typing import Any

from zoo.hub.facts import BRIDGES


@BRIDGES.register("sb3")
def register_sb3() -> Any:
    """The SB3 policy class :class:`tasks.rl.integrations.sb3.ZooPolicy` (SB3 takes policy classes directly)."""
    from tasks.rl.integrations.sb3 import ZooPolicy

    return ZooPolicy
