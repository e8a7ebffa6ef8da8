"""Passkey routes: register and remove (a client's own routes), and the sign-in check (clientless).

`/v1/clients/<client_id>/users/<user_id>/passkeys...` carry the signed-in user's session proof like
any tenant route. `/v1/passkeys/...` finish or replace a password before any session exists, so they
carry none (auth.CLIENTLESS_ENDPOINTS), exactly as the TOTP check does: they answer accepted or
refused, and on accepted the client and user the passkey proved; they spend a challenge and move a
counter, and open nothing else. This is the one place a passkey is verified, so that sign-in can
later move behind the agent (issue 19) without looking for it elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from agent_service.config import AgentConfig
from agent_service.contract import contract
from agent_service.db import get_db
from agent_service.passkeys import repository
from agent_service.passkeys.schemas import (
    PasskeyCheckedSchema,
    PasskeyCheckSchema,
    PasskeyOptionsSchema,
    PasskeyRemovedSchema,
    RegisteredSchema,
    RegisterSchema,
    RegistrationOptionsRequestSchema,
    SignInOptionsRequestSchema,
)
from agent_service.second_factor.views import UserNotFound
from shared.db import tenant_transaction
from shared.db.errors import ReferencedRowMissing
from shared.errors import HapexError, NotFound, ValidationFailed

logger = logging.getLogger(__name__)
blueprint = Blueprint("passkeys", __name__, url_prefix="/v1/clients/<uuid:client_id>/users/<uuid:user_id>/passkeys")
sign_in_blueprint = Blueprint("passkey_sign_in", __name__, url_prefix="/v1/passkeys")

RP_NAME = "Hapex"
TIMEOUT_MS = 120_000  # what the browser is told; the challenge itself is good for five minutes
REFUSED: dict[str, Any] = {"accepted": False, "client_id": None, "user_id": None}
# What user_passkeys keeps (migration 0022): a credential id within WebAuthn's bound (at most 1023
# bytes; 16 at least, as the spec asks of an authenticator) and a COSE public key of sane size.
CREDENTIAL_ID_BYTES = range(16, 1024)
PUBLIC_KEY_BYTES = range(16, 2049)


class PasskeysUnavailable(HapexError):
    name = "passkeys_unavailable"
    status = 409
    message = "Passkeys need INTAKE_PUBLIC_URL, the origin they are bound to; this deployment has none."


class NoPasskeys(NotFound):
    name = "no_passkeys"
    message = "This user has no passkey."


class RegistrationRefused(HapexError):
    name = "passkey_refused"
    status = 400
    message = "The passkey's answer did not verify (challenge, origin, or signature); nothing was stored."


class AlreadyRegistered(HapexError):
    name = "passkey_already_registered"
    status = 409
    message = "This passkey is already registered in this business."


@dataclass(frozen=True)
class RelyingParty:
    """The origin a passkey is bound to, from configuration alone."""

    rp_id: str
    origin: str

    @classmethod
    def of(cls, config: AgentConfig) -> RelyingParty:
        if not config.intake_public_url:
            raise PasskeysUnavailable()
        parts = urlsplit(config.intake_public_url)
        assert parts.hostname is not None  # the configuration checked it names a host
        return cls(rp_id=parts.hostname, origin=f"{parts.scheme}://{parts.netloc}")


def _relying_party() -> RelyingParty:
    return RelyingParty.of(current_app.config["HAPEX"])


def user_handle(client_id: uuid.UUID, user_id: uuid.UUID) -> bytes:
    """What the passkey keeps as its user's id: whose tenant to open when it signs in with no name given."""
    return client_id.bytes + user_id.bytes


def _challenge_hash(challenge: bytes) -> bytes:
    return hashlib.sha256(challenge).digest()


def _answered_challenge(client_data_b64: Any) -> bytes:
    """The challenge the browser says it signed (checked against a live one before anything else)."""
    if not isinstance(client_data_b64, str) or len(client_data_b64) > 4096:
        raise ValueError("clientDataJSON")
    challenge: bytes = parse_client_data_json(base64url_to_bytes(client_data_b64)).challenge
    return challenge


