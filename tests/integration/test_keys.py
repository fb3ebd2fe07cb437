"""Signing keys for apps' tokens: one per purpose, the same on every node."""

from __future__ import annotations

from runtime.host.keys import KEYRING


async def test_keys_are_shared_by_nodes_and_differ_by_purpose(make_node) -> None:
    a = await make_node(node_id="a")
    key = await a.env.signing_key("cookies")
    assert len(key) == 32
    assert await a.env.signing_key("seats") != key
    assert any(i.startswith(KEYRING) for i in a.live_ids())
    await a.stop()  # (in-process nodes do not forward: b takes the KeyRing over instead)
    b = await make_node(node_id="b")
    assert await b.env.signing_key("cookies") == key  # made once, kept in Redis


async def test_a_secret_key_derives_keys_without_storing_them(make_node) -> None:
    a = await make_node(node_id="a", secret_key="s3cret")
    b = await make_node(node_id="b", secret_key="s3cret")
    other = await make_node(node_id="c", secret_key="another")
    key = await a.env.signing_key("cookies")
    assert await b.env.signing_key("cookies") == key
    assert await other.env.signing_key("cookies") != key
    assert not any(i.startswith(KEYRING) for i in a.live_ids() + b.live_ids())
