"""Importing the encrypted-aggregation layer pulls in neither torch nor flwr."""

from __future__ import annotations

import subprocess
import sys

MODULES = ["protocols", "protocols.aggregation.packing", "protocols.paillier.fast",
           "protocols.paillier.decrypt", "protocols.aggregation.secure_aggregation",
           "protocols.aggregation.serde", "protocols.aggregation.validation",
           "protocols.paillier.keys", "protocols.identity.x25519", "protocols.identity.envelopes",
           "protocols.aggregation.encrypted_vector", "protocols.aggregation.count_groups"]


def test_protocols_import_without_torch_or_flwr() -> None:
    code = (
        "import sys\n"
        f"for name in {MODULES!r}:\n"
        "    __import__(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'flwr', 'pandas'})\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
