"""/v1/clients/<client_id>/users/<user_id>/totp: enrol, check a code, remove; the secret never leaves sealed."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import pyotp
from flask import Blueprint

from agent_service.contract import contract
from agent_service.db import get_runtime
from agent_service.second_factor import repository
from agent_service.second_factor.schemas import CheckedSchema, CodeSchema, EnrolledSchema, EnrolSchema, RemovedSchema
from agent_service.vault.keyring import Keyring, Sealed, SecondFactorBinding
from shared.db import tenant_transaction
from shared.db.errors import ReferencedRowMissing
from shared.db.pool import Connection
from shared.errors import HapexError, NotFound

logger = logging.getLogger(__name__)
blueprint = Blueprint("second_factor", __name__, url_prefix="/v1/clients/<uuid:client_id>/users/<uuid:user_id>")
# A code that finishes a sign-in is checked by agent_service.sign_in, with the pending sign-in's ticket;
# the check here is a signed-in user's (confirming an enrolment, turning the factor off).

ISSUER = "Hapex"
STEP_SECONDS = 30
# A code of the step before or after the current one is accepted too (clock drift), once.
DRIFT_STEPS = 1


class UserNotFound(NotFound):
    name = "user_not_found"
    message = "No such user."


class AlreadyEnrolled(HapexError):
    name = "already_enrolled"
    status = 409
    message = "This user already has a confirmed second factor; remove it first."


def matching_step(totp: pyotp.TOTP, code: str, now: float) -> int | None:
    """The time step whose code this is (current, or one either side), else None."""
    current = int(now // STEP_SECONDS)
    for step in (current, current - DRIFT_STEPS, current + DRIFT_STEPS):
        if pyotp.utils.strings_equal(totp.at(step * STEP_SECONDS), code):
            return step
    return None


@blueprint.post("/totp")
@contract(EnrolledSchema, status=201, body=EnrolSchema, refusals=(UserNotFound, AlreadyEnrolled))
def enrol(client_id: uuid.UUID, user_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """Draw and seal a new secret (unconfirmed until its first code); its URI is answered this once."""
    rt = get_runtime()
    secret = pyotp.random_base32(length=32)
    sealed = rt.vault.keyring.encrypt(secret.encode("ascii"), SecondFactorBinding(client_id, user_id))
    try:
        with tenant_transaction(rt.db, client_id) as conn:
            row = repository.upsert_pending(conn, client_id=client_id, user_id=user_id, key_id=sealed.key_id,
                                            nonce=sealed.nonce, ciphertext=sealed.ciphertext)
    except ReferencedRowMissing:
        raise UserNotFound() from None
    if row is None:
        raise AlreadyEnrolled()
    logger.info("second factor enrolment started", extra={"client_id": client_id, "user_id": user_id})
    uri = pyotp.TOTP(secret).provisioning_uri(name=data["account_name"], issuer_name=ISSUER)
    return {"provisioning_uri": uri}


def spend_code(conn: Connection, keyring: Keyring, *, client_id: uuid.UUID, user_id: uuid.UUID, code: str,
               confirm: bool) -> bool:
    """Whether the code is good now and was not used before, in the caller's tenant transaction; a
    good code is spent. `confirm` for an enrolment's first code, else the factor must be confirmed."""
    row = repository.lock_secret(conn, client_id=client_id, user_id=user_id)
    if row is None:
        raise UserNotFound()
    if (row["confirmed_at"] is None) != confirm:
        return False
    sealed = Sealed(row["key_id"], bytes(row["nonce"]), bytes(row["ciphertext"]))
    secret = keyring.decrypt(sealed, SecondFactorBinding(client_id, user_id)).decode("ascii")
    step = matching_step(pyotp.TOTP(secret), code, time.time())
    if step is None or (row["last_step"] is not None and step <= row["last_step"]):
        logger.info("second factor code refused", extra={"client_id": client_id, "user_id": user_id})
        return False
    repository.accept_step(conn, client_id=client_id, user_id=user_id, step=step, confirm=confirm)
    return True


@blueprint.post("/totp/check")
@contract(CheckedSchema, body=CodeSchema, refusals=(UserNotFound,))
def check(client_id: uuid.UUID, user_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """A signed-in user's code (their session proves the client): good now and unused; a good code is spent."""
    rt = get_runtime()
    with tenant_transaction(rt.db, client_id) as conn:
        accepted = spend_code(conn, rt.vault.keyring, client_id=client_id, user_id=user_id, code=data["code"],
                              confirm=data["confirm"])
    return {"accepted": accepted}


@blueprint.delete("/totp")
@contract(RemovedSchema)
def remove(client_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any]:
    """Forget the user's sealed secret (the intake has checked a fresh proof first)."""
    rt = get_runtime()
    with tenant_transaction(rt.db, client_id) as conn:
        removed = repository.delete_secret(conn, client_id=client_id, user_id=user_id)
    return {"removed": removed}
