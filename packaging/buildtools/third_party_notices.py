"""The third-party notice of the frozen app, generated from what the bundle actually contains.

Every bundled file is traced to where it came from, from the PyInstaller analysis (the
manifest ``bundle_trim.write_manifest`` writes: each module, binary and data file with its
source path):

- a Python distribution (its installed RECORD lists the file): licence from the distribution's
  metadata (License-Expression, else the License field or the classifiers, else the reviewed
  entry in licence_policy.toml), texts from its licence files;
- a Debian package (``dpkg -S``): the reviewed licence of the library in licence_policy.toml,
  text from /usr/share/doc/PACKAGE/copyright;
- the Python runtime (the interpreter's installation): PSF-2.0, its LICENSE.txt;
- SynthView's own files (the repository).

The build fails when a component's licence is not in the policy's allow-list, when a Debian
package has no reviewed entry, or when a bundled file's origin is unknown (Linux). The notice
(THIRD-PARTY-NOTICES.txt, every component with its licence texts, and the common licence texts
they refer to, e.g. the LGPL-3.0 and GPL-3.0 of Qt) ships in the bundle and as the .deb's
/usr/share/doc/synthview/copyright.

    python packaging/buildtools/third_party_notices.py --manifest build/pyinstaller/synthview/bundle-manifest.json OUT_DIR
    python packaging/buildtools/third_party_notices.py --installed OUT_DIR   # every distribution of this environment
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
POLICY_PATH = HERE.parent / "licence_policy.toml"
COMMON_TEXTS_DIR = HERE.parent / "licence_texts"
LICENCE_FILE = re.compile(r"(LICEN[CS]E|COPYING|NOTICE|COPYRIGHT)", re.IGNORECASE)
COMMON_LICENCE_REFERENCE = re.compile(r"/usr/share/common-licenses/([A-Za-z0-9.+_-]+)")
SPDX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*(?: WITH [A-Za-z0-9.+-]+)?$")
NOTICE_NAME = "THIRD-PARTY-NOTICES.txt"
SUMMARY_NAME = "third-party-components.json"


@dataclass(frozen=True)
class Policy:
    allowed: frozenset[str]
    aliases: dict[str, str]
    classifiers: dict[str, str]
    python_overrides: dict[str, str]
    system_packages: dict[str, str]
    extra_texts: dict[str, list[str]]  # licence id -> common texts it requires (LGPL-3.0 -> GPL-3)


def load_policy(path: Path = POLICY_PATH) -> Policy:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return Policy(
        allowed=frozenset(data["allowed"]),
        aliases=data.get("aliases", {}),
        classifiers=data.get("classifiers", {}),
        python_overrides={_normal_name(k): v for k, v in data.get("python_overrides", {}).items()},
        system_packages=data.get("system_packages", {}),
        extra_texts=data.get("extra_texts", {}),
    )


@dataclass
class Component:
    name: str
    version: str
    kind: str  # "python", "system", "runtime"
    licence: str
    texts: list[tuple[str, str]] = field(default_factory=list)  # (title, text)
    files: int = 0


def _normal_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ---- licence expressions -------------------------------------------------------------------


def _tokens(expression: str) -> list[str]:
    return [t for t in re.split(r"(\(|\)|\s+OR\s+|\s+AND\s+)", expression) if t and t.strip()]


def licence_allowed(expression: str, allowed: frozenset[str]) -> bool:
    """Whether an SPDX-style expression is acceptable: A OR B needs one side, A AND B both,
    an identifier (``X WITH exception`` counts as one) must be in ``allowed``."""
    tokens = [t.strip() for t in _tokens(expression)]
    position = 0

    def disjunction() -> bool:
        nonlocal position
        value = conjunction()
        while position < len(tokens) and tokens[position] == "OR":
            position += 1
            value = conjunction() or value
        return value

    def conjunction() -> bool:
        nonlocal position
        value = atom()
        while position < len(tokens) and tokens[position] == "AND":
            position += 1
            value = atom() and value
        return value

    def atom() -> bool:
        nonlocal position
        if position >= len(tokens):
            return False
        token = tokens[position]
        position += 1
        if token == "(":
            value = disjunction()
            position += 1  # ")"
            return value
        return token in allowed

    try:
        result = disjunction()
    except IndexError:
        return False
    return result and position == len(tokens)


def distribution_licence(distribution: importlib.metadata.Distribution, policy: Policy) -> str:
    """The distribution's licence as an SPDX-style expression ("UNKNOWN" when none is found)."""
    metadata = distribution.metadata
    override = policy.python_overrides.get(_normal_name(metadata["Name"]))
    if override:
        return override
    expression = (metadata.get("License-Expression") or "").strip()
    if expression:
        return expression
    field_text = (metadata.get("License") or "").strip()
    if field_text and "\n" not in field_text and len(field_text) < 80:
        mapped = policy.aliases.get(field_text, field_text)
        if all(t.strip() in ("(", ")", "OR", "AND") or SPDX_ID.match(t.strip()) for t in _tokens(mapped)):
            return mapped
    from_classifiers = sorted(
        {
            policy.classifiers.get(c.split("::")[-1].strip(), "UNKNOWN(" + c.split("::")[-1].strip() + ")")
            for c in metadata.get_all("Classifier") or []
            if c.startswith("License ::") and "OSI Approved" != c.split("::")[-1].strip()
        }
    )
    if from_classifiers:
        return " OR ".join(from_classifiers)  # several licence classifiers: a choice
    return policy.aliases.get(field_text, "UNKNOWN") if field_text else "UNKNOWN"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def python_component(distribution: importlib.metadata.Distribution, policy: Policy, files: int = 0) -> Component:
    texts = []
    for file in distribution.files or []:
        if LICENCE_FILE.search(file.name) and not file.name.endswith((".py", ".pyc", ".so", ".pyd")):
            text = _read(Path(distribution.locate_file(file)))
            if text.strip():
                texts.append((str(file), text))
    reviewed = COMMON_TEXTS_DIR / f"{_normal_name(distribution.metadata['Name'])}.txt"
    if not texts and reviewed.is_file():  # the wheel ships none: a reviewed copy (licence_texts/)
        texts.append((f"packaging/licence_texts/{reviewed.name}", _read(reviewed)))
    return Component(
        name=distribution.metadata["Name"],
        version=distribution.version,
        kind="python",
        licence=distribution_licence(distribution, policy),
        texts=texts,
        files=files,
    )


