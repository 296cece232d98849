"""Every error the runtime reports to its user, one module.

RuntimeFailure              anything the CLI prints as `runtime: <message>` and exits with status 1
 ├── UsageError             a bad argument or reference (exit status 2)
 ├── ImageNotFound          no such image in the local store
 ├── ContainerNotFound      no such container
 ├── ConflictError          the request conflicts with current state (name taken, image in use, running)
 ├── RegistryError          the registry answered an error (status, spec code and message)
 │    └── AuthError         401/403, or the token service refused
 ├── DigestMismatch         received bytes do not match their descriptor (digest or size)
 ├── UnpackError            a layer is malformed or tries to escape its directory
 ├── NoOciRuntime           neither runc nor crun is installed
 └── NotRoot                an operation needs root and rootless mode is not implemented
"""

from __future__ import annotations


class RuntimeFailure(Exception):
    exit_status = 1


class UsageError(RuntimeFailure):
    exit_status = 2


class ImageNotFound(RuntimeFailure):
    pass


class ContainerNotFound(RuntimeFailure):
    pass


class ConflictError(RuntimeFailure):
    pass


class RegistryError(RuntimeFailure):
    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AuthError(RegistryError):
    pass


class DigestMismatch(RuntimeFailure):
    pass


class UnpackError(RuntimeFailure):
    pass


class NoOciRuntime(RuntimeFailure):
    pass


class NotRoot(RuntimeFailure):
    pass
