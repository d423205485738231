"""Stands in for the pip bootstrap script that ansible-test downloads from a host this machine cannot reach.

ansible-test creates each sanity venv without pip, then runs ``get-pip-<version>.py`` from
``~/.ansible/test/cache/get_pip_<version>.py`` with pip's own arguments (``pip==24.2`` and
``--no-setuptools --no-wheel``). This file, copied there by tests/sanity/run, does the same job with what the
Python already has: ensurepip puts its bundled pip into the venv, and that pip installs the requested packages
through the package index pip is configured with.
"""
import subprocess
import sys

# get-pip's own options, which `pip install` does not know: they only say not to add setuptools and wheel,
# and ensurepip adds no wheel (and no setuptools from Python 3.12; removed below on 3.11).
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

# In its own process: ensurepip points PIP_CONFIG_FILE at /dev/null in the environment it runs in, which would
# hide pip's configuration (the index and its certificates) from the install below.
subprocess.check_call([sys.executable, "-m", "ensurepip"])
args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
if "--no-setuptools" in sys.argv[1:]:
    # Python 3.11's ensurepip also installs setuptools; get-pip with --no-setuptools would not have.
    subprocess.call([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "setuptools"])
