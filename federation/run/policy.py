"""A bank's own policy: which run configs and which sums it accepts from the coordinator.

Protocol step: before a node reads a single row for a request, it checks the run config the
coordinator sent against its policy (:func:`check_run_config`, :func:`check_vertical_config`)
and refuses the request with one line naming the setting; before it opens (decrypts) a sum it
checks that the sum has at least ``min_contributors`` contributions
(:mod:`federation.steps.contributions`).

Security assumption: the coordinator may deviate. So the policy never comes from the run
config: a deployed node reads it from the ``[policy]`` table of its own node TOML file
(:mod:`federation.run.node_config`), which ``fedcredit node`` hands to the SuperNode as node
config (``policy-*`` keys); a table that is absent or incomplete gives the safe defaults of
:data:`DEFAULT_POLICY` (fail closed). Only a node started by Flower's simulation engine (node
config ``partition-id`` and no ``data-path``: its rows are whatever the run config names, so it
owns no data and its only operator is the researcher running the simulation) takes
:data:`SIMULATION_POLICY`, which allows every setting.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from federation.errors import ConfigError
from federation.steps.secure_sum import SUMMATION_SCHEMES, summation_scheme
from protocols.paillier.keys import DEFAULT_KEY_BITS

if TYPE_CHECKING:
    from federation.run.config import RunConfig
    from federation.run.vertical_config import VerticalConfig

SCHEMA_VERSION = 1
AGGREGATION_MODES = tuple(SUMMATION_SCHEMES)
ENCRYPTED_MODES = tuple(name for name, scheme in SUMMATION_SCHEMES.items()
                        if scheme.needs_paillier_key)
LEAST_CONTRIBUTORS = 2
"""A sum of one contribution is that bank's vector: no policy may allow opening it."""
DEFAULT_MIN_CONTRIBUTORS = 3
DEFAULT_MIN_KEY_BITS = DEFAULT_KEY_BITS
NODE_KEYS = {"aggregation": "policy-aggregation", "min_contributors": "policy-min-contributors",
             "release_model": "policy-release-model", "short_exponents": "policy-short-exponents",
             "min_key_bits": "policy-min-key-bits", "max_epsilon": "policy-max-epsilon",
             "peer_relay_hosts": "policy-peer-relay-hosts"}
"""Field -> node-config key (what ``fedcredit node`` passes to the SuperNode)."""
TOML_KEYS = {field: key.removeprefix("policy-") for field, key in NODE_KEYS.items()}
"""Field -> setting name in the node TOML's ``[policy]`` table."""


class PolicyError(ConfigError):
    """A ``[policy]`` setting is invalid (e.g. ``min-contributors = 1``)."""


class PolicyRefusal(ConfigError):
    """The coordinator asked for something this node's policy forbids; nothing was read."""


