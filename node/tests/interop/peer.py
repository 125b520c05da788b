#!/usr/bin/env python3
"""A Bitcoin P2P peer written on python-bitcoinlib, for satpool-node's interop test.

Everything on the wire goes through python-bitcoinlib (Peter Todd et al.):
message framing and checksums (`MsgSerializable.to_bytes`/`from_bytes`),
`version`, `verack`, `ping`, `pong`, `getheaders`, `headers`, `getdata`,
`inv`, `addr`, `tx` and `block`, and the blocks and transactions themselves
(`CBlock`, `CTransaction`, with witnesses), proof of work, merkle roots and
the witness commitment (`CheckBlock`). Only plain sockets and json are added.

Two places where python-bitcoinlib 0.11 differs from Bitcoin Core, worked
around here rather than trusted:
- `MSG_WITNESS_BLOCK` and `MSG_WITNESS_TX` are 1-tuples (a stray trailing
  comma in bitcoin/messages.py): they are rebuilt from MSG_WITNESS_FLAG.
- `msg_headers` reads 80-byte headers, but Core's `headers` message follows
  each header with a transaction count (always 0): `HeadersMessage` below
  reads and writes it, with the library's own `CBlockHeader` and `VarIntSerializer`.
Commands the library does not know (wtxidrelay, sendaddrv2, sendheaders,
sendcmpct, feefilter) are recognised by name, their checksum verified, and
otherwise ignored, as a peer of protocol 70001 would.

Modes (the Rust test drives both):
  peer.py connect HOST:PORT   connect to the node (the node is the inbound side)
  peer.py listen              listen on 127.0.0.1; the node connects out to us

The test talks to the script through its standard streams: the script writes
`{"request": NAME, ...}` lines when it needs the node's owner to act (send a
transaction, mine, hand over a block template, connect), and reads one JSON
line back for each. It ends with one `{"result": {...}}` line, which holds
what it saw for the test to assert on; `result.error` is set if it failed.
"""

import hashlib
import io
import json
import random
import socket
import struct
import sys
import time
import traceback

import bitcoin
from bitcoin.core import (
    CBlock,
    CBlockHeader,
    CheckBlock,
    CheckBlockHeader,
    COutPoint,
    CTransaction,
    CTxIn,
    CTxInWitness,
    CTxOut,
    CTxWitness,
    Hash,
    b2lx,
    b2x,
    lx,
    x,
)
from bitcoin.core.script import OP_RETURN, CScript, CScriptWitness
from bitcoin.core.serialize import VarIntSerializer, uint256_from_compact, uint256_from_str
from bitcoin.messages import (
    MSG_BLOCK,
    MSG_TX,
    MSG_WITNESS_FLAG,
    MsgSerializable,
    messagemap,
    msg_block,
    msg_getdata,
    msg_getheaders,
    msg_headers,
    msg_ping,
    msg_pong,
    msg_verack,
    msg_version,
)
from bitcoin.net import CAddress, CInv

PROTOCOL_VERSION = 70016
NODE_NETWORK = 1
NODE_WITNESS = 1 << 3
NODE_NETWORK_LIMITED = 1 << 10
MSG_WITNESS_BLOCK = MSG_BLOCK | MSG_WITNESS_FLAG
MSG_WITNESS_TX = MSG_TX | MSG_WITNESS_FLAG
# A safety limit for any one wait, never a statement about speed.
TIMEOUT = 120
# Core's block-message commitment header (BIP 141).
WITNESS_COMMITMENT_HEADER = b"\xaa\x21\xa9\xed"


def log(*args):
    print("peer.py:", *args, file=sys.stderr, flush=True)


class HeadersMessage(msg_headers):
    """`headers` as Core sends it: each header followed by a transaction count of 0."""

    @classmethod
    def msg_deser(cls, f, protover=None):
        c = cls()
        count = VarIntSerializer.stream_deserialize(f)
        headers = []
        for _ in range(count):
            headers.append(CBlockHeader.stream_deserialize(f))
            if VarIntSerializer.stream_deserialize(f) != 0:
                raise ValueError("a header in a headers message carries transactions")
        c.headers = headers
        return c

    def msg_ser(self, f):
        VarIntSerializer.stream_serialize(len(self.headers), f)
        for h in self.headers:
            h.stream_serialize(f)
            VarIntSerializer.stream_serialize(0, f)


