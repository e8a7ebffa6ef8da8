"""The keyring and its bound ciphertexts, as someone holding the database would attack them."""

from __future__ import annotations

import copy
import os
import pickle
import uuid
from dataclasses import replace

import pytest

from agent_service.vault.aead import NONCE_BYTES, TAG_BYTES, AuthenticationFailed
from agent_service.vault.keyring import CredentialBinding, Keyring, OutputBinding, Purpose, Sealed, UnknownKey
from agent_service.vault.keys import key_id

KEY_1 = os.urandom(32)
KEY_2 = os.urandom(32)
PLAINTEXT = b"1//0gRefreshTokenCanary-7f3a"


@pytest.fixture
def binding() -> CredentialBinding:
    return CredentialBinding(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), Purpose.REFRESH_TOKEN)


def _flip(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def test_a_ciphertext_decrypts_under_the_binding_it_was_made_for(binding):
    keyring = Keyring(KEY_1)
    sealed = keyring.encrypt(PLAINTEXT, binding)
    assert sealed.key_id == key_id(KEY_1) == keyring.primary_key_id
    assert len(sealed.nonce) == NONCE_BYTES
    assert len(sealed.ciphertext) == len(PLAINTEXT) + TAG_BYTES
    assert PLAINTEXT not in sealed.ciphertext
    assert keyring.decrypt(sealed, binding) == PLAINTEXT


def test_two_encryptions_of_the_same_value_differ(binding):
    keyring = Keyring(KEY_1)
    first, second = keyring.encrypt(PLAINTEXT, binding), keyring.encrypt(PLAINTEXT, binding)
    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext


def test_one_hundred_thousand_encryptions_use_one_hundred_thousand_distinct_nonces(binding):
    keyring = Keyring(KEY_1)
    nonces = {keyring.encrypt(b"x", binding).nonce for _ in range(100_000)}
    assert len(nonces) == 100_000
    assert all(len(nonce) == NONCE_BYTES for nonce in nonces)


def test_every_flipped_bit_of_the_nonce_is_rejected(binding):
    keyring = Keyring(KEY_1)
    sealed = keyring.encrypt(PLAINTEXT, binding)
    for bit in range(NONCE_BYTES * 8):
        with pytest.raises(AuthenticationFailed):
            keyring.decrypt(replace(sealed, nonce=_flip(sealed.nonce, bit)), binding)


def test_every_flipped_bit_of_the_ciphertext_and_tag_is_rejected(binding):
    keyring = Keyring(KEY_1)
    sealed = keyring.encrypt(PLAINTEXT, binding)
    body_bits = (len(sealed.ciphertext) - TAG_BYTES) * 8
    for bit in range(len(sealed.ciphertext) * 8):
        with pytest.raises(AuthenticationFailed):
            keyring.decrypt(replace(sealed, ciphertext=_flip(sealed.ciphertext, bit)), binding)
    assert body_bits > 0  # both the ciphertext body and the tag were covered above


def test_a_truncated_or_extended_ciphertext_is_rejected(binding):
    keyring = Keyring(KEY_1)
    sealed = keyring.encrypt(PLAINTEXT, binding)
    for ciphertext in (sealed.ciphertext[:-1], sealed.ciphertext + b"\x00", b"", b"\x00" * 15,
                       sealed.ciphertext[TAG_BYTES:]):
        with pytest.raises(AuthenticationFailed):
            keyring.decrypt(replace(sealed, ciphertext=ciphertext), binding)


def test_every_flipped_bit_of_the_key_id_is_rejected(binding):
    keyring = Keyring(KEY_1, [KEY_2])
    sealed = keyring.encrypt(PLAINTEXT, binding)
    raw = sealed.key_id.encode()
    for bit in range(len(raw) * 8):
        tampered = _flip(raw, bit).decode("latin-1")
        with pytest.raises(UnknownKey):
            keyring.decrypt(replace(sealed, key_id=tampered), binding)


def test_a_ciphertext_relabelled_with_another_held_key_id_is_rejected(binding):
    keyring = Keyring(KEY_1, [KEY_2])
    sealed = keyring.encrypt(PLAINTEXT, binding)
    with pytest.raises(AuthenticationFailed):
        keyring.decrypt(replace(sealed, key_id=key_id(KEY_2)), binding)


def test_the_key_id_is_bound_as_associated_data_not_only_used_to_pick_the_key(binding):
    keyring = Keyring(KEY_1)
    assert binding.associated_data("k1:aaaaaaaaaaaaaaaa") != binding.associated_data(
        "k1:aaaaaaaaaaaaaaab"
    )
    assert keyring.primary_key_id.encode() in binding.associated_data(keyring.primary_key_id)


@pytest.mark.parametrize("field", ["client_id", "connection_id", "credential_id"])
def test_a_ciphertext_under_another_row_or_client_is_rejected(binding, field):
    keyring = Keyring(KEY_1)
    sealed = keyring.encrypt(PLAINTEXT, binding)
    with pytest.raises(AuthenticationFailed):
        keyring.decrypt(sealed, replace(binding, **{field: uuid.uuid4()}))


@pytest.mark.parametrize("purpose", [Purpose.ACCESS_TOKEN, Purpose.API_KEY])
def test_a_ciphertext_read_for_another_purpose_is_rejected(binding, purpose):
    keyring = Keyring(KEY_1)
    sealed = keyring.encrypt(PLAINTEXT, binding)
    with pytest.raises(AuthenticationFailed):
        keyring.decrypt(sealed, replace(binding, purpose=purpose))


def test_ids_swapped_between_binding_fields_do_not_collide(binding):
    swapped = replace(binding, client_id=binding.connection_id, connection_id=binding.client_id)
    assert swapped.associated_data("k") != binding.associated_data("k")
    keyring = Keyring(KEY_1)
    with pytest.raises(AuthenticationFailed):
        keyring.decrypt(keyring.encrypt(PLAINTEXT, binding), swapped)


def test_the_primary_key_encrypts_and_retired_keys_still_decrypt(binding):
    old = Keyring(KEY_1)
    sealed_before = old.encrypt(PLAINTEXT, binding)
    rotated = Keyring(KEY_2, [KEY_1])
    assert rotated.primary_key_id == key_id(KEY_2)
    assert rotated.retired_key_ids == (key_id(KEY_1),)
    assert rotated.decrypt(sealed_before, binding) == PLAINTEXT
    sealed_after = rotated.encrypt(PLAINTEXT, binding)
    assert sealed_after.key_id == key_id(KEY_2)
    with pytest.raises(UnknownKey) as raised:
        old.decrypt(sealed_after, binding)
    assert raised.value.key_id == key_id(KEY_2)


def test_a_key_dropped_from_the_ring_no_longer_decrypts_and_no_other_key_is_tried(binding):
    sealed = Keyring(KEY_1).encrypt(PLAINTEXT, binding)
    with pytest.raises(UnknownKey):
        Keyring(KEY_2).decrypt(sealed, binding)
    # A row pointing at the key that is held does not make the ring try the others either.
    with pytest.raises(AuthenticationFailed):
        Keyring(KEY_2, [KEY_1]).decrypt(replace(sealed, key_id=key_id(KEY_2)), binding)


def test_a_retired_key_equal_to_the_primary_is_not_listed_twice():
    keyring = Keyring(KEY_1, [KEY_1, KEY_2, KEY_2])
    assert keyring.retired_key_ids == (key_id(KEY_2),)
    assert keyring.key_ids == {key_id(KEY_1), key_id(KEY_2)}


def test_key_ids_name_keys_without_revealing_them():
    kid = key_id(KEY_1)
    assert kid.startswith("k1:") and len(kid) == 19
    assert KEY_1.hex() not in kid and kid != key_id(KEY_2)


def test_keys_never_appear_in_reprs_and_cannot_be_pickled(binding):
    keyring = Keyring(KEY_1, [KEY_2])
    sealed = keyring.encrypt(PLAINTEXT, binding)
    for text in (repr(keyring), str(keyring), repr(sealed), keyring.describe()):
        for key in (KEY_1, KEY_2):
            assert key.hex() not in text and repr(key) not in text
        assert PLAINTEXT.decode() not in text
        assert repr(sealed.ciphertext) not in text
    assert key_id(KEY_1) in repr(keyring)
    for obj in (keyring, keyring._ciphers[keyring.primary_key_id]):
        with pytest.raises(TypeError):
            pickle.dumps(obj)
        with pytest.raises(TypeError):
            copy.copy(obj)


def test_an_unknown_key_error_names_the_key_id_only(binding):
    sealed = Sealed("k1:0123456789abcdef", b"\x00" * 12, b"\x00" * 32)
    with pytest.raises(UnknownKey, match="k1:0123456789abcdef"):
        Keyring(KEY_1).decrypt(sealed, binding)


def test_a_credential_never_opens_as_a_step_output_nor_an_output_as_a_credential(binding):
    """Even when the ids line up (a run id equal to a connection id): the formats are bound apart."""
    keyring = Keyring(KEY_1)
    as_output = OutputBinding(binding.client_id, binding.connection_id, 0)
    with pytest.raises(AuthenticationFailed):
        keyring.decrypt(keyring.encrypt(PLAINTEXT, binding), as_output)
    with pytest.raises(AuthenticationFailed):
        keyring.decrypt(keyring.encrypt(PLAINTEXT, as_output), binding)


@pytest.mark.parametrize("change", [{"client_id": uuid.uuid4()}, {"run_id": uuid.uuid4()}, {"step_index": 1},
                                    {"step_index": 256}])
def test_a_step_output_under_another_client_run_or_step_is_rejected(change):
    keyring = Keyring(KEY_1)
    output = OutputBinding(uuid.uuid4(), uuid.uuid4(), 0)
    sealed = keyring.encrypt(b'{"text":"summary"}', output)
    assert keyring.decrypt(sealed, output) == b'{"text":"summary"}'
    with pytest.raises(AuthenticationFailed):
        keyring.decrypt(sealed, replace(output, **change))


def test_step_outputs_are_sealed_under_a_subkey_per_run_not_under_the_key_itself():
    from agent_service.vault.aead import AES256GCM

    keyring = Keyring(KEY_1)
    output = OutputBinding(uuid.uuid4(), uuid.uuid4(), 0)
    sealed = keyring.encrypt(b'{"text":"summary"}', output)
    aad = output.associated_data(keyring.primary_key_id)
    with pytest.raises(AuthenticationFailed):
        AES256GCM(KEY_1).open(sealed.nonce, sealed.ciphertext, aad)
    # The same step index of another run is another subkey as well as other associated data.
    assert output.key_context() != replace(output, run_id=uuid.uuid4()).key_context()
    assert output.key_context() == replace(output, step_index=5).key_context()


def test_the_subkey_derivation_is_hkdf_sha256_as_rfc_5869_test_case_3():
    from agent_service.vault.aead import AES256GCM
    from agent_service.vault.keyring import _Deriver

    # RFC 5869 A.3: IKM = 22 octets of 0x0b, no salt, no info; the first 32 octets of its OKM.
    okm = bytes.fromhex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d")
    nonce = bytes(12)
    assert _Deriver(b"\x0b" * 22).cipher(b"").seal(nonce, b"x", b"") == AES256GCM(okm).seal(nonce, b"x", b"")
    assert "0b0b" not in repr(_Deriver(b"\x0b" * 22)) and "*" in repr(_Deriver(b"\x0b" * 22))
    with pytest.raises(TypeError):
        pickle.dumps(_Deriver(b"\x0b" * 22))