# ---- origins of bundled files --------------------------------------------------------------


def distribution_files() -> dict[str, importlib.metadata.Distribution]:
    """Resolved path of every file an installed distribution's RECORD lists -> distribution."""
    owners = {}
    for distribution in importlib.metadata.distributions():
        for file in distribution.files or []:
            try:
                owners[str(Path(distribution.locate_file(file)).resolve())] = distribution
            except OSError:
                continue
    return owners


def debian_packages(paths: Iterable[str]) -> dict[str, str]:
    """path -> Debian package owning it (``dpkg -S``, one call; /lib and /usr/lib both tried,
    as merged-/usr systems register either)."""
    if shutil.which("dpkg") is None:
        return {}
    candidates: dict[str, str] = {}  # candidate path -> original path
    for path in sorted(set(paths)):
        for candidate in (path, str(Path(path).resolve())):
            candidates.setdefault(candidate, path)
            if candidate.startswith("/usr/lib/"):
                candidates.setdefault(candidate[len("/usr") :], path)
            elif candidate.startswith("/lib/"):
                candidates.setdefault("/usr" + candidate, path)
    if not candidates:
        return {}
    done = subprocess.run(["dpkg", "-S", *candidates], capture_output=True, text=True)
    owners = {}
    for line in done.stdout.splitlines():  # "libglib2.0-0:amd64: /usr/lib/x86_64-linux-gnu/..."
        package, _, owned = line.rpartition(": ")
        if owned in candidates and package and "," not in package:
            owners.setdefault(candidates[owned], package.split(":")[0].strip())
    return owners