@dataclass(frozen=True, slots=True)
class BankPolicy:
    """What a node accepts from the coordinator (defaults: the safe ones).

    Attributes
    ----------
    aggregation : tuple of str
        Run-config ``aggregation`` modes accepted (default: encrypted only).
    min_contributors : int
        Fewest contributions in any sum this node opens, and fewest banks a run may need
        (``min-banks``, or ``banks`` when every bank must answer); at least 2.
    release_model : bool
        Whether the node hands the final model to the coordinator (``release-model``).
    short_exponents : bool
        Whether vertical runs may use short Paillier encryption exponents.
    min_key_bits : int
        Smallest Paillier modulus accepted, on loading key files and for generated keys.
    max_epsilon : float
        Horizontal runs must be differentially private with ``dp-epsilon`` at most this
        (:mod:`federation.ml.dp`); 0 = no requirement.
    peer_relay_hosts : tuple of str
        Hosts of a coordinator's peer-stream relay this node may connect to in a vertical run
        with ``vertical-transport = "stream"`` (default: none, so such runs are refused).
    """

    aggregation: tuple[str, ...] = ENCRYPTED_MODES
    min_contributors: int = DEFAULT_MIN_CONTRIBUTORS
    release_model: bool = False
    short_exponents: bool = False
    min_key_bits: int = DEFAULT_MIN_KEY_BITS
    max_epsilon: float = 0.0
    peer_relay_hosts: tuple[str, ...] = ()
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not self.aggregation or any(m not in AGGREGATION_MODES for m in self.aggregation):
            raise PolicyError(f"setting '[policy] aggregation' is {list(self.aggregation)!r:.80}; "
                              f"list one or more of {', '.join(AGGREGATION_MODES)}.")
        for name, least in (("min_contributors", LEAST_CONTRIBUTORS), ("min_key_bits", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise PolicyError(f"setting '[policy] {TOML_KEYS[name]}' is {value!r:.20}; "
                                  f"give an integer >= {least} (a sum of one bank is that "
                                  "bank's own vector).")
        if isinstance(self.max_epsilon, bool) or not isinstance(self.max_epsilon, (int, float)) \
                or not (math.isfinite(self.max_epsilon) and self.max_epsilon >= 0):
            raise PolicyError(f"setting '[policy] max-epsilon' is {self.max_epsilon!r:.20}; give "
                              "a number >= 0 (0: differential privacy not required).")
        if not isinstance(self.peer_relay_hosts, tuple) or not all(
                isinstance(h, str) and h and "," not in h for h in self.peer_relay_hosts):
            raise PolicyError("setting '[policy] peer-relay-hosts' must be a list of host names "
                              "or addresses (no commas), e.g. [\"127.0.0.1\"].")
        for name in ("release_model", "short_exponents"):
            if not isinstance(getattr(self, name), bool):
                raise PolicyError(f"setting '[policy] {TOML_KEYS[name]}' must be true or false.")
        if self.schema_version != SCHEMA_VERSION:
            raise PolicyError(f"policy schema_version {self.schema_version!r:.20} is not "
                              f"supported (this build reads {SCHEMA_VERSION}).")

    def to_node_config(self) -> dict[str, str | int | bool]:
        """The ``policy-*`` node-config values (a SuperNode's ``--node-config``)."""
        values: dict[str, str | int | bool] = {
            NODE_KEYS["aggregation"]: ",".join(self.aggregation),
            NODE_KEYS["min_contributors"]: self.min_contributors,
            NODE_KEYS["release_model"]: self.release_model,
            NODE_KEYS["short_exponents"]: self.short_exponents,
            NODE_KEYS["min_key_bits"]: self.min_key_bits}
        if self.max_epsilon:  # absent means 0, no requirement; as text, exactly
            values[NODE_KEYS["max_epsilon"]] = repr(float(self.max_epsilon))
        if self.peer_relay_hosts:  # absent means none
            values[NODE_KEYS["peer_relay_hosts"]] = ",".join(self.peer_relay_hosts)
        return values

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> BankPolicy:
        """A policy from a node TOML ``[policy]`` table (missing settings: safe defaults)."""
        values: dict[str, Any] = {}
        for field, key in TOML_KEYS.items():
            if key in table:
                value = table[key]
                listed = field in ("aggregation", "peer_relay_hosts") and isinstance(value, list)
                values[field] = tuple(value) if listed else value
        return cls(**values)


DEFAULT_POLICY = BankPolicy()
"""A node with no ``[policy]`` table: encrypted runs only, sums of >= 3 banks, no release,
no short exponents, keys of >= 2048 bits."""
SIMULATION_POLICY = BankPolicy(aggregation=AGGREGATION_MODES, min_contributors=LEAST_CONTRIBUTORS,
                               release_model=True, short_exponents=True,
                               peer_relay_hosts=("127.0.0.1", "localhost"))
"""Flower-simulation nodes (no data of their own): every mode, release, short exponents."""


def policy_of_node(node_config: Mapping[str, Any]) -> BankPolicy:
    """This node's policy, from its own node config (never from the run config).

    ``policy-*`` keys (written by ``fedcredit node`` from the TOML ``[policy]`` table) give the
    policy, missing ones taking the safe default; without any, a deployed node (``data-path``)
    gets :data:`DEFAULT_POLICY` and a Flower-simulation node :data:`SIMULATION_POLICY`.

    Raises
    ------
    PolicyError
        A ``policy-*`` value is invalid.
    """
    present = {field: node_config[key] for field, key in NODE_KEYS.items() if key in node_config}
    if not present:
        simulated = "partition-id" in node_config and "data-path" not in node_config
        return SIMULATION_POLICY if simulated else DEFAULT_POLICY
    for listed in ("aggregation", "peer_relay_hosts"):
        if listed in present:
            present[listed] = tuple(m.strip() for m in str(present[listed]).split(",")
                                    if m.strip())
    if "max_epsilon" in present:
        present["max_epsilon"] = _number("max-epsilon", present["max_epsilon"])
    return BankPolicy(**present)


def _number(name: str, value: Any) -> float:
    """A node-config number written as text (or a number); PolicyError naming it otherwise."""
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"setting '[policy] {name}' is {value!r:.20}; give a number.") from exc


def _refuse(setting: str, value: object, rule: str, advice: str) -> PolicyRefusal:
    return PolicyRefusal(f"run config '{setting}' = {value} is refused by this bank's policy "
                         f"({rule}); {advice}")


def check_run_config(policy: BankPolicy, cfg: RunConfig) -> None:
    """Refuse a horizontal run config the policy forbids (before any data is read).

    Raises
    ------
    PolicyRefusal
        One line naming the first setting refused: ``aggregation``, ``release-model``,
        ``min-banks`` (or ``banks``), ``key-bits`` or ``dp-epsilon``.
    """
    if cfg.aggregation not in policy.aggregation:
        raise _refuse("aggregation", cfg.aggregation,
                      f"[policy] aggregation = {json.dumps(list(policy.aggregation))}",
                      "ask the coordinator for an encrypted run or change the bank's policy")
    if cfg.release_model and not policy.release_model:
        raise _refuse("release-model", "true", "[policy] release-model = false",
                      "ask the coordinator for a run with release-model = false or change the "
                      "bank's policy")
    smallest = min(cfg.required_banks, cfg.round_required_banks)  # a sampled round's sum
    if smallest < policy.min_contributors:
        setting = ("fraction-fit" if smallest < cfg.required_banks else
                   "min-banks" if cfg.required_banks < cfg.banks else "banks")
        raise _refuse(setting, cfg.fraction_fit if setting == "fraction-fit" else smallest,
                      f"[policy] min-contributors = {policy.min_contributors}",
                      "a sum of so few banks exposes each of them; ask the coordinator for "
                      "more banks or change the bank's policy")
    if summation_scheme(cfg.aggregation).needs_paillier_key and \
            cfg.key_bits < policy.min_key_bits:
        raise _refuse("key-bits", cfg.key_bits, f"[policy] min-key-bits = {policy.min_key_bits}",
                      "ask for a run with a larger key")
    if policy.max_epsilon > 0 and not 0 < cfg.dp_epsilon <= policy.max_epsilon:
        raise _refuse("dp-epsilon", cfg.dp_epsilon, f"[policy] max-epsilon = {policy.max_epsilon:g}",
                      "ask the coordinator for a differentially private run with at most that "
                      "epsilon, or change the bank's policy")


def check_vertical_config(policy: BankPolicy, cfg: VerticalConfig) -> None:
    """Refuse a vertical run config the policy forbids (short exponents, small keys).

    Raises
    ------
    PolicyRefusal
        One line naming ``vertical-short-exponent`` or ``vertical-key-bits``.
    """
    if cfg.short_exponent and not policy.short_exponents:
        raise _refuse("vertical-short-exponent", "true", "[policy] short-exponents = false",
                      "ask the coordinator for a run without short exponents or change the "
                      "bank's policy")
    if cfg.key_bits < policy.min_key_bits:
        raise _refuse("vertical-key-bits", cfg.key_bits,
                      f"[policy] min-key-bits = {policy.min_key_bits}",
                      "ask for a run with a larger key")


def check_relay_host(policy: BankPolicy, host: str) -> None:
    """Refuse a vertical peer-stream relay host the node's policy does not list
    (``[policy] peer-relay-hosts``), before the node connects anywhere.

    Raises
    ------
    PolicyRefusal
        One line naming ``vertical-transport``, the host and the policy setting.
    """
    if host not in policy.peer_relay_hosts:
        listed = ", ".join(policy.peer_relay_hosts) or "none"
        raise PolicyRefusal(
            f"run config 'vertical-transport' = \"stream\" asks this node to connect to relay "
            f"host '{host:.64}', which rule '[policy] peer-relay-hosts' does not list "
            f"(listed: {listed:.200}); ask for 'vertical-transport' = \"messages\" or add the "
            "coordinator's host to the node's policy.")


def check_contributors(policy: BankPolicy, parties: int, what: str) -> None:
    """Refuse to open a sum of fewer than ``min-contributors`` banks.

    ``parties`` is the sum's count of contributions; under Paillier the bank's summation
    verifies it against the contributors' sealed tag boxes when it opens the sum
    (:class:`federation.steps.secure_sum.PaillierBankSum`), so it cannot be inflated.

    Raises
    ------
    PolicyRefusal
        One line naming the sum (``what``) and the policy setting.
    """
    if parties < policy.min_contributors:
        raise PolicyRefusal(f"the coordinator sent a sum of {parties} bank(s) ('{what}'), "
                            f"below this bank's [policy] min-contributors = "
                            f"{policy.min_contributors}; the bank does not open it (a sum of "
                            "one bank is that bank's own vector).")
