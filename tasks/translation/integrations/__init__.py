"""Hand-offs of translators to the libraries users translate with (transformers).

The bridge is registered here and imports transformers only when called, so loading the task
package (every CLI run does) does not import it. ``import zoo`` calls it as soon as transformers
is imported (:mod:`zoo.plugins`' library hooks), which registers the model type with transformers'
``AutoConfig`` and ``AutoModelForSeq2SeqLM``.
"""

from __future__ import annotations

import sys
from typing import Any

from zoo.hub.facts import BRIDGES


@BRIDGES.register("transformers")
def register_transformers() -> Any:
    """Registers ``zoo-translation`` with transformers' Auto classes; returns the model class."""
    hf = sys.modules.get("tasks.translation.integrations.transformers")
    if hf is not None and not hasattr(hf, "register_auto"):
        return None  # that module is importing transformers right now; it registers itself when it has loaded
    from tasks.translation.integrations.transformers import ZooForTranslation, register_auto

    register_auto()
    return ZooForTranslation
