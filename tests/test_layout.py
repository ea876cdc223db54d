"""The package's dependency rule (docs/layout.md), read from the imports.

A module of ``convmlp_mm`` may import, of this project, only its own layer,
the layers below it and the leaves; no module imports one of ours inside a
function (the way a cycle is usually dodged); ``tools/`` import only the
public names of a subpackage (its ``__all__``)."""
import ast
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

from helpers import REPO

PACKAGE = osp.join(REPO, 'convmlp_mm')
# Importable by every layer.
LEAVES = {'errors', 'version', 'install_check'}
# What each lower layer may import; the upper ones (apis, deploy, analysis,
# benchmark, cli) and the package's __init__ may import anything.
ALLOWED = {
    'checkpoint': set(),
    'models': {'checkpoint'},
    'datasets': {'checkpoint'},
    'config': {'checkpoint', 'models', 'datasets'},
    'engine': {'checkpoint', 'models', 'datasets', 'config'},
}
UPPER = {'apis', 'deploy', 'analysis', 'benchmark', 'cli'}
# Modules (not packages) whose __all__ the tools may import from.
PUBLIC_MODULES = ('convmlp_mm.cli', 'convmlp_mm.errors')

Import = Tuple[str, int, bool, List[str]]  # module, line, in function, names


def _module_name(path: str) -> str:
    rel = osp.relpath(path, REPO)[:-3].replace(os.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def imports_of(source: str, module: str, is_package: bool) -> List[Import]:
    """The project imports in ``source``: (absolute module, line, whether
    inside a function, imported names)."""
    found = []
    package = module if is_package else module.rpartition('.')[0]

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append((alias.name, child.lineno, in_function, []))
            elif isinstance(child, ast.ImportFrom):
                target = child.module or ''
                if child.level:
                    base = package.split('.')
                    base = base[:len(base) - (child.level - 1)]
                    target = '.'.join(base + ([target] if target else []))
                names = [a.name for a in child.names]
                found.append((target, child.lineno, in_function, names))
            visit(child, inner)

    visit(ast.parse(source), False)
    return [imp for imp in found
            if imp[0] == 'convmlp_mm' or imp[0].startswith('convmlp_mm.')]


def layer_of(module: str) -> Optional[str]:
    """``convmlp_mm.config.walk`` -> ``config``; None for the package."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else None


def violations(source: str, module: str, is_package: bool = False
               ) -> List[str]:
    """What in ``source`` breaks the rule, one line each."""
    own = layer_of(module)
    problems = []
    for target, line, in_function, names in imports_of(source, module,
                                                       is_package):
        targets = [target]
        if target == 'convmlp_mm':  # from convmlp_mm import engine, ...
            targets = [f'convmlp_mm.{n}' for n in names] or [target]
        for t in targets:
            theirs = layer_of(t)
            where = f'{module}:{line} imports {t}'
            if in_function:
                problems.append(f'{where} inside a function')
            if own is None or own in UPPER or theirs is None or \
                    theirs in LEAVES or theirs == own:
                continue
            if own in LEAVES or theirs not in ALLOWED.get(own, set()):
                problems.append(f'{where}: layer {own!r} may not import '
                                f'{theirs!r}')
    return problems


def package_modules() -> Iterator[Tuple[str, str, bool]]:
    for folder, dirs, files in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if not d.startswith(('.', '__'))]
        for name in sorted(files):
            if name.endswith('.py'):
                path = osp.join(folder, name)
                yield path, _module_name(path), name == '__init__.py'


def public_names() -> Dict[str, set]:
    """``__all__`` of the package and of each subpackage, read statically."""
    names = {}
    for path, module, is_package in package_modules():
        if not (is_package or module in PUBLIC_MODULES):
            continue
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                    getattr(t, 'id', None) == '__all__'
                    for t in node.targets):
                names[module] = set(ast.literal_eval(node.value))
    return names


def test_the_checker_finds_what_it_looks_for():
    """The rule is not vacuous: each kind of breach is reported."""
    assert violations('from convmlp_mm.engine import build_runner\n',
                      'convmlp_mm.models.backbones.convmlp')
    assert violations('from ...config.walk import x\n',
                      'convmlp_mm.datasets.checks.coco')
    assert violations('def f():\n    from convmlp_mm.config import x\n',
                      'convmlp_mm.apis.inference')
    assert violations('from convmlp_mm import engine\n',
                      'convmlp_mm.checkpoint.fit')
    assert not violations('from convmlp_mm.checkpoint import x\n'
                          'from convmlp_mm.errors import ConfigError\n',
                          'convmlp_mm.models.loading')
    assert not violations('from convmlp_mm.engine import x\n',
                          'convmlp_mm.apis.inference')


def test_package_imports_follow_the_layers():
    problems = []
    for path, module, is_package in package_modules():
        with open(path) as f:
            problems += violations(f.read(), module, is_package)
    assert not problems, '\n'.join(problems)


def tool_files() -> List[str]:
    tools = []
    for folder, dirs, files in os.walk(osp.join(REPO, 'tools')):
        dirs[:] = [d for d in dirs if not d.startswith(('.', '__'))]
        tools += [osp.join(folder, n) for n in files if n.endswith('.py')]
    return sorted(tools)


@pytest.mark.parametrize('tool', tool_files(),
                         ids=lambda p: osp.relpath(p, REPO))
def test_tools_import_only_public_names(tool):
    public = public_names()
    with open(tool) as f:
        found = imports_of(f.read(), 'tools.script', False)
    problems = []
    for target, line, _, names in found:
        allowed = public.get(target)
        if allowed is None:
            problems.append(f'line {line}: {target} is not a public module '
                            '(import from its subpackage)')
            continue
        problems += [f'line {line}: {target}.{n} is not in its __all__'
                     for n in names if n not in allowed]
    assert not problems, '\n'.join(problems)
