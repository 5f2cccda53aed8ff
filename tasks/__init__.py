"""The task plug-ins bundled with zoo: one package per task (``tasks/<name>/``).

Each package's ``__init__`` imports its modules, which register the task and what belongs to
it into the core's registries; :mod:`zoo.plugins` imports the packages. This ``__init__``
imports nothing, so loading one task does not load the others.
"""
