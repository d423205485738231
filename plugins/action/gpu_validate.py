# Copyright: contributors to gpunode.nvidia. Apache-2.0.
"""Action plugin for the gpu_validate binary module: runs it in one round trip from a per-user cache on the node
(see plugins/plugin_utils/binary_cache.py); Ansible picks it by the module's name."""
from __future__ import annotations

try:  # packaged in the gpunode.nvidia collection
    from ansible_collections.gpunode.nvidia.plugins.plugin_utils.binary_cache import CachedBinaryAction
except ImportError:  # a plain clone (action_plugins = plugins/action): load ../plugin_utils/ once per process
    import importlib.util
    import os
    import sys

    _NAME = "gpunode_nvidia_binary_cache"
    if _NAME not in sys.modules:
        _PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "plugin_utils", "binary_cache.py")
        _spec = importlib.util.spec_from_file_location(_NAME, _PATH)
        sys.modules[_NAME] = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(sys.modules[_NAME])
    CachedBinaryAction = sys.modules[_NAME].CachedBinaryAction


class ActionModule(CachedBinaryAction):
    """Runs gpu_validate through the node's module cache (all behaviour is in CachedBinaryAction)."""