def inv(kind, hash_hex):
    item = CInv()
    item.type = kind
    item.hash = lx(hash_hex)
    return item


class Peer:
    """One connection: frames in and out, and the chatter a peer must answer."""

    def __init__(self, sock):
        self.sock = sock
        self.received = []  # every command, in order
        self.pings_answered = 0
        self.addrs = []  # (ip, port, services) from every addr message
        self.buffer = b""

    def send(self, msg):
        self.sock.sendall(msg.to_bytes())

    def _read(self, n, deadline):
        while len(self.buffer) < n:
            remaining = deadline - time.time()
            if remaining <= 0:
                raise TimeoutError("no message from the node within the limit")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the node closed the connection")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def recv(self, deadline):
        """The next message: (command, decoded message or None if the library does not know it)."""
        head = self._read(24, deadline)
        length = struct.unpack("<I", head[16:20])[0]
        payload = self._read(length, deadline)
        if head[:4] != bitcoin.params.MESSAGE_START:
            raise ValueError("wrong message start %s" % b2x(head[:4]))
        command = head[4:16].split(b"\x00", 1)[0]
        if command in messagemap:
            # The library's own framing: magic, length and checksum checked here.
            msg = MsgSerializable.from_bytes(head + payload)
            if command == b"headers":
                msg = HeadersMessage.msg_deser(io.BytesIO(payload))
        else:
            if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != head[20:24]:
                raise ValueError("bad checksum on %r" % command)
            msg = None
        name = command.decode("ascii")
        self.received.append(name)
        return name, msg

    def wait_for(self, want, timeout=TIMEOUT):
        """Reads until want(command, msg) holds, answering ping and getheaders meanwhile."""
        deadline = time.time() + timeout
        while True:
            command, msg = self.recv(deadline)
            if command == "ping":
                self.send(msg_pong(nonce=msg.nonce))
                self.pings_answered += 1
            elif command == "getheaders":
                self.send(HeadersMessage())  # we have nothing the node lacks
            elif command == "addr":
                self.addrs.extend((a.ip, a.port, a.nServices) for a in msg.addrs)
            if want(command, msg):
                return command, msg

    def ping(self):
        nonce = random.getrandbits(64)
        self.send(msg_ping(nonce=nonce))
        self.wait_for(lambda c, m: c == "pong" and m.nonce == nonce)
        return nonce

    def getheaders(self, locator_hex):
        m = msg_getheaders()
        m.locator.nVersion = PROTOCOL_VERSION
        m.locator.vHave = [lx(h) for h in locator_hex]
        m.hashstop = b"\x00" * 32
        self.send(m)
        _, msg = self.wait_for(lambda c, m: c == "headers")
        return msg.headers

    def getdata_block(self, kind, hash_hex):
        m = msg_getdata()
        m.inv = [inv(kind, hash_hex)]
        self.send(m)
        _, msg = self.wait_for(lambda c, m: c == "block" and b2lx(m.block.GetHash()) == hash_hex)
        return msg.block

    def getdata_tx(self, kind, txid_hex):
        m = msg_getdata()
        m.inv = [inv(kind, txid_hex)]
        self.send(m)
        _, msg = self.wait_for(lambda c, m: c == "tx" and b2lx(m.tx.GetTxid()) == txid_hex)
        return msg.tx


def our_version(services, addr_to):
    v = msg_version()
    v.nVersion = PROTOCOL_VERSION
    v.nServices = services
    v.addrTo = CAddress()
    v.addrTo.ip, v.addrTo.port = addr_to
    v.addrTo.nServices = 0
    v.addrFrom = CAddress()
    v.addrFrom.nServices = services
    v.nStartingHeight = 0
    v.fRelay = True
    return v


def describe_version(v):
    return {
        "version": v.nVersion,
        "services": v.nServices,
        "start_height": v.nStartingHeight,
        "relay": bool(v.fRelay),
        "user_agent": v.strSubVer.decode("ascii", "replace"),
        "addr_recv": "%s:%d" % (v.addrTo.ip, v.addrTo.port),
        "addr_recv_services": v.addrTo.nServices,
        "nonce_nonzero": v.nNonce != 0,
        "time_skew": v.nTime - int(time.time()),
    }


def request(name, **fields):
    """Asks the test to act on the node, and returns its JSON answer."""
    fields["request"] = name
    print(json.dumps(fields), flush=True)
    line = sys.stdin.readline()
    if not line:
        raise RuntimeError("the test closed our stdin while we waited on %s" % name)
    return json.loads(line)


