"""Proxy classes, id_packs, INSPECT listings and proxy release."""

from __future__ import annotations

import gc
import pickle
import socket
import sys
import threading
import types

import pytest
from engine_services import Box, CalcService

from rpyc_engine import BaseNetref, Service, buffiter
from rpyc_engine import netref as netref_module
from rpyc_engine.factory import connect_socket
from rpyc_engine.handlers import list_methods
from rpyc_engine.protocol import wire
from rpyc_engine.protocol.messages import decode_message

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def pair():
    """(client, server_side) connected through a socket pair, the server side served."""
    left, right = socket.socketpair()
    server_side = connect_socket(left, CalcService, {"allow_pickle": True})
    client = connect_socket(right)
    thread = threading.Thread(target=server_side.serve_all)
    thread.start()
    yield client, server_side
    client.close()
    thread.join(10)
    assert not thread.is_alive()


def test_builtin_table_covers_stock_names():
    for name in wire.BUILTIN_NETREF_NAMES:
        assert netref_module.builtin_class(name, False) is not None
        assert netref_module.builtin_class(name, True) is not None
    assert netref_module.builtin_class("mymodule.Thing", False) is None


def test_builtin_proxy_class_methods():
    list_proxy = netref_module.builtin_class("builtins.list", False)
    assert "__len__" in vars(list_proxy)
    assert "append" in vars(list_proxy)
    assert "__call__" not in vars(list_proxy)
    list_class_proxy = netref_module.builtin_class("builtins.list", True)
    assert "__call__" in vars(list_class_proxy)
    assert "mro" in vars(list_class_proxy)


def test_id_pack_rules():
    obj = Box(1)
    name, class_id, instance_id = netref_module.id_pack_of(obj)
    assert name == "engine_services.Box"
    assert class_id == id(Box)
    assert instance_id == id(obj)
    assert netref_module.id_pack_of(Box) == ("engine_services.Box", id(Box), 0)
    assert netref_module.id_pack_of(sys) == ("sys", id(types.ModuleType), id(sys))
    assert netref_module.id_pack_of([])[0] == "builtins.list"
    assert netref_module.id_pack_of(len)[0] == "builtins.builtin_function_or_method"
    assert netref_module.id_pack_of(Box(1).exposed_get)[0] == "builtins.method"


def test_unlisted_module_name():
    module = types.ModuleType("not_in_sys_modules")
    assert netref_module.id_pack_of(module)[0] == "builtins.not_in_sys_modules"


def test_inspect_listing_of_service():
    names = [name for name, _ in list_methods(CalcService())]
    assert "exposed_add" in names
    assert "get_service_name" in names
    assert "exposed_get_service_name" in names
    assert "on_connect" in names
    for local in ("__init__", "__repr__", "__eq__", "__getattribute__"):
        assert local not in names
    assert "value" not in names  # plain values are not routines


def test_inspect_listing_of_class():
    names = [name for name, _ in list_methods(Box)]
    assert "__call__" in names  # from the metaclass
    assert "exposed_get" in names


def test_inspect_listing_of_module():
    names = {name for name, _ in list_methods(sys)}
    assert "__format__" in names
    assert "getrefcount" not in names


def test_class_resolution(pair):
    client, _ = pair
    root = client.root
    assert root.make_list(1).__class__ is list
    assert root.make_box(1).__class__ is Box  # engine_services is loaded here too
    assert root.Box.__class__ is type
    assert isinstance(root.make_box(1), Box)


def test_proxy_repr_does_round_trip(pair):
    client, _ = pair
    assert repr(client.root.make_list(2)) == "[0, 1]"


def test_local_attrs_need_no_request(pair):
    client, _ = pair
    remote = client.root.make_list(2)
    sent = []
    original = client._send
    client._send = lambda payload: (sent.append(payload), original(payload))[1]
    try:
        assert type(remote).__module__ == "rpyc_engine.netref"
        assert remote.____id_pack__[0] == "builtins.list"
        assert remote.____conn__ is client
        assert remote.__reduce_ex__ is not None
    finally:
        client._send = original
    assert sent == []


def test_doc_is_forwarded(pair):
    client, _ = pair
    assert client.root.make_list(1).__doc__ == list.__doc__


def test_iterator_sent_twice_released_with_count(pair):
    client, server_side = pair
    root = client.root
    iterator = root.counter(3)
    assert iter(iterator) is iterator  # __iter__ returns the same object: count 2
    ref = client._proxies[netref_module.get_id_pack(iterator)]
    assert ref.count == 2
    id_pack = netref_module.get_id_pack(iterator)
    assert server_side._exports._entries[id_pack][1] == 2
    del iterator, ref
    gc.collect()
    client.ping()
    assert id_pack not in server_side._exports._entries


