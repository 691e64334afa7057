"""MD4 against RFC 1320 appendix A.5 and against OpenSSL's legacy MD4 at block boundaries."""

import pytest

from sstpvpn.client.core.md4 import md4

RFC_1320_SUITE = [
    (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
    (b"a", "bde52cb31de33e46245e05fbdbd6fb24"),
    (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
    (b"message digest", "d9130a8164549fe818874806e1c7014b"),
    (b"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"),
    (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "043f8582f241db351ce627e153e7f0e4"),
    (b"1234567890" * 8, "e33b4ddc9c38f2199c3e7b164fcc0536"),
]


@pytest.mark.parametrize(("message", "digest"), RFC_1320_SUITE)
def test_rfc_1320_suite(message, digest):
    assert md4(message).hex() == digest


# Computed with `openssl dgst -md4 -provider legacy` over n bytes of "x": the lengths where the
# padding spills into a second block (56), fills one exactly (64) and spans several.
OPENSSL_BOUNDARIES = {
    55: "92f32bb82c95ad10e8f87ae58ab06807",
    56: "374d5f08103b7092c83b4626ebceffab",
    63: "2870452596e98fffd48332289b3472b9",
    64: "b1abf956a5ae6f3221e5fe85e300fbb0",
    65: "afc1a3308fc176a53238a09aeddec2e6",
    119: "b55ae15e41e55643b0c3daad5e05c905",
    120: "d8f9adfc41ec43552619606c70cfd287",
    128: "7c087dd92a6743e09f3763a6d99c9d26",
}


@pytest.mark.parametrize(("length", "digest"), sorted(OPENSSL_BOUNDARIES.items()))
def test_padding_boundaries_match_openssl(length, digest):
    assert md4(b"x" * length).hex() == digest


def test_accepts_bytearray_and_memoryview():
    assert md4(bytearray(b"abc")) == md4(memoryview(b"abc")) == bytes.fromhex("a448017aaf21d8525fc10ae87aa6729d")