def debian_version(package: str) -> str:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return done.stdout.strip() or "?"


def system_component(package: str, policy: Policy, files: int) -> Component:
    base = package.split(":")[0]
    copyright_file = Path("/usr/share/doc") / base / "copyright"
    texts = [(str(copyright_file), _read(copyright_file))] if copyright_file.is_file() else []
    return Component(
        name=base,
        version=debian_version(package),
        kind="system",
        licence=policy.system_packages.get(base, "UNREVIEWED"),
        texts=texts,
        files=files,
    )


def runtime_component(files: int) -> Component:
    licence_file = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "LICENSE.txt"
    if not licence_file.is_file():
        licence_file = Path(sys.base_prefix) / "LICENSE.txt"  # Windows layout
    texts = [(licence_file.name, _read(licence_file))] if licence_file.is_file() else []
    return Component("Python", sys.version.split()[0], "runtime", "PSF-2.0", texts, files)


@dataclass
class Inventory:
    components: list[Component]
    unknown: list[str]  # bundled files whose origin could not be found


def inventory(sources: Iterable[str], repo_root: Path, policy: Policy) -> Inventory:
    """Components (with the number of bundled files each contributed) of the given source paths."""
    owners = distribution_files()
    runtime_root = str(Path(sys.base_prefix).resolve())
    repo = str(repo_root.resolve())
    python_counts: dict[str, tuple[importlib.metadata.Distribution, int]] = {}
    runtime_files = 0
    leftovers = []
    for source in sources:
        if not source or source in ("-", "None"):
            continue
        resolved = str(Path(source).resolve())
        distribution = owners.get(resolved)
        if distribution is not None:
            name = distribution.metadata["Name"]
            python_counts[name] = (distribution, python_counts.get(name, (distribution, 0))[1] + 1)
        elif any(p.startswith(repo + "/") and ".venv" not in p.split("/") for p in (resolved, source)):
            continue  # SynthView's own files (the demo study may be a symlinked folder)
        elif resolved.startswith(runtime_root + "/") or resolved.startswith(str(Path(sys.prefix).resolve()) + "/bin"):
            runtime_files += 1
        else:
            leftovers.append(source)
    system_owner = debian_packages(leftovers)
    system_counts: dict[str, int] = {}
    unknown = []
    for source in leftovers:
        package = system_owner.get(source)
        if package:
            system_counts[package] = system_counts.get(package, 0) + 1
        else:
            unknown.append(source)
    components = [python_component(d, policy, n) for d, n in python_counts.values()]
    components += [system_component(p, policy, n) for p, n in system_counts.items()]
    if runtime_files:
        components.append(runtime_component(runtime_files))
    components.sort(key=lambda c: (c.kind, c.name.lower()))
    return Inventory(components, sorted(set(unknown)))


def problems(found: Inventory, policy: Policy, strict_origin: bool) -> list[str]:
    """Why the bundle may not ship as it is (empty: it may)."""
    issues = []
    for component in found.components:
        if component.licence == "UNREVIEWED":
            issues.append(f"{component.name} (Debian package): no reviewed licence in {POLICY_PATH.name}; "
                          f"read /usr/share/doc/{component.name}/copyright and add it")
        elif not licence_allowed(component.licence, policy.allowed):
            issues.append(f"{component.name} {component.version}: licence '{component.licence}' is not in the allow-list")
        elif not component.texts and not _extra_texts(component, policy):
            issues.append(f"{component.name} {component.version}: no licence text found to ship")
    if strict_origin:
        issues += [f"{path}: bundled, but its origin (distribution or Debian package) is unknown" for path in found.unknown]
    return issues


def _extra_texts(component: Component, policy: Policy) -> list[str]:
    names = []
    for licence, texts in policy.extra_texts.items():
        if licence in _tokens(component.licence) or any(t.strip() == licence for t in _tokens(component.licence)):
            names += [t for t in texts if t not in names]
    return names


