"""The seccomp deny-list every sandboxed process runs under, compiled once to BPF.

Namespaces already fence the run in; the filter removes the kernel interfaces a sandbox escape
or a neighbour attack would start from (ptrace, mounts, namespaces, keyrings, BPF, io_uring,
perf, module loading...). Denied calls fail with EPERM, so programs see an ordinary error.
"""

from __future__ import annotations

import contextlib
import errno
import os

import pyseccomp

DENIED_SYSCALLS: tuple[str, ...] = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "setns",
    "unshare",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "open_by_handle_at",
    "name_to_handle_at",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "syslog",
    "quotactl",
    "fanotify_init",
    "lookup_dcookie",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "vhangup",
    "personality",
)


# clone() flags that make new namespaces (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
# NEWNET). A run makes none: with `unshare` denied above, this closes the other way in, so runs
# cannot nest namespaces even where bubblewrap's --disable-userns is unavailable.
CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)


def build_filter() -> pyseccomp.SyscallFilter:
    flt = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            flt.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
        except (ValueError, OSError):  # a call this kernel or libseccomp does not know
            continue
    for flag in CLONE_NAMESPACE_FLAGS:  # clone's flags are its first argument (x86_64, aarch64)
        flt.add_rule(pyseccomp.ERRNO(errno.EPERM), "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag))
    # clone3 passes its flags in memory a filter cannot read: answer ENOSYS, and glibc (2.34+)
    # falls back to clone, whose flags are checked above. Container runtimes' default profiles
    # do the same.
    with contextlib.suppress(ValueError, OSError):  # a libseccomp that does not know clone3
        flt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    return flt


def bpf_memfd() -> int:
    """A memfd holding the compiled filter. bubblewrap reads a filter from an fd it is given;
    reopen this one per run (`reopen`) so each run reads from offset 0."""
    fd = os.memfd_create("hyoka-seccomp", 0)  # no CLOEXEC needed: never inherited, only reopened
    with os.fdopen(os.dup(fd), "wb") as out:
        build_filter().export_bpf(out)
    os.set_inheritable(fd, False)
    return fd


def reopen(fd: int) -> int:
    """A fresh, inheritable read-only descriptor of the filter, positioned at its start."""
    new = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY)
    os.set_inheritable(new, True)
    return new
