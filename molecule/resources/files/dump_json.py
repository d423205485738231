#!/usr/bin/python3
"""Prints `containerd config dump` (the config containerd loads, imports merged, defaults filled) as JSON, for the
verify checks; Python's own TOML reader parses it, independent of the code under test."""
import json
import subprocess
import sys
import tomllib

out = subprocess.run(["containerd", "config", "dump"], capture_output=True, check=False)
if out.returncode != 0:
    sys.exit("containerd config dump failed: " + out.stderr.decode(errors="replace"))
json.dump(tomllib.loads(out.stdout.decode()), sys.stdout)