def describe_block(block):
    """What python-bitcoinlib makes of a block, CheckBlock (PoW, merkle root, witness commitment) included."""
    try:
        CheckBlock(block)
        check = "ok"
    except Exception as e:  # the library raises its own ValidationError subclasses
        check = "%s: %s" % (type(e).__name__, e)
    return {
        "hash": b2lx(block.GetHash()),
        "prev": b2lx(block.hashPrevBlock),
        "ntx": len(block.vtx),
        "txids": [b2lx(tx.GetTxid()) for tx in block.vtx],
        "wtxids": [b2lx(tx.GetHash()) for tx in block.vtx],
        "witness": [tx.has_witness() for tx in block.vtx],
        "check_block": check,
        "size": len(block.serialize()),
        "stripped_size": len(block.serialize(dict(include_witness=False))),
    }


def build_block(template, payout_script_hex):
    """A block on the node's template, assembled here: coinbase (BIP 34 height,
    witness reserved value, our own BIP 141 commitment), merkle root, and a
    nonce ground until the header meets the target."""
    height = template["height"]
    txs = [CTransaction.deserialize(x(t["data"])) for t in template["transactions"]]
    reserved = b"\x00" * 32
    coinbase_in = CTxIn(COutPoint(), CScript([height, b"python-bitcoinlib"]), 0xFFFFFFFF)
    payout = CTxOut(template["coinbasevalue"], CScript(x(payout_script_hex)))
    witness = CTxWitness([CTxInWitness(CScriptWitness([reserved]))])
    # The coinbase's wtxid counts as zero, so its outputs do not change the root.
    provisional = CTransaction([coinbase_in], [payout], 0, 2, witness)
    witness_root = CBlock.build_witness_merkle_tree_from_txs([provisional] + txs)[-1]
    commitment = CScript([OP_RETURN, WITNESS_COMMITMENT_HEADER + Hash(witness_root + reserved)])
    coinbase = CTransaction([coinbase_in], [payout, CTxOut(0, commitment)], 0, 2, witness)
    vtx = [coinbase] + txs
    merkle_root = CBlock.build_merkle_tree_from_txs(vtx)[-1]
    bits = int(template["bits"], 16)
    target = uint256_from_compact(bits)
    nonce = 0
    while True:
        header = CBlockHeader(
            nVersion=template["version"],
            hashPrevBlock=lx(template["previousblockhash"]),
            hashMerkleRoot=merkle_root,
            nTime=template["curtime"],
            nBits=bits,
            nNonce=nonce,
        )
        if uint256_from_str(header.GetHash()) <= target:
            break
        nonce += 1
    block = CBlock(
        nVersion=header.nVersion,
        hashPrevBlock=header.hashPrevBlock,
        hashMerkleRoot=merkle_root,
        nTime=header.nTime,
        nBits=bits,
        nNonce=nonce,
        vtx=vtx,
    )
    return block, b2x(commitment) == template.get("default_witness_commitment")


def handshake_as_initiator(peer, result):
    """We connected: version out, then theirs, their extras, verack; our verack."""
    node_addr = peer.sock.getpeername()
    peer.send(our_version(NODE_NETWORK | NODE_WITNESS, node_addr))
    _, version = peer.wait_for(lambda c, m: c == "version")
    peer.wait_for(lambda c, m: c == "verack")
    peer.send(msg_verack())
    result["node_version"] = describe_version(version)
    result["handshake_order"] = list(peer.received)
    result["our_addr"] = "%s:%d" % peer.sock.getsockname()


def handshake_as_listener(peer, result):
    """The node connected: its version comes first; ours, then veracks both ways."""
    _, version = peer.wait_for(lambda c, m: c == "version")
    first = list(peer.received)
    # What we tell the node its address is: where it came from (the port is
    # its outgoing one; the node pairs the IP with its own listening port).
    peer.send(our_version(NODE_NETWORK_LIMITED | NODE_WITNESS, peer.sock.getpeername()))
    peer.send(msg_verack())
    peer.wait_for(lambda c, m: c == "verack")
    result["node_version"] = describe_version(version)
    result["first_messages"] = first
    result["handshake_order"] = list(peer.received)


