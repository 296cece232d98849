"""Any create body, however wrong its types, is answered with a 4xx naming the problem: never a 500."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.daemon import dockerconfig
from runtime.daemon.http import ApiError
from runtime.errors import UsageError

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
CONFIG_KEYS = ["Image", "Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Tty", "OpenStdin", "HostConfig"]
HOST_KEYS = ["NetworkMode", "Binds", "Memory", "PidsLimit", "AutoRemove", "ConsoleSize", "PortBindings", "Privileged"]


def body_strategy() -> st.SearchStrategy[Any]:
    host = st.dictionaries(st.sampled_from(HOST_KEYS), JSON, max_size=4)
    config = st.dictionaries(st.sampled_from(CONFIG_KEYS), JSON, max_size=6)
    with_host = st.builds(lambda c, h: {**c, "HostConfig": h}, config, host)
    return st.one_of(JSON, config, with_host)


@settings(max_examples=400, deadline=None)
@given(body=body_strategy(), name=st.none() | st.text(max_size=10))
def test_a_create_body_maps_or_is_refused_with_a_400(body: Any, name: str | None) -> None:
    try:
        dockerconfig.image_of(body)
        dockerconfig.run_options(body, name)
    except ApiError as exc:
        assert exc.status == 400 and exc.message
    except UsageError:
        pass  # a bad Env item or volume: the router answers it with a 400 too
