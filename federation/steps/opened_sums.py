"""A bank's memory of the contributor sets of the sums it was handed in a run.

Protocol step (bank, before it reads data for a request): every contribution box
(:mod:`protocols.aggregation.contribution_tags`) is unique to one sealed vector, since its
nonce and tag are fresh. So two honest sums that share a box are the same sum, sent twice (the
combined statistics with every request, a round's weights sum with the evaluate and the next
train request). A deviating coordinator that hands a bank the sum over {A, B, C, D} and, in
another request of the same round, the sum over {A, B, C} would let it subtract D's vector:
the two sums share the boxes of A, B and C but are different sets, and the bank refuses the
second.

Security assumption: the coordinator cannot forge boxes (AES-GCM under the banks' key;
checked when a sum is opened), and the bank's node state survives between its requests of a
run (Flower's ``context.state``). A bank whose node restarts mid-run forgets what it saw.
Plain sums carry no boxes and are not checked (plain runs hide nothing from the coordinator).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from federation.steps.secure_sum import Sealed
from protocols.aggregation.contribution_tags import BOX_BYTES
from protocols.errors import ProtocolError


class OverlappingSumsError(ProtocolError):
    """Two sums of one run share a contribution but are not the same set of contributions."""


@dataclass
class OpenedSums:
    """Box digest -> digest of the whole box set it was seen in.

    Kept for the node's whole Flower run, whatever run id the requests claim: a coordinator
    switching run ids between requests must not reset it.
    """

    sets_by_box: dict[bytes, bytes] = field(default_factory=dict)

    def check(self, sealed: Sealed, what: str) -> None:
        """Remember ``sealed``'s contributor set; refuse one that overlaps another set.

        Raises
        ------
        OverlappingSumsError
            A box of ``sealed`` was seen before in a different set of boxes.
        """
        boxes = [sealed.contributors[at:at + BOX_BYTES]
                 for at in range(0, len(sealed.contributors), BOX_BYTES)]
        if not boxes:
            return
        digests = sorted(hashlib.sha256(box).digest() for box in boxes)
        whole = hashlib.sha256(b"".join(digests)).digest()
        if any(self.sets_by_box.get(d, whole) != whole for d in digests):
            raise OverlappingSumsError(
                f"the coordinator sent a sum ('{what}') that shares contributions with another "
                "sum of this run but holds a different set of banks; the difference of the two "
                "would expose a bank's vector, so this bank does not open it.")
        self.sets_by_box.update(dict.fromkeys(digests, whole))