def common_text(name: str) -> str:
    """A common licence text (GPL-3, LGPL-3, ...): the repository's copy, else Debian's."""
    for folder in (COMMON_TEXTS_DIR, Path("/usr/share/common-licenses")):
        if (folder / name).is_file():
            return _read(folder / name)
    return ""


def render(found: Inventory, policy: Policy) -> str:
    lines = [
        "SynthView: third-party components and their licences",
        "",
        "Generated at build time from the files this installation actually contains.",
        "Qt, PySide6 and Shiboken6 are used under the GNU LGPL v3: they are separate, unmodified",
        "shared libraries in the installation folder that you may replace; source: code.qt.io.",
        "",
        f"{'Component':<32} {'Version':<28} {'Kind':<8} Licence",
    ]
    for c in found.components:
        lines.append(f"{c.name:<32} {c.version:<28} {c.kind:<8} {c.licence}")
    common: list[str] = []
    for c in found.components:
        lines += ["", "=" * 100, f"{c.name} {c.version} ({c.kind}): {c.licence}", "=" * 100]
        for name in _extra_texts(c, policy):
            lines.append(f"(full text of {name}: see 'Common licence texts' at the end)")
            common += [name] if name not in common else []
        for title, text in c.texts:
            lines += ["", f"--- {title} ---", text.rstrip()]
            for name in COMMON_LICENCE_REFERENCE.findall(text):
                name = name.rstrip(".")
                if name not in common and common_text(name):
                    common.append(name)
    lines += ["", "=" * 100, "Common licence texts", "=" * 100]
    for name in common:
        lines += ["", f"--- {name} ---", common_text(name).rstrip()]
    return "\n".join(lines) + "\n"


def write(found: Inventory, policy: Policy, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    notice = out_dir / NOTICE_NAME
    notice.write_text(render(found, policy), encoding="utf-8")
    summary = [{"name": c.name, "version": c.version, "kind": c.kind, "licence": c.licence, "files": c.files}
               for c in found.components]
    (out_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return notice


def manifest_sources(manifest: dict) -> list[str]:
    return [source for key in ("pure", "binaries", "datas") for _, source in manifest.get(key, [])]


def generate(
    manifest: dict, repo_root: Path, out_dir: Path, extra_distributions: Iterable[str] = ()
) -> tuple[Path, list[str], Inventory]:
    """Write the notice for a bundle manifest (plus distributions that contribute no listed file,
    e.g. PyInstaller's bootloader); returns (notice, problems, inventory)."""
    policy = load_policy()
    found = inventory(manifest_sources(manifest), repo_root, policy)
    named = {_normal_name(c.name) for c in found.components}
    for name in extra_distributions:
        if _normal_name(name) not in named:
            found.components.append(python_component(importlib.metadata.distribution(name), policy))
    notice = write(found, policy, out_dir)
    return notice, problems(found, policy, strict_origin=shutil.which("dpkg") is not None), found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate and check the third-party notice.")
    parser.add_argument("out_dir", type=Path)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", type=Path, help="bundle-manifest.json of a PyInstaller build")
    source.add_argument("--installed", action="store_true", help="every distribution installed here")
    args = parser.parse_args(argv)
    policy = load_policy()
    repo_root = HERE.parents[1]
    if args.manifest:
        notice, issues, found = generate(
            json.loads(args.manifest.read_text()), repo_root, args.out_dir, extra_distributions=("pyinstaller",)
        )
    else:
        found = Inventory(sorted((python_component(d, policy) for d in importlib.metadata.distributions()),
                                 key=lambda c: c.name.lower()), [])
        notice = write(found, policy, args.out_dir)
        issues = problems(found, policy, strict_origin=False)
    print(f"[licences] {len(found.components)} components, {len(issues)} problems: {notice}")
    for issue in issues:
        print(f"[licences] {issue}", file=sys.stderr)
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
