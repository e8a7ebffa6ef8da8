"""The login throttle's address buckets: one per IPv4 address or IPv6 /64."""

from __future__ import annotations

from intake.accounts.throttle import address_key


def test_addresses_in_one_ipv6_64_share_a_bucket():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:192.0.2.1") == address_key("192.0.2.1")
    assert address_key("nonsense") == address_key(None)
