"""Named exceptions for every protocol failure.

Each message says what went wrong and what the operator should do. Callers chain the
low-level cause with ``raise ... from exc``.
"""

from __future__ import annotations


class FedCreditError(Exception):
    """Base class of every error fedcredit raises on purpose."""


class ProtocolError(FedCreditError):
    """A protocol message or step is invalid (malformed, out of order, wrong party)."""


class MalformedMessageError(ProtocolError):
    """Bytes or a record received from another party could not be decoded."""


class MalformedPointError(MalformedMessageError):
    """A curve point from another party is unusable (wrong length, non-canonical, low order)."""


class KeyMismatchError(ProtocolError):
    """A ciphertext or message was made under a different key than the one expected."""


class InvalidCiphertextError(ProtocolError):
    """A ciphertext is not an element of Z*_{n^2} for the expected public key."""


class PackingOverflowError(ProtocolError):
    """A value or a sum does not fit in the packed slot; refusing to wrap silently."""


class VectorLengthError(ProtocolError):
    """A vector has a different length than the one agreed for this round."""


class StaleRoundError(ProtocolError):
    """A message belongs to another round (replay or straggler) or another run."""


class KeyCeremonyError(FedCreditError):
    """Key generation, wrapping, unwrapping or storage failed (wrong passphrase, tampered file)."""


class SchemeMismatchError(ProtocolError):
    """A message uses another scheme id or other codec parameters than the ones agreed."""


class UnexpectedMessageError(ProtocolError):
    """A message of another kind (another protocol step or sender) arrived for this step."""


class StateTamperedError(ProtocolError):
    """A sealed shared-state blob fails authentication (tampered, another run or step, version)."""


class PlaintextShapeError(ProtocolError):
    """A decrypted plaintext has more slots or bits than the protocol step allows.

    The key holder refuses to return or use it: a peer that packs other values (e.g. the key
    holder's own per-row ciphertexts) into the spare bits would otherwise read them back.
    """


class SecretSharingError(ProtocolError):
    """Shamir shares are too few, duplicated or inconsistent to reconstruct the secret."""


class MaskingRefusedError(ProtocolError):
    """A masking party refuses a request that would unmask an individual input.

    Raised when the coordinator asks a bank for both the self-mask share and the pairwise-key
    share of one peer (in one request or across requests), or lists too few survivors.
    """
