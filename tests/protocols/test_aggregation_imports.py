"""Importing the encrypted-aggregation layer pulls in neither torch nor flwr."""

from __future__ import annotations

import subprocess
import sys

MODULES = ["protocols", "protocols.packing", "protocols.paillier_fast",
           "protocols.paillier_decrypt", "protocols.secure_aggregation", "protocols.serde",
           "protocols.validation", "protocols.keys", "protocols.identity", "protocols.envelopes",
           "protocols.encrypted_vector"]


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
