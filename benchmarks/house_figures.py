"""The shape of the code, in figures: files and lines, import circles, upward imports between layers,
the longest functions and the most complex ones, repeated code.

    python benchmarks/house_figures.py [SRC]          # default src
    python benchmarks/house_figures.py --json [SRC]

Layers, from the bottom (a module may import its own layer and those below): the foundations (errors,
io, mapping, registry), then runtime and search.space, benchmark, data / models / evaluation, methods,
presets / config / builders, engine / features, experiment / report, sweeps, cli. An import of a higher
layer, also one inside a function, counts as upward. Complexity is McCabe's (ruff's C901 counting,
computed here with the standard library: 1 + each branch point)."""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

LAYERS = [
    {"glt", "glt.errors", "glt.io", "glt.mapping", "glt.registry", "glt.resources"},
    {"glt.runtime", "glt.search.space", "glt.search"},
    {"glt.benchmark"},
    {"glt.data", "glt.models", "glt.evaluation"},
    {"glt.methods"},
    {"glt.presets", "glt.config", "glt.builders"},
    {"glt.engine", "glt.features"},
    {"glt.experiment", "glt.report"},
    {"glt.sweeps"},
    {"glt.cli", "glt.__main__"},
]


def layer_of(module: str) -> int | None:
    best, depth = None, -1
    for i, names in enumerate(LAYERS):
        for n in names:
            if (module == n or module.startswith(n + ".")) and n.count(".") > depth:
                best, depth = i, n.count(".")
    return best


def modules(src: Path) -> dict[Path, str]:
    out = {}
    for p in sorted(src.rglob("*.py")):
        parts = p.relative_to(src).with_suffix("").parts
        out[p] = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return out


def imports(tree: ast.AST, me: str, is_pkg: bool) -> set[str]:
    pkg = me if is_pkg else me.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names |= {base} | {f"{base}.{a.name}" for a in node.names}
    return {n for n in names if n == "glt" or n.startswith("glt.")}


def complexity(fn: ast.AST) -> int:
    n = 1
    for node in ast.walk(fn):
        if isinstance(node, (ast.If, ast.For, ast.While, ast.AsyncFor, ast.IfExp, ast.ExceptHandler,
                             ast.With, ast.AsyncWith, ast.Assert, ast.comprehension)):
            n += isinstance(node, ast.comprehension) + (not isinstance(node, (ast.With, ast.AsyncWith, ast.comprehension)))
        elif isinstance(node, ast.BoolOp):
            n += len(node.values) - 1
        elif isinstance(node, ast.match_case):
            n += 1
    return n


def figures(src: Path) -> dict:
    mods = modules(src)
    known = set(mods.values())
    lines, funcs, upward = 0, [], []
    for path, me in mods.items():
        text = path.read_text(encoding="utf-8")
        lines += text.count("\n")
        tree = ast.parse(text)
        mine = layer_of(me)
        for name in imports(tree, me, path.name == "__init__.py"):
            target = name
            while target and target not in known:
                target = target.rpartition(".")[0]
            theirs = layer_of(target) if target else None
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{me} -> {target}")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                funcs.append((node.end_lineno - node.lineno + 1, complexity(node), f"{me}.{node.name}"))
    circles = subprocess.run([sys.executable, str(Path("/work/shared/tools/import_graph.py")), str(src)],
                             capture_output=True, text=True).stdout if Path("/work/shared/tools/import_graph.py").is_file() else ""
    longest = sorted(funcs, reverse=True)[:5]
    most_complex = sorted(funcs, key=lambda f: (f[1], f[0]), reverse=True)[:5]
    return {
        "files": len(mods), "lines": lines, "functions": len(funcs),
        "import_circles": circles.count("import circle:"),
        "upward_imports": sorted(set(upward)),
        "longest_functions": [f"{n} lines, complexity {c}: {name}" for n, c, name in longest],
        "most_complex_functions": [f"complexity {c}, {n} lines: {name}" for n, c, name in most_complex],
        "functions_over_50_lines": sum(n > 50 for n, _, _ in funcs),
        "functions_over_complexity_10": sum(c > 10 for _, c, _ in funcs),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", nargs="?", default="src")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    f = figures(Path(args.src))
    if args.json:
        print(json.dumps(f, indent=2))
        return
    for k, v in f.items():
        if isinstance(v, list):
            print(f"{k}: {len(v)}")
            for item in v:
                print(f"  {item}")
        else:
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
