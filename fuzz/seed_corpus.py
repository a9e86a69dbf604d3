#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets from docs/test-vectors.json
(valid transactions, bids, relay requests, commitments, inclusion lists,
listed commits, batch proofs), so each fuzzer starts from real encodings.
Run from fuzz/: `python3 seed_corpus.py`, then `cargo fuzz run <target>`
(the corpus directory is fuzz/corpus/<target>)."""
import base64
import hashlib
import json
import os

V = json.load(open(os.path.join(os.path.dirname(__file__), "..", "docs", "test-vectors.json")))


def put(target, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


txs = [bytes.fromhex(t["signed_transaction_borsh"]) for t in V["transactions"]]
txs += [bytes.fromhex(t["hex"]) for t in V["rejected_transaction_encodings"]]
for t in txs:
    put("decode_tx", t)
put("decode_commitments", bytes.fromhex(V["block"]["commitments_item"]))
put("decode_commitments", bytes.fromhex(V["empty_block_commitments_item"]))
for p in V["block"]["batch_proofs"]:
    put("batch_proof", json.dumps(p["proof"]).encode())
bids = [bytes.fromhex(b["signed_bid_borsh"]) for b in V["bids"]]
requests = [bytes.fromhex(r["signed_request_borsh"]) for r in V["relay_requests"]]
for b in bids + requests:
    put("decode_bid", b)
put("decode_inclusion", bytes.fromhex(V["inclusion"]["extension"]))
put("decode_inclusion", bytes.fromhex(V["inclusion"]["listed_commit_item"]))
# api_bodies: the first byte picks the endpoint and content type (see the
# target), the rest is the body.
for t in txs[:4]:
    put("api_bodies", b"\x00" + t)
    put("api_bodies", b"\x01" + json.dumps({"tx": base64.b64encode(t).decode()}).encode())
for b in bids:
    put("api_bodies", b"\x04" + b)
    put("api_bodies", b"\x05" + json.dumps({"signed_bid": b.hex()}).encode())
    put("api_bodies", b"\x05" + json.dumps({"signed_bid": "0x" + b.hex()}).encode())
put("api_bodies", b"\x01" + b"[" * 64)
put("api_bodies", b"\x05" + b'{"signed_bid": "zz"}')
env = bytes.fromhex(V["envelope"]["envelope"])
put("decode_envelope", env)
put("decode_envelope", env[4:])
put("decode_envelope", env[:-1])
