# Copyright: contributors to gpunode.nvidia. Apache-2.0.
"""Action plugin for the containerd_runtime binary module: runs it in one round trip from a per-user cache on the node
(see binary_cache.py); Ansible picks it by the module's name."""
from __future__ import annotations

try:  # packaged in the gpunode.nvidia collection
    from ansible_collections.gpunode.nvidia.plugins.action.binary_cache import CachedBinaryAction
except ImportError:  # used from a plain action_plugins folder: load the sibling file once per process
    import importlib.util
    import os
    import sys

    _NAME = "gpunode_nvidia_binary_cache"
    if _NAME not in sys.modules:
        _spec = importlib.util.spec_from_file_location(_NAME, os.path.join(os.path.dirname(__file__), "binary_cache.py"))
        sys.modules[_NAME] = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(sys.modules[_NAME])
    CachedBinaryAction = sys.modules[_NAME].CachedBinaryAction


class ActionModule(CachedBinaryAction):
    pass
