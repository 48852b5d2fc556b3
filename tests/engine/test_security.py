"""The attribute access rule, restricted(), and the other gates, against a live server."""

from __future__ import annotations

import pytest
from engine_services import CalcService

from rpyc_engine import BgServingThread, Config
from rpyc_engine.protocol import wire

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(make_server):
    return make_server(CalcService)


@pytest.fixture
def conn(server, make_client):
    return make_client(server.port)


@pytest.fixture
def root(conn):
    return conn.root


def test_private_name_refused(root):
    with pytest.raises(AttributeError, match="cannot access '_private'"):
        root._private


def test_non_exposed_names_refused(root):
    with pytest.raises(AttributeError, match="cannot access 'secret'"):
        root.secret
    with pytest.raises(AttributeError, match="cannot access 'not_exposed'"):
        root.not_exposed()
    with pytest.raises(AttributeError, match="cannot access 'conn'"):
        root.conn


def test_exposed_and_safe_names_allowed(root):
    assert root.exposed_value == 42
    assert root.value == 42
    remote = root.make_list(3)
    assert remote.__len__() == 3
    assert remote.__getitem__(1) == 1


def test_dunder_reads_refused(conn, root):
    for name in ("__dict__", "__class__", "__init__", "__globals__"):
        with pytest.raises(AttributeError, match=f"cannot access '{name}'"):
            conn.sync_request(wire.HANDLE_GETATTR, root, name)


def test_cmp_operator_checked(conn, root):
    with pytest.raises(AttributeError) as info:
        conn.sync_request(wire.HANDLE_CMP, root, 1, "__getattribute__")
    assert info.value.args[0] == "cannot access '__getattribute__'"


def test_cmp_allowed_operator(conn, root):
    box = root.make_box(1)
    assert conn.sync_request(wire.HANDLE_CMP, box, box, "__eq__") is True


def test_setattr_on_root_refused(root):
    with pytest.raises(AttributeError, match="access denied"):
        root.value = 5
    with pytest.raises(AttributeError, match="access denied"):
        root.exposed_value = 5


def test_delattr_on_root_refused(root):
    with pytest.raises(AttributeError, match="access denied"):
        del root.value


def test_setattr_refused_by_default(root):
    box = root.make_box(1)
    with pytest.raises(AttributeError, match="cannot access 'value'"):
        box.value = 2


def test_name_must_be_string(conn, root):
    with pytest.raises(TypeError, match="name must be a string"):
        conn.sync_request(wire.HANDLE_GETATTR, root, 5)


def test_name_as_bytes(conn, root):
    assert conn.sync_request(wire.HANDLE_GETATTR, root, b"value") == 42


def test_getattr_on_value_refused(conn):
    with pytest.raises(AttributeError, match="cannot access 'x'"):
        conn.sync_request(wire.HANDLE_GETATTR, None, "x")


def test_pickling_disabled(conn, root):
    box = root.make_box(1)
    with pytest.raises(ValueError, match="pickling is disabled"):
        conn.sync_request(wire.HANDLE_PICKLE, box, 2)


def test_restricted_reads(root):
    box = root.restricted_box(5)
    assert box.value == 5
    with pytest.raises(AttributeError) as info:
        box.exposed_get
    assert info.value.args[0] == "exposed_get"


def test_restricted_writes(root):
    box = root.restricted_box(5)
    box.value = 6
    assert box.value == 6
    with pytest.raises(AttributeError) as info:
        box.other = 1
    assert info.value.args[0] == "other"


def test_restricted_call_needs_call_attr(conn, root):
    func = root.restricted_func(False)
    with pytest.raises(TypeError):
        func()
    # Even a raw CALL request, which skips the proxy's local check, is refused.
    with pytest.raises(AttributeError) as info:
        conn.sync_request(wire.HANDLE_CALL, func, (), ())
    assert info.value.args[0] == "__call__"
    assert root.restricted_func(True)() == "called"


def test_restricted_not_picklable(make_server, make_client):
    server = make_server(CalcService, {"allow_pickle": True})
    conn = make_client(server.port)
    box = conn.root.restricted_box(1)
    with pytest.raises(TypeError, match="cannot be pickled"):
        conn.sync_request(wire.HANDLE_PICKLE, box, 2)


def test_access_check_runs_no_property(make_server, make_client):
    server = make_server(CalcService, {"allow_public_attrs": True})
    root = make_client(server.port).root
    probe = root.get_probe()
    # "foo" is public and the object has it, so the exposed_foo property must not run.
    assert probe.foo == "plain foo"
    assert probe.reads == 0


def test_public_attrs_setting(make_server, make_client):
    server = make_server(CalcService, {"allow_public_attrs": True})
    root = make_client(server.port).root
    assert root.secret == "not reachable"
    with pytest.raises(AttributeError, match="cannot access '_private'"):
        root._private


def test_client_objects_protected_from_server(server, conn):
    # The client's settings govern what the server may do with the client's objects.
    class Secretive:
        hidden = "client secret"

    (server_side,) = server.wait_connections(1)
    conn.root.keep(Secretive())
    kept = server_side._local_root.kept[0]
    # Nothing on the client waits for a reply here, so a thread must serve its requests.
    serving = BgServingThread(conn)
    try:
        with pytest.raises(AttributeError, match="cannot access 'hidden'"):
            kept.hidden
    finally:
        serving.stop()


def test_config_rejects_unknown_key():
    with pytest.raises(TypeError) as info:
        Config.coerce({"allow_publc_attrs": True})
    message = str(info.value)
    assert "'allow_publc_attrs'" in message
    assert "allow_public_attrs" in message


def test_config_replace_rejects_unknown_key():
    with pytest.raises(TypeError, match="'sync_timeout'"):
        Config().replace(sync_timeout=3)


def test_config_item_access():
    config = Config.coerce({"credentials": "alice"})
    assert config["credentials"] == "alice"
    assert config["sync_request_timeout"] == 30
    with pytest.raises(KeyError, match="'nope' is not a connection setting"):
        config["nope"]


def test_config_validates_values():
    with pytest.raises(ValueError, match="sync_request_timeout"):
        Config(sync_request_timeout=-1)
    with pytest.raises(ValueError, match="max_frame_size"):
        Config(max_frame_size=-5)