def test_buffiter(pair):
    client, _ = pair
    iterator = client.root.counter(5)
    assert client.sync_request(wire.HANDLE_BUFFITER, iterator, 2) == (0, 1)
    assert client.sync_request(wire.HANDLE_BUFFITER, iterator, 10) == (2, 3, 4)
    assert client.sync_request(wire.HANDLE_BUFFITER, iterator, 10) == ()


def test_oldslicing(pair):
    client, _ = pair
    remote = client.root.make_list(5)
    result = client.sync_request(
        wire.HANDLE_OLDSLICING, remote, "__getitem__", "__getslice__", 1, 3, ()
    )
    assert list(result) == [1, 2]


def test_pickle_round_trip(pair):
    client, _ = pair
    box = client.root.make_box(9)
    copy = pickle.loads(pickle.dumps(box))
    assert type(copy) is Box
    assert copy.value == 9


def test_array_refused_without_local_pickle(pair):
    client, _ = pair
    box = client.root.make_box(1)
    array_class = netref_module.make_class("x.Arrayish", (("__array__", None),), False)
    proxy = netref_module.make_proxy(
        client, netref_module.get_id_pack(box), array_class
    )
    with pytest.raises(ValueError, match="pickling is disabled"):
        proxy.__array__()


def test_instance_proxy_rejects_isinstance(pair):
    client, _ = pair
    box = client.root.make_box(1)
    with pytest.raises(TypeError, match="isinstance"):
        isinstance(1, box)


def test_gc_on_other_thread_never_blocks(pair):
    """Proxies dying on many threads while calls are in flight: no deadlock, table drains."""
    client, server_side = pair
    root = client.root
    baseline = len(server_side._exports)
    errors = []

    def churn():
        try:
            for index in range(100):
                proxies = [root.make_list(1) for _ in range(5)]
                del proxies
                if index % 25 == 0:
                    gc.collect()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(50)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors
    gc.collect()
    client.ping()
    assert len(server_side._exports) == baseline


def test_proxies_after_close_do_not_send(pair):
    client, _ = pair
    remote = client.root.make_list(1)
    client.close()
    del remote
    gc.collect()
    assert len(client._releases) == 0


def test_chained_proxy_keeps_id_pack():
    """A proxy passed on to a third party is sent with its original id_pack."""

    class Relay(Service):
        def exposed_forward(self, obj):
            return netref_module.get_id_pack(obj)

    left, right = socket.socketpair()
    far = connect_socket(left, CalcService)
    middle = connect_socket(right)
    far_thread = threading.Thread(target=far.serve_all)
    far_thread.start()
    left2, right2 = socket.socketpair()
    relay = connect_socket(left2, Relay)
    relay_client = connect_socket(right2)
    relay_thread = threading.Thread(target=relay.serve_all)
    relay_thread.start()
    try:
        remote_box = middle.root.make_box(1)
        assert isinstance(remote_box, BaseNetref)
        assert relay_client.root.forward(remote_box) == netref_module.get_id_pack(
            remote_box
        )
    finally:
        relay_client.close()
        middle.close()
        far_thread.join(10)
        relay_thread.join(10)


def test_buffiter_batches(pair):
    client, _ = pair
    sent = []
    original = client._send
    client._send = lambda payload: (sent.append(payload), original(payload))[1]
    try:
        items = list(buffiter(client.root.counter(1000), chunk=300))
    finally:
        client._send = original
    assert items == list(range(1000))
    handlers = [decode_message(payload)[2][0] for payload in sent]
    # Four chunks of up to 300 items, then one empty reply that ends the iteration.
    assert handlers.count(wire.HANDLE_BUFFITER) == 5
    assert handlers.count(wire.HANDLE_CALLATTR) == 1  # __iter__ only, no __next__


def test_buffiter_rejects_local_objects():
    with pytest.raises(TypeError, match="needs a proxy"):
        list(buffiter([1, 2]))


def test_repr_after_close(pair):
    client, _ = pair
    remote = client.root.make_list(1)
    client.close()
    assert repr(remote) == "<proxy of builtins.list, connection closed>"


def test_buffiter_batch_is_capped(pair):
    client, _ = pair
    endless = client.root.counter(10**9)
    batch = client.sync_request(wire.HANDLE_BUFFITER, endless, 10**9)
    assert len(batch) == 65536
    assert batch[:3] == (0, 1, 2)
