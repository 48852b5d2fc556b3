"""Service naming, the exposed convention and decorator, VoidService and restricted()."""

from __future__ import annotations

import pytest
from engine_services import CalcService

from rpyc_engine import Service, VoidService, exposed, restricted
from rpyc_engine.services.base import Restricted

pytestmark = pytest.mark.timeout(60)


class MathService(Service):
    pass


class Aliased(Service):
    ALIASES = ("first", "Second")


class Decorated(Service):
    @exposed
    def double(self, value):
        return value * 2

    @exposed
    @classmethod
    def kind(cls):
        return cls.__name__


def test_alias_from_class_name():
    assert MathService.get_service_aliases() == ("MATH",)
    assert MathService().get_service_name() == "MATH"
    assert VoidService.get_service_name() == "VOID"


def test_explicit_aliases():
    assert Aliased.get_service_aliases() == ("FIRST", "SECOND")
    assert Aliased.get_service_name() == "FIRST"


def test_class_named_service():
    class Service_(Service):
        pass

    Service_.__name__ = "Service"
    assert Service_.get_service_aliases() == ("SERVICE",)


def test_exposed_decorator_adds_alias():
    service = Decorated()
    assert service.double(2) == 4
    assert service.exposed_double(3) == 6
    assert Decorated.exposed_kind() == "Decorated"


def test_exposed_decorator_over_the_wire(make_server, make_client):
    server = make_server(Decorated)
    root = make_client(server.port).root
    assert root.double(21) == 42
    assert root.kind() == "Decorated"


def test_void_service_exposes_names_only(make_server, make_client):
    server = make_server(VoidService)
    root = make_client(server.port).root
    assert root.get_service_name() == "VOID"
    with pytest.raises(AttributeError, match="cannot access 'on_connect'"):
        root.on_connect


def test_service_hooks_refuse_writes():
    service = CalcService()
    with pytest.raises(AttributeError, match="access denied"):
        service._rpyc_setattr("x", 1)
    with pytest.raises(AttributeError, match="access denied"):
        service._rpyc_delattr("x")


def test_restricted_wrapper_types():
    plain = restricted(object(), ["x"])
    callable_one = restricted(len, ["__call__"])
    assert type(plain) is Restricted
    assert not callable(plain)
    assert isinstance(callable_one, Restricted)
    assert callable_one([1, 2]) == 2


def test_restricted_default_write_names():
    class Target:
        x = 1

    target = Target()
    wrapper = restricted(target, ["x"])
    wrapper._rpyc_setattr("x", 5)
    assert target.x == 5
    read_only = restricted(target, ["x"], ())
    with pytest.raises(AttributeError) as info:
        read_only._rpyc_setattr("x", 6)
    assert info.value.args == ("x",)
    with pytest.raises(AttributeError):
        read_only._rpyc_delattr("x")


def test_restricted_rejects_single_string():
    with pytest.raises(TypeError, match="not a single str"):
        restricted(object(), "x")
