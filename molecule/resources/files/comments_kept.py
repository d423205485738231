#!/usr/bin/python3
"""Checks that every line of BEFORE that carries a comment is in NOW, unchanged and in the same order (lines
added in between are fine). Prints a JSON report; exits 0 either way (the play asserts on the report).

usage: comments_kept.py BEFORE NOW"""
import json
import sys


def commented_lines(text):
    return [line.strip() for line in text.splitlines() if "#" in line]


def main(before_path, now_path):
    with open(before_path, encoding="utf-8") as f:
        wanted = commented_lines(f.read())
    with open(now_path, encoding="utf-8") as f:
        now = [line.strip() for line in f.read().splitlines()]
    # Walk NOW once, ticking off the wanted lines in order.
    i = 0
    for line in now:
        if i < len(wanted) and line == wanted[i]:
            i += 1
    json.dump({"commented": len(wanted), "kept_in_order": i, "first_missing": wanted[i] if i < len(wanted) else None},
              sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