def run_connect(target, result):
    host, port = target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    peer = Peer(sock)
    handshake_as_initiator(peer, result)

    # Ping both ways: ours answered with our nonce; theirs answered by wait_for.
    result["pong_nonce_matched"] = peer.ping() is not None

    # Headers from genesis, chained and with valid proof of work.
    genesis = b2lx(bitcoin.core.coreparams.GENESIS_BLOCK.GetHash())
    headers = peer.getheaders([genesis])
    hashes = [b2lx(h.GetHash()) for h in headers]
    prevs = [genesis] + hashes[:-1]
    pow_ok = True
    for h in headers:
        try:
            CheckBlockHeader(h)
        except Exception as e:
            log("header check failed:", e)
            pow_ok = False
    result["genesis"] = genesis
    result["headers"] = hashes
    result["headers_chain"] = [b2lx(h.hashPrevBlock) for h in headers] == prevs
    result["headers_pow_ok"] = pow_ok

    # The tip as a witness block.
    result["tip_block"] = describe_block(peer.getdata_block(MSG_WITNESS_BLOCK, hashes[-1]))

    # A segwit transaction, announced by inv (by txid: we did not send
    # wtxidrelay), fetched with its witness.
    sent = request("send_tx")
    _, announced = peer.wait_for(
        lambda c, m: c == "inv" and any(i.type == MSG_TX and b2lx(i.hash) == sent["txid"] for i in m.inv)
    )
    tx = peer.getdata_tx(MSG_WITNESS_TX, sent["txid"])
    result["tx"] = {
        "announced_txid": sent["txid"],
        "txid": b2lx(tx.GetTxid()),
        "wtxid": b2lx(tx.GetHash()),
        "has_witness": tx.has_witness(),
    }

    # A block mined on the node, announced to us, fetched with and without witnesses.
    mined = request("mine_block")
    peer.wait_for(lambda c, m: c == "inv" and any(i.type == MSG_BLOCK and b2lx(i.hash) == mined["hash"] for i in m.inv))
    result["mined_block"] = describe_block(peer.getdata_block(MSG_WITNESS_BLOCK, mined["hash"]))
    result["mined_block_stripped"] = describe_block(peer.getdata_block(MSG_BLOCK, mined["hash"]))

    # A block of our own on the node's template, sent unasked with `block`.
    reply = request("template")
    block, commitment_matches = build_block(reply["template"], reply["payout_script"])
    ours = describe_block(block)
    ours["commitment_matches_template"] = commitment_matches
    result["our_block"] = ours
    m = msg_block()
    m.block = block
    peer.send(m)
    peer.ping()  # the node handles messages in order: the block is processed by now
    after = peer.getheaders([reply["template"]["previousblockhash"]])
    result["our_block_in_node_chain"] = [b2lx(h.GetHash()) for h in after][:1] == [ours["hash"]]

    request("peerinfo", addr=result["our_addr"])
    result["pings_answered"] = peer.pings_answered
    result["received"] = sorted(set(peer.received))
    sock.close()


def run_listen(result):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(TIMEOUT)
    addr = "%s:%d" % server.getsockname()
    result["listen_addr"] = addr
    request("connect", addr=addr)
    sock, _ = server.accept()
    server.close()
    peer = Peer(sock)
    handshake_as_listener(peer, result)
    # The node, which connected out to us, asks for addresses and announces its own.
    peer.wait_for(lambda c, m: c == "addr" and len(m.addrs) > 0)
    result["addrs"] = ["%s:%d" % (ip, port) for ip, port, _ in peer.addrs]
    result["addr_services"] = [services for _, _, services in peer.addrs]
    result["pong_nonce_matched"] = peer.ping() is not None
    request("peerinfo", addr=addr)
    result["pings_answered"] = peer.pings_answered
    result["received"] = sorted(set(peer.received))
    sock.close()


def main():
    bitcoin.SelectParams("regtest")
    result = {"library_version": bitcoin.__version__, "error": None}
    try:
        if len(sys.argv) == 3 and sys.argv[1] == "connect":
            run_connect(sys.argv[2], result)
        elif len(sys.argv) == 2 and sys.argv[1] == "listen":
            run_listen(result)
        else:
            raise SystemExit("usage: peer.py connect HOST:PORT | peer.py listen")
    except Exception as e:  # reported to the test, which fails with it
        traceback.print_exc(file=sys.stderr)
        result["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps({"result": result}), flush=True)


if __name__ == "__main__":
    main()
