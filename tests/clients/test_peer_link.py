"""A node's end of the vertical peer stream obeys its own policy: it connects only to a relay
host its ``[policy] peer-relay-hosts`` lists, so a deviating coordinator cannot send it to
another machine; the list travels node TOML -> node config -> policy unchanged."""

from __future__ import annotations

import socket

import pytest
from flwr.app import Context, Message, Metadata, RecordDict

import clients.app  # noqa: F401  (registers every handler)
from clients.peer_link import PeerLink, PeerStreamError
from clients.vertical_app import stream_step
from federation.errors import ConfigError
from federation.run.policy import (
    DEFAULT_POLICY,
    SIMULATION_POLICY,
    BankPolicy,
    PolicyError,
    PolicyRefusal,
    check_relay_host,
    policy_of_node,
)
from federation.run.vertical_config import VerticalConfig
from federation.wire.peer_frames import new_session_key
from federation.wire.vertical import V_STREAM, stream_fields, vertical_request

STREAM = VerticalConfig(transport="stream", relay_host="10.1.2.3")


def _stream_request(cfg: VerticalConfig, host: str) -> Message:
    return Message(vertical_request(cfg, stream_fields(0, host, 9, new_session_key())),
                   metadata=Metadata(  # type: ignore[call-overload]
                       run_id=1, message_id="m1", src_node_id=1, dst_node_id=7,
                       reply_to_message_id="", group_id="", created_at=0.0, ttl=60.0,
                       message_type=V_STREAM.message_type))


def _context(**node: str | int | bool) -> Context:
    return Context(run_id=1, node_id=7, state=RecordDict(), run_config={},
                   node_config={"data-path": "/nonexistent/bank.csv", "role": "bank", **node})


def test_a_node_without_relay_hosts_refuses_a_stream_epoch_before_connecting() -> None:
    with pytest.raises(PolicyRefusal, match=r"peer-relay-hosts.*\(listed: none\)"):
        stream_step(_stream_request(STREAM, "10.1.2.3"), _context())


def test_a_coordinator_naming_an_unlisted_host_is_refused() -> None:
    node = {"policy-peer-relay-hosts": "10.1.2.3"}
    with pytest.raises(PolicyRefusal, match="relay host '192.168.9.9'"):
        stream_step(_stream_request(STREAM, "192.168.9.9"), _context(**node))


def test_a_stream_epoch_for_a_run_on_the_message_transport_is_refused() -> None:
    with pytest.raises(ConfigError, match="not \"stream\""):
        stream_step(_stream_request(VerticalConfig(), "127.0.0.1"), _context())


def test_the_relay_hosts_travel_from_the_toml_table_to_the_policy() -> None:
    policy = BankPolicy.from_table({"peer-relay-hosts": ["10.1.2.3", "coordinator.example"]})
    node = policy.to_node_config()
    assert node["policy-peer-relay-hosts"] == "10.1.2.3,coordinator.example"
    assert policy_of_node(node) == policy
    check_relay_host(policy, "coordinator.example")  # listed: no refusal
    assert DEFAULT_POLICY.peer_relay_hosts == ()
    assert "127.0.0.1" in SIMULATION_POLICY.peer_relay_hosts


@pytest.mark.parametrize("value", ["10.1.2.3", ["a,b"], [""], [3]])
def test_a_malformed_relay_host_list_is_refused_naming_the_setting(value) -> None:
    with pytest.raises(PolicyError, match="peer-relay-hosts"):
        BankPolicy.from_table({"peer-relay-hosts": value})


def test_an_unreachable_relay_is_a_named_stream_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again before the connect
    with pytest.raises(PeerStreamError, match="cannot reach the peer-stream relay"):
        PeerLink("bank", new_session_key(), "127.0.0.1", port)


@pytest.mark.parametrize("setting", [{"transport": "pigeon"}, {"relay_host": "a b"},
                                     {"relay_host": ""}, {"relay_port": 70000}])
def test_a_bad_transport_setting_is_refused_naming_it(setting) -> None:
    with pytest.raises(ConfigError, match="transport|relay-host|relay-port"):
        VerticalConfig(**setting)
