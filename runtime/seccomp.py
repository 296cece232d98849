"""A compact seccomp profile with the effect of docker's default for a container without extra capabilities.

Docker's profile (moby `profiles/seccomp/default.json`) is an allowlist that denies everything else with EPERM, then
re-allows some calls when a capability is granted. Its net effect for the default capability set is that the calls
below fail with EPERM. This profile states that effect directly: allow by default, and deny

- kernel modules, kexec, reboot, swap, accounting, quotas, clock and time setting (CAP_SYS_MODULE/BOOT/TIME/...);
- mount, umount, pivot_root, the new mount API, setns, unshare and clone/clone3 with namespace flags (CAP_SYS_ADMIN);
- keyrings, bpf, perf_event_open, userfaultfd, io_uring, handle-based opens, NUMA policy, ioperm/iopl, syslog;
- obsolete calls (uselib, ustat, sysfs, _sysctl, vm86, nfsservctl, ...).

clone3 answers ENOSYS rather than EPERM, as docker does, so that libc falls back to clone where flags are checked.
ptrace and process_vm_* stay allowed, as in docker's profile on kernels >= 4.8.
"""

from __future__ import annotations

import platform
from typing import Any

EPERM = 1
ENOSYS = 38

DENIED = [
    "acct", "add_key", "bpf", "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64",
    "create_module", "delete_module", "fanotify_init", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
    "get_kernel_syms", "get_mempolicy", "init_module", "io_uring_enter", "io_uring_register", "io_uring_setup",
    "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount",
    "mount_setattr", "move_mount", "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at",
    "open_tree", "perf_event_open", "pivot_root", "query_module", "quotactl", "quotactl_fd", "reboot",
    "request_key", "set_mempolicy", "setns", "settimeofday", "stime", "swapoff", "swapon", "syslog", "sysfs",
    "_sysctl", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
]  # fmt: skip

# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
CLONE_NAMESPACE_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000]

ARCHITECTURES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}


def profile() -> dict[str, Any]:
    syscalls: list[dict[str, Any]] = [{"names": DENIED, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM}]
    syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})
    for flag in CLONE_NAMESPACE_FLAGS:
        syscalls.append(
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": EPERM,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
            }
        )
    doc: dict[str, Any] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls}
    arches = ARCHITECTURES.get(platform.machine())
    if arches:
        doc["architectures"] = arches
    return doc