def _options_dict(options: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(options_to_json(options))
    return loaded


@blueprint.post("/registration-options")
@contract(PasskeyOptionsSchema, body=RegistrationOptionsRequestSchema, refusals=(PasskeysUnavailable, UserNotFound))
def registration_options(client_id: uuid.UUID, user_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """Options for navigator.credentials.create(): a discoverable credential with user verification."""
    rp = _relying_party()
    options = generate_registration_options(
        rp_id=rp.rp_id, rp_name=RP_NAME, user_name=data["account_name"], user_id=user_handle(client_id, user_id),
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.REQUIRED),
    )
    try:
        with tenant_transaction(get_db(), client_id) as conn:
            known = repository.user_credentials(conn, client_id=client_id, user_id=user_id)
            repository.insert_challenge(conn, client_id=client_id, user_id=user_id,
                                        challenge_hash=_challenge_hash(options.challenge), purpose="register")
    except ReferencedRowMissing:
        raise UserNotFound() from None
    options.exclude_credentials = [PublicKeyCredentialDescriptor(id=bytes(row["credential_id"])) for row in known]
    return {"options": _options_dict(options)}


@blueprint.post("")
@contract(RegisteredSchema, status=201, body=RegisterSchema,
          refusals=(PasskeysUnavailable, UserNotFound, RegistrationRefused, AlreadyRegistered))
def register(client_id: uuid.UUID, user_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """Verify the browser's new credential against this user's live registration challenge, then keep it."""
    rp = _relying_party()
    log = {"client_id": client_id, "user_id": user_id}
    try:
        credential = parse_registration_credential_json(data["credential"])
        challenge = _answered_challenge(data["credential"].get("response", {}).get("clientDataJSON"))
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError):
        logger.info("passkey registration refused", extra={**log, "status": "malformed"})
        raise RegistrationRefused() from None
    with tenant_transaction(get_db(), client_id) as conn:
        live = repository.spend_challenge(conn, client_id=client_id, user_id=user_id,
                                          challenge_hash=_challenge_hash(challenge), purpose="register")
    if not live:
        logger.info("passkey registration refused", extra={**log, "status": "challenge"})
        raise RegistrationRefused()
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp.rp_id,
            expected_origin=rp.origin, require_user_verification=True)
    except (WebAuthnException, ValueError, TypeError, KeyError):
        logger.info("passkey registration refused", extra={**log, "status": "unverified"})
        raise RegistrationRefused() from None
    if (len(verified.credential_id) not in CREDENTIAL_ID_BYTES
            or len(verified.credential_public_key) not in PUBLIC_KEY_BYTES):
        logger.info("passkey registration refused", extra={**log, "status": "out_of_bounds"})
        raise RegistrationRefused()
    known = {t.value for t in AuthenticatorTransport}
    transports = sorted({t.value if isinstance(t, AuthenticatorTransport) else str(t)
                         for t in (credential.response.transports or [])} & known)
    try:
        with tenant_transaction(get_db(), client_id) as conn:
            passkey_id = repository.insert_passkey(
                conn, client_id=client_id, user_id=user_id, credential_id=verified.credential_id,
                public_key=verified.credential_public_key, sign_count=verified.sign_count, transports=transports,
                label=data["label"].strip() or "Passkey")
    except ReferencedRowMissing:
        raise UserNotFound() from None  # removed meanwhile
    if passkey_id is None:
        raise AlreadyRegistered()
    logger.info("passkey registered", extra=log)
    return {"passkey_id": passkey_id}


@blueprint.delete("/<uuid:passkey_id>")
@contract(PasskeyRemovedSchema, refusals=(UserNotFound,))
def remove(client_id: uuid.UUID, user_id: uuid.UUID, passkey_id: uuid.UUID) -> dict[str, Any]:
    """Forget one passkey of the user (the intake has checked a fresh proof first)."""
    with tenant_transaction(get_db(), client_id) as conn:
        removed = repository.delete_passkey(conn, client_id=client_id, user_id=user_id, passkey_id=passkey_id)
    if removed:
        logger.info("passkey removed", extra={"client_id": client_id, "user_id": user_id})
    return {"removed": removed}


def _named_user(data: dict[str, Any]) -> tuple[uuid.UUID, uuid.UUID] | None:
    client_id, user_id = data["client_id"], data["user_id"]
    if (client_id is None) != (user_id is None):
        raise ValidationFailed(fields={"user_id": ["Give both client_id and user_id, or neither."]})
    return None if client_id is None else (client_id, user_id)


