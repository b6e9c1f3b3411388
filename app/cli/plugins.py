"""``python main.py plugins list`` and ``python main.py plugins check PATH``.

``list`` shows every discovered plugin (repository, user folder, entry points) and any whose
manifest is broken, with the reason. ``check`` validates one plugin folder: manifest, weights
hash, strict load, and a fake-tensor run through the network (exit status 1 if any step fails).
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="plugins_command", required=True)
    list_parser = sub.add_parser("list", help="list discovered plugins")
    list_parser.add_argument("--verbose", "-v", action="store_true", help="print each model card")
    check_parser = sub.add_parser("check", help="validate a plugin folder (manifest, hash, contract)")
    check_parser.add_argument("path", help="plugin folder or manifest file (or a discovered plugin name)")


def _list(args: argparse.Namespace) -> int:
    from app.plugins.discovery import discover_plugins, user_plugin_dirs

    plugins = discover_plugins()
    if not plugins:
        folders = ", ".join(str(p) for p in user_plugin_dirs())
        print(f"no plugins found (looked in the repository's plugins/, {folders}, and entry points)")
        return 0
    for plugin in plugins:
        m = plugin.manifest
        if m is None:
            print(f"{plugin.name:24s} BROKEN  [{plugin.source}] {plugin.folder}")
            for line in plugin.error.splitlines():
                print(f"    {line}")
            continue
        where = f"{m.dimensionality}" + (f" {m.plane}" if m.plane else "")
        inputs = "/".join(m.input_modalities) or "noise"
        print(
            f"{m.name:24s} {m.version:8s} {m.task:18s} {inputs}->{m.output_modality} {where}  [{plugin.source}] {plugin.folder}"
        )
        if args.verbose:
            print("    " + m.model_card_text().replace("\n", "\n    "))
    return 0


def _check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.plugins.contract import check_plugin

    target = args.path
    if not Path(target).exists():
        from app.plugins.discovery import find_plugin
        from app.plugins.errors import PluginError

        try:
            target = find_plugin(target)
        except PluginError as error:
            print(f"FAIL  {error}")
            return 1
    steps = check_plugin(target)
    for step in steps:
        detail = step.detail.replace("\n", "\n      ")
        print(f"{'ok  ' if step.passed else 'FAIL'}  {step.name}: {detail}")
    passed = all(step.passed for step in steps)
    print("plugin OK" if passed else "plugin check FAILED", file=sys.stderr)
    return 0 if passed else 1


def run(args: argparse.Namespace) -> int:
    return _list(args) if args.plugins_command == "list" else _check(args)
