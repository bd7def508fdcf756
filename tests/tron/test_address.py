import pytest

from pipeline.errors import AddressError
from pipeline.tron.address import (base58_to_hex, hex_to_base58, is_valid, to_base58, validate_base58,
                                   word_to_base58)

USDT_HEX = "41a614f803b6fd780986a42c78ec9c7f77e6ded13c"
USDT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"


def test_hex_and_base58_round_trip_on_a_known_address():
    assert hex_to_base58(USDT_HEX) == USDT
    assert base58_to_hex(USDT) == USDT_HEX
    assert to_base58(USDT_HEX.upper().replace("0X", "")[:2].lower() + USDT_HEX[2:]) == USDT


def test_address_word_takes_last_20_bytes_even_with_41_in_padding():
    plain = "000000000000000000000000" + USDT_HEX[2:]
    padded = "0000000000000000000000" + USDT_HEX
    assert word_to_base58(plain) == word_to_base58(padded) == USDT


@pytest.mark.parametrize("bad,why", [
    ("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u", "checksum"),
    ("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6", "checksum|bytes|prefix"),
    ("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj0t", "character"),
    ("short", "length"),
    ("1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "prefix|checksum"),
])
def test_invalid_base58_addresses_are_rejected_with_the_reason(bad, why):
    with pytest.raises(AddressError, match=why):
        validate_base58(bad)
    assert not is_valid(bad)


@pytest.mark.parametrize("bad", ["42a614f803b6fd780986a42c78ec9c7f77e6ded13c", "41zz", "41" + "g" * 40])
def test_invalid_hex_addresses_are_rejected(bad):
    with pytest.raises(AddressError):
        hex_to_base58(bad)


def test_every_ofac_address_is_valid(shared_data):
    lines = [ln.strip() for ln in (shared_data / "lists" / "ofac_sdn_trx.txt").read_text().splitlines() if ln.strip()]
    assert len(lines) == 184
    for address in lines:
        assert base58_to_hex(address).startswith("41")
        assert hex_to_base58(base58_to_hex(address)) == address
