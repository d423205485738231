"""The count of bytes that bench/delay_proxy.py keeps in its COUNT_FILE, read back by the sections that measure
what a run sent to its nodes (bench.py's ssh and bytes sections, fleet/section.py). The proxy rewrites the file
in place with a padded decimal number after each chunk; a proxy that never started leaves no file, which is 0.

(The proxy itself runs as an ssh ProxyCommand and imports nothing from here: this is the readers' side.)
"""


def read_count(path):
    """The number of bytes in PATH, 0 when the file is missing or still empty."""
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except FileNotFoundError:
        return 0
