#!/usr/bin/env python3
"""The module layering of src/: which top-level module may import which (`crate::<module>`),
tests included. Fails, naming the file and line, on an import the table does not allow, and
on a table with a cycle. Change the table on purpose, never to make a cycle.

    python3 scripts/check-layers.py [SRC_DIR]
"""
import os
import re
import sys

# Leaves first; each module lists every module it may import.
ALLOWED = {
    "domain": [],
    "error": [],
    "json_path": [],
    "request_id": [],
    "sse": [],
    "catalogue": ["domain"],
    "config": ["catalogue", "domain"],
    "telemetry": ["catalogue", "config"],
    "store": ["domain"],
    "keys": ["domain", "error", "store", "telemetry"],
    "limits": ["catalogue", "config", "domain", "error", "keys", "store"],
    "usage": ["catalogue", "config", "domain", "error", "json_path", "keys", "limits",
              "request_id", "store", "telemetry"],
    "upstream": ["config", "error", "json_path", "telemetry"],
    "openai": ["catalogue", "config", "error", "json_path", "upstream"],
    "relay": ["error", "openai", "sse", "upstream", "usage"],
    "server": ["config", "error", "request_id"],
    "state": ["config", "keys", "limits", "relay", "store", "upstream", "usage"],
    "routes": ["catalogue", "config", "error", "keys", "limits", "openai", "relay",
               "request_id", "server", "state", "store", "telemetry", "upstream", "usage"],
    "emulator": [],
    "app": ["config", "keys", "limits", "routes", "server", "state", "store", "telemetry",
            "upstream", "usage"],
    "cli": ["app", "catalogue", "config", "domain", "emulator", "keys", "limits", "store",
            "telemetry"],
}

IMPORT = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")


def cycle(table):
    """A cycle in the table, as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for dep in table.get(node, []):
            if state.get(dep) == "open":
                return path[path.index(dep):] + [dep] if dep in path else [node, dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in table:
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "src"
    problems = []
    loop = cycle(ALLOWED)
    if loop:
        problems.append("the layer table has a cycle: " + " -> ".join(loop))
    for root, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src)
            module = rel.split(os.sep)[0].removesuffix(".rs")
            if module in ("lib", "main"):
                continue
            if module not in ALLOWED:
                problems.append(f"{path}: module `{module}` is not in the layer table")
                continue
            with open(path, encoding="utf-8") as text:
                for number, line in enumerate(text, 1):
                    for used in IMPORT.findall(line):
                        if used != module and used not in ALLOWED[module]:
                            problems.append(
                                f"{path}:{number}: `{module}` may not import `{used}`"
                            )
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"layer check: {len(problems)} problem(s); see scripts/check-layers.py",
              file=sys.stderr)
        return 1
    print("layer check: every import follows the table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
