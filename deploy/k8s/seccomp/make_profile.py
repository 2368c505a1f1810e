"""Writes hyoka-sandbox.json, the sandbox pod's `Localhost` seccomp profile, from the vendored
RuntimeDefault profile (moby-default.json: github.com/moby/profiles/seccomp v0.2.3, the
profile Docker applies and containerd's RuntimeDefault mirrors) plus exactly what bubblewrap
needs. `python3 deploy/k8s/seccomp/make_profile.py` rewrites it; `--check` fails when the
committed file differs from what this script writes (tests/containers/test_k8s_seccomp.py runs
the check and the profile itself).

The output is the OCI runtime-spec `LinuxSeccomp` JSON (defaultAction, architectures, syscalls
with names/action/errnoRet/args), the one format every kubelet runtime reads for
`type: Localhost`. containerd unmarshals the file straight into that struct, so moby's
conditional rules (`includes`/`excludes` on capabilities and architectures) would be silently
dropped there and their syscalls allowed to everyone. They are therefore resolved here, for the
pod this profile is written for: no capabilities at all (`capabilities.drop: [ALL]`) on amd64 or
arm64 (runc and crun skip syscall names the native architecture lacks).

What is added over RuntimeDefault (found with `strace -f` on the sandbox service in its image:
the start-up probes, zygote and single-use runs, Execute and CheckCompletions; see README.md):
  - clone with namespace flags (RuntimeDefault allows clone only without CLONE_NEW* unless
    CAP_SYS_ADMIN): bubblewrap's first clone creates the user, mount, pid, net, ipc, uts and
    cgroup namespaces at once;
  - unshare: the zygote's own user namespace, then each run's fresh namespaces;
  - mount, umount2, pivot_root: bubblewrap builds each sandbox's root inside its own user and
    mount namespace (the kernel allows these only with capabilities in that user namespace, so
    they cannot touch the node's or the container's mount table);
  - sethostname: the sandbox's UTS namespace gets the hostname "sandbox" (optional: without it
    the service warns and runs keep the pod's hostname).
clone3 keeps RuntimeDefault's ENOSYS answer (glibc and bubblewrap then use clone).
Not added, because nothing calls them: setns, setdomainname, chroot, umount, the new mount API
(fsopen, fsmount, move_mount, open_tree, mount_setattr), bpf, keyctl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
UPSTREAM = HERE / "moby-default.json"
PROFILE = HERE / "hyoka-sandbox.json"

#: The architectures the images are built for; moby's archMap gives each one's sub-architectures.
NATIVE = ("SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64")
#: moby's arch names (for `includes.arches`) of those architectures and their sub-architectures.
ARCH_NAMES = {"amd64", "x86", "x32", "arm64", "arm"}
#: What the sandbox adds to RuntimeDefault: allowed unconditionally (see the module docstring).
ADDED = ("clone", "mount", "pivot_root", "sethostname", "umount2", "unshare")


def _applies(rule: dict[str, Any]) -> bool:
    """Whether a moby rule applies to a container with no capabilities on ARCH_NAMES."""
    includes = rule.get("includes") or {}
    # includes.minKernel (4.8, for ptrace) is below any kernel this runs on; excludes.caps never
    # match a container without capabilities; excludes.arches only names s390.
    return not includes.get("caps") and not (includes.get("arches") and not ARCH_NAMES & set(includes["arches"]))


def build(upstream: dict[str, Any], added: tuple[str, ...] = ADDED) -> dict[str, Any]:
    """The profile: `upstream` resolved for this pod, with `added` allowed (`()`: RuntimeDefault alone)."""
    architectures = []
    for entry in upstream["archMap"]:
        if entry["architecture"] in NATIVE:
            architectures += [entry["architecture"], *(entry["subArchitectures"] or [])]
    rules: list[dict[str, Any]] = []
    for rule in upstream["syscalls"]:
        if not _applies(rule):
            continue
        names = [name for name in rule["names"] if name not in added]  # replaced by the rule below
        if names:
            out = {"names": names, "action": rule["action"]}
            for key in ("errnoRet", "args"):
                if rule.get(key) is not None:
                    out[key] = rule[key]
            rules.append(out)
    if added:
        rules.append({"names": sorted(added), "action": "SCMP_ACT_ALLOW"})
    return {
        "defaultAction": upstream["defaultAction"],
        "defaultErrnoRet": upstream["defaultErrnoRet"],
        "architectures": architectures,
        "syscalls": rules,
    }


def render() -> str:
    return json.dumps(build(json.loads(UPSTREAM.read_text())), indent=2) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if hyoka-sandbox.json is not up to date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not PROFILE.is_file() or PROFILE.read_text() != text:
            print(f"{PROFILE} is out of date: run python3 {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    PROFILE.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