@sign_in_blueprint.post("/options")
@contract(PasskeyOptionsSchema, body=SignInOptionsRequestSchema, refusals=(PasskeysUnavailable, NoPasskeys))
def sign_in_options(data: dict[str, Any]) -> dict[str, Any]:
    """Options for navigator.credentials.get(): the named user's passkeys, or any passkey of this site."""
    rp = _relying_party()
    named = _named_user(data)
    if named is None:
        options = generate_authentication_options(rp_id=rp.rp_id, timeout=TIMEOUT_MS,
                                                  user_verification=UserVerificationRequirement.REQUIRED)
        with get_db().transaction() as conn:
            repository.issue_sign_in_challenge(conn, challenge_hash=_challenge_hash(options.challenge))
        return {"options": _options_dict(options)}
    client_id, user_id = named
    with tenant_transaction(get_db(), client_id) as conn:
        known = repository.user_credentials(conn, client_id=client_id, user_id=user_id)
        if not known:
            raise NoPasskeys()
        options = generate_authentication_options(
            rp_id=rp.rp_id, timeout=TIMEOUT_MS, user_verification=UserVerificationRequirement.PREFERRED,
            allow_credentials=[PublicKeyCredentialDescriptor(
                id=bytes(row["credential_id"]),
                transports=[AuthenticatorTransport(t) for t in row["transports"]] or None) for row in known])
        repository.insert_challenge(conn, client_id=client_id, user_id=user_id,
                                    challenge_hash=_challenge_hash(options.challenge), purpose="second_factor")
    return {"options": _options_dict(options)}


@sign_in_blueprint.post("/check")
@contract(PasskeyCheckedSchema, body=PasskeyCheckSchema, refusals=(PasskeysUnavailable,))
def check(data: dict[str, Any]) -> dict[str, Any]:
    """Whether the assertion answers a live challenge with a passkey of the user it names; spends both."""
    rp = _relying_party()
    named = _named_user(data)
    try:
        credential = parse_authentication_credential_json(data["credential"])
        challenge = _answered_challenge(data["credential"].get("response", {}).get("clientDataJSON"))
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError):
        logger.info("passkey sign-in refused", extra={"status": "malformed"})
        return REFUSED
    challenge_hash = _challenge_hash(challenge)
    if named is None:
        # Instead of a password: the challenge names no one, the passkey's user handle names its tenant.
        with get_db().transaction() as conn:
            live = repository.spend_sign_in_challenge(conn, challenge_hash=challenge_hash)
        handle = credential.response.user_handle
        if not live or handle is None or len(handle) != 32:
            logger.info("passkey sign-in refused", extra={"status": "challenge" if not live else "user_handle"})
            return REFUSED
        client_id, user_id = uuid.UUID(bytes=bytes(handle[:16])), uuid.UUID(bytes=bytes(handle[16:]))
        purpose = None
    else:
        client_id, user_id = named
        purpose = "second_factor"
    log = {"client_id": client_id, "user_id": user_id}
    with tenant_transaction(get_db(), client_id) as conn:
        if purpose is not None and not repository.spend_challenge(
                conn, client_id=client_id, user_id=user_id, challenge_hash=challenge_hash, purpose=purpose):
            logger.info("passkey sign-in refused", extra={**log, "status": "challenge"})
            return REFUSED
        row = repository.lock_credential(conn, client_id=client_id, user_id=user_id,
                                         credential_id=bytes(credential.raw_id))
        if row is None:
            logger.info("passkey sign-in refused", extra={**log, "status": "unknown_credential"})
            return REFUSED
        try:
            verified = verify_authentication_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=rp.rp_id,
                expected_origin=rp.origin, credential_public_key=bytes(row["public_key"]),
                credential_current_sign_count=row["sign_count"],
                # Instead of a password the passkey must be two factors itself: the device and its PIN or biometric.
                require_user_verification=named is None)
        except (WebAuthnException, ValueError, TypeError, KeyError):
            logger.info("passkey sign-in refused", extra={**log, "status": "unverified"})
            return REFUSED
        repository.record_use(conn, client_id=client_id, passkey_id=row["passkey_id"],
                              sign_count=verified.new_sign_count)
    logger.info("passkey accepted", extra=log)
    return {"accepted": True, "client_id": client_id, "user_id": user_id}
