// Double SHA-256 of an 80-byte Bitcoin header over a range of nonces.
//
// The host hands over the midstate of the header's first 64 bytes and the
// state after rounds 0-2 of the second block (they do not depend on the
// nonce); each invocation walks `per_invocation` nonces (a loop, so one
// dispatch of at most 65,535 workgroups covers a large range), runs rounds
// 3-63 of the first hash and rounds 0-60 of the second: after round 60 the
// register e already holds the final last word H7 less its initial value,
// so rounds 61-63 are skipped. A nonce whose H7, byte-swapped (the top 32
// bits of the hash read as a little-endian number), is at most the target's
// top word is written through an atomic counter into the result buffer; the
// host checks every one of them again in full. Comparing with the target's
// top word rather than testing H7 == 0 keeps fractional difficulties right.
//
// The rounds are unrolled here by hand (generated once, one line a round):
// naga emits no unrolled loops. WGSL has no 64-bit integers: nonces are u32
// and the host keeps ranges within 2^32.

struct Params {
    midstate: array<vec4<u32>, 2>,
    state3: array<vec4<u32>, 2>,
    // Words 0-2 of the second block (w): merkle root tail, time, bits.
    tail: vec4<u32>,
    start_nonce: u32,
    count: u32,
    per_invocation: u32,
    target_top: u32,
}

// Room for this many results; `count` may go past it, and then the host
// knows that some were lost.
const MAX_RESULTS: u32 = 1023u;

struct Results {
    count: atomic<u32>,
    nonces: array<u32, 1023>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> results: Results;

fn bsig0(x: u32) -> u32 { return ((x >> 2u) | (x << 30u)) ^ ((x >> 13u) | (x << 19u)) ^ ((x >> 22u) | (x << 10u)); }
fn bsig1(x: u32) -> u32 { return ((x >> 6u) | (x << 26u)) ^ ((x >> 11u) | (x << 21u)) ^ ((x >> 25u) | (x << 7u)); }
fn ssig0(x: u32) -> u32 { return ((x >> 7u) | (x << 25u)) ^ ((x >> 18u) | (x << 14u)) ^ (x >> 3u); }
fn ssig1(x: u32) -> u32 { return ((x >> 17u) | (x << 15u)) ^ ((x >> 19u) | (x << 13u)) ^ (x >> 10u); }
fn ch(x: u32, y: u32, z: u32) -> u32 { return z ^ (x & (y ^ z)); }
fn maj(x: u32, y: u32, z: u32) -> u32 { return (x & y) | (z & (x | y)); }
fn bswap(x: u32) -> u32 { return (x << 24u) | ((x << 8u) & 0x00ff0000u) | ((x >> 8u) & 0x0000ff00u) | (x >> 24u); }

// The final hash's last word H7 (big-endian, as SHA-256 computes it) for
// the header with this nonce.
fn sha256d_h7(nonce: u32) -> u32 {
    let m0 = params.midstate[0];
    let m1 = params.midstate[1];
    var a = params.state3[0].x; var b = params.state3[0].y; var c = params.state3[0].z; var d = params.state3[0].w;
    var e = params.state3[1].x; var f = params.state3[1].y; var g = params.state3[1].z; var h = params.state3[1].w;
    var t1: u32; var t2: u32;
    var w0 = params.tail.x; var w1 = params.tail.y; var w2 = params.tail.z; var w3 = bswap(nonce);
    var w4 = 0x80000000u; var w5 = 0u; var w6 = 0u; var w7 = 0u;
    var w8 = 0u; var w9 = 0u; var w10 = 0u; var w11 = 0u;
    var w12 = 0u; var w13 = 0u; var w14 = 0u; var w15 = 640u;
    // First hash, second block: rounds 0-2 came from the host.
    t1 = h + bsig1(e) + ch(e, f, g) + 0xe9b5dba5u + w3; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 3
    t1 = h + bsig1(e) + ch(e, f, g) + 0x3956c25bu + w4; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 4
    t1 = h + bsig1(e) + ch(e, f, g) + 0x59f111f1u + w5; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 5
    t1 = h + bsig1(e) + ch(e, f, g) + 0x923f82a4u + w6; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 6
    t1 = h + bsig1(e) + ch(e, f, g) + 0xab1c5ed5u + w7; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 7
    t1 = h + bsig1(e) + ch(e, f, g) + 0xd807aa98u + w8; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 8
    t1 = h + bsig1(e) + ch(e, f, g) + 0x12835b01u + w9; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 9
    t1 = h + bsig1(e) + ch(e, f, g) + 0x243185beu + w10; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 10
    t1 = h + bsig1(e) + ch(e, f, g) + 0x550c7dc3u + w11; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 11
    t1 = h + bsig1(e) + ch(e, f, g) + 0x72be5d74u + w12; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 12
    t1 = h + bsig1(e) + ch(e, f, g) + 0x80deb1feu + w13; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 13
    t1 = h + bsig1(e) + ch(e, f, g) + 0x9bdc06a7u + w14; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 14
    t1 = h + bsig1(e) + ch(e, f, g) + 0xc19bf174u + w15; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 15
    w0 = ssig1(w14) + w9 + ssig0(w1) + w0;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xe49b69c1u + w0; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 16
    w1 = ssig1(w15) + w10 + ssig0(w2) + w1;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xefbe4786u + w1; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 17
    w2 = ssig1(w0) + w11 + ssig0(w3) + w2;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x0fc19dc6u + w2; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 18
    w3 = ssig1(w1) + w12 + ssig0(w4) + w3;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x240ca1ccu + w3; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 19
    w4 = ssig1(w2) + w13 + ssig0(w5) + w4;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x2de92c6fu + w4; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 20
    w5 = ssig1(w3) + w14 + ssig0(w6) + w5;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x4a7484aau + w5; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 21
    w6 = ssig1(w4) + w15 + ssig0(w7) + w6;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x5cb0a9dcu + w6; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 22
    w7 = ssig1(w5) + w0 + ssig0(w8) + w7;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x76f988dau + w7; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 23
    w8 = ssig1(w6) + w1 + ssig0(w9) + w8;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x983e5152u + w8; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 24
    w9 = ssig1(w7) + w2 + ssig0(w10) + w9;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xa831c66du + w9; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 25
    w10 = ssig1(w8) + w3 + ssig0(w11) + w10;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xb00327c8u + w10; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 26
    w11 = ssig1(w9) + w4 + ssig0(w12) + w11;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xbf597fc7u + w11; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 27
    w12 = ssig1(w10) + w5 + ssig0(w13) + w12;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xc6e00bf3u + w12; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 28
    w13 = ssig1(w11) + w6 + ssig0(w14) + w13;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xd5a79147u + w13; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 29
    w14 = ssig1(w12) + w7 + ssig0(w15) + w14;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x06ca6351u + w14; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 30
    w15 = ssig1(w13) + w8 + ssig0(w0) + w15;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x14292967u + w15; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 31
    w0 = ssig1(w14) + w9 + ssig0(w1) + w0;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x27b70a85u + w0; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 32
    w1 = ssig1(w15) + w10 + ssig0(w2) + w1;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x2e1b2138u + w1; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 33
    w2 = ssig1(w0) + w11 + ssig0(w3) + w2;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x4d2c6dfcu + w2; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 34
    w3 = ssig1(w1) + w12 + ssig0(w4) + w3;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x53380d13u + w3; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 35
    w4 = ssig1(w2) + w13 + ssig0(w5) + w4;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x650a7354u + w4; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 36
    w5 = ssig1(w3) + w14 + ssig0(w6) + w5;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x766a0abbu + w5; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 37
    w6 = ssig1(w4) + w15 + ssig0(w7) + w6;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x81c2c92eu + w6; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 38
    w7 = ssig1(w5) + w0 + ssig0(w8) + w7;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x92722c85u + w7; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 39
    w8 = ssig1(w6) + w1 + ssig0(w9) + w8;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xa2bfe8a1u + w8; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 40
    w9 = ssig1(w7) + w2 + ssig0(w10) + w9;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xa81a664bu + w9; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 41
    w10 = ssig1(w8) + w3 + ssig0(w11) + w10;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xc24b8b70u + w10; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 42
    w11 = ssig1(w9) + w4 + ssig0(w12) + w11;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xc76c51a3u + w11; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 43
    w12 = ssig1(w10) + w5 + ssig0(w13) + w12;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xd192e819u + w12; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 44
    w13 = ssig1(w11) + w6 + ssig0(w14) + w13;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xd6990624u + w13; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 45
    w14 = ssig1(w12) + w7 + ssig0(w15) + w14;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xf40e3585u + w14; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 46
    w15 = ssig1(w13) + w8 + ssig0(w0) + w15;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x106aa070u + w15; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 47
    w0 = ssig1(w14) + w9 + ssig0(w1) + w0;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x19a4c116u + w0; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 48
    w1 = ssig1(w15) + w10 + ssig0(w2) + w1;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x1e376c08u + w1; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 49
    w2 = ssig1(w0) + w11 + ssig0(w3) + w2;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x2748774cu + w2; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 50
    w3 = ssig1(w1) + w12 + ssig0(w4) + w3;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x34b0bcb5u + w3; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 51
    w4 = ssig1(w2) + w13 + ssig0(w5) + w4;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x391c0cb3u + w4; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 52
    w5 = ssig1(w3) + w14 + ssig0(w6) + w5;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x4ed8aa4au + w5; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 53
    w6 = ssig1(w4) + w15 + ssig0(w7) + w6;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x5b9cca4fu + w6; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 54
    w7 = ssig1(w5) + w0 + ssig0(w8) + w7;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x682e6ff3u + w7; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 55
    w8 = ssig1(w6) + w1 + ssig0(w9) + w8;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x748f82eeu + w8; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 56
    w9 = ssig1(w7) + w2 + ssig0(w10) + w9;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x78a5636fu + w9; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 57
    w10 = ssig1(w8) + w3 + ssig0(w11) + w10;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x84c87814u + w10; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 58
    w11 = ssig1(w9) + w4 + ssig0(w12) + w11;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x8cc70208u + w11; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 59
    w12 = ssig1(w10) + w5 + ssig0(w13) + w12;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x90befffau + w12; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 60
    w13 = ssig1(w11) + w6 + ssig0(w14) + w13;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xa4506cebu + w13; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 61
    w14 = ssig1(w12) + w7 + ssig0(w15) + w14;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xbef9a3f7u + w14; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 62
    w15 = ssig1(w13) + w8 + ssig0(w0) + w15;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xc67178f2u + w15; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 63
    w0 = m0.x + a; w1 = m0.y + b; w2 = m0.z + c; w3 = m0.w + d;
    w4 = m1.x + e; w5 = m1.y + f; w6 = m1.z + g; w7 = m1.w + h;
    w8 = 0x80000000u; w9 = 0u; w10 = 0u; w11 = 0u;
    w12 = 0u; w13 = 0u; w14 = 0u; w15 = 256u;
    a = 0x6a09e667u; b = 0xbb67ae85u; c = 0x3c6ef372u; d = 0xa54ff53au;
    e = 0x510e527fu; f = 0x9b05688cu; g = 0x1f83d9abu; h = 0x5be0cd19u;
    // Second hash: rounds 0-60 only.
    t1 = h + bsig1(e) + ch(e, f, g) + 0x428a2f98u + w0; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 0
    t1 = h + bsig1(e) + ch(e, f, g) + 0x71374491u + w1; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 1
    t1 = h + bsig1(e) + ch(e, f, g) + 0xb5c0fbcfu + w2; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 2
    t1 = h + bsig1(e) + ch(e, f, g) + 0xe9b5dba5u + w3; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 3
    t1 = h + bsig1(e) + ch(e, f, g) + 0x3956c25bu + w4; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 4
    t1 = h + bsig1(e) + ch(e, f, g) + 0x59f111f1u + w5; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 5
    t1 = h + bsig1(e) + ch(e, f, g) + 0x923f82a4u + w6; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 6
    t1 = h + bsig1(e) + ch(e, f, g) + 0xab1c5ed5u + w7; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 7
    t1 = h + bsig1(e) + ch(e, f, g) + 0xd807aa98u + w8; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 8
    t1 = h + bsig1(e) + ch(e, f, g) + 0x12835b01u + w9; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 9
    t1 = h + bsig1(e) + ch(e, f, g) + 0x243185beu + w10; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 10
    t1 = h + bsig1(e) + ch(e, f, g) + 0x550c7dc3u + w11; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 11
    t1 = h + bsig1(e) + ch(e, f, g) + 0x72be5d74u + w12; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 12
    t1 = h + bsig1(e) + ch(e, f, g) + 0x80deb1feu + w13; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 13
    t1 = h + bsig1(e) + ch(e, f, g) + 0x9bdc06a7u + w14; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 14
    t1 = h + bsig1(e) + ch(e, f, g) + 0xc19bf174u + w15; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 15
    w0 = ssig1(w14) + w9 + ssig0(w1) + w0;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xe49b69c1u + w0; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 16
    w1 = ssig1(w15) + w10 + ssig0(w2) + w1;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xefbe4786u + w1; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 17
    w2 = ssig1(w0) + w11 + ssig0(w3) + w2;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x0fc19dc6u + w2; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 18
    w3 = ssig1(w1) + w12 + ssig0(w4) + w3;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x240ca1ccu + w3; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 19
    w4 = ssig1(w2) + w13 + ssig0(w5) + w4;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x2de92c6fu + w4; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 20
    w5 = ssig1(w3) + w14 + ssig0(w6) + w5;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x4a7484aau + w5; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 21
    w6 = ssig1(w4) + w15 + ssig0(w7) + w6;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x5cb0a9dcu + w6; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 22
    w7 = ssig1(w5) + w0 + ssig0(w8) + w7;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x76f988dau + w7; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 23
    w8 = ssig1(w6) + w1 + ssig0(w9) + w8;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x983e5152u + w8; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 24
    w9 = ssig1(w7) + w2 + ssig0(w10) + w9;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xa831c66du + w9; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 25
    w10 = ssig1(w8) + w3 + ssig0(w11) + w10;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xb00327c8u + w10; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 26
    w11 = ssig1(w9) + w4 + ssig0(w12) + w11;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xbf597fc7u + w11; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 27
    w12 = ssig1(w10) + w5 + ssig0(w13) + w12;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xc6e00bf3u + w12; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 28
    w13 = ssig1(w11) + w6 + ssig0(w14) + w13;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xd5a79147u + w13; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 29
    w14 = ssig1(w12) + w7 + ssig0(w15) + w14;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x06ca6351u + w14; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 30
    w15 = ssig1(w13) + w8 + ssig0(w0) + w15;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x14292967u + w15; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 31
    w0 = ssig1(w14) + w9 + ssig0(w1) + w0;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x27b70a85u + w0; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 32
    w1 = ssig1(w15) + w10 + ssig0(w2) + w1;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x2e1b2138u + w1; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 33
    w2 = ssig1(w0) + w11 + ssig0(w3) + w2;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x4d2c6dfcu + w2; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 34
    w3 = ssig1(w1) + w12 + ssig0(w4) + w3;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x53380d13u + w3; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 35
    w4 = ssig1(w2) + w13 + ssig0(w5) + w4;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x650a7354u + w4; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 36
    w5 = ssig1(w3) + w14 + ssig0(w6) + w5;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x766a0abbu + w5; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 37
    w6 = ssig1(w4) + w15 + ssig0(w7) + w6;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x81c2c92eu + w6; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 38
    w7 = ssig1(w5) + w0 + ssig0(w8) + w7;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x92722c85u + w7; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 39
    w8 = ssig1(w6) + w1 + ssig0(w9) + w8;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xa2bfe8a1u + w8; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 40
    w9 = ssig1(w7) + w2 + ssig0(w10) + w9;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xa81a664bu + w9; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 41
    w10 = ssig1(w8) + w3 + ssig0(w11) + w10;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xc24b8b70u + w10; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 42
    w11 = ssig1(w9) + w4 + ssig0(w12) + w11;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xc76c51a3u + w11; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 43
    w12 = ssig1(w10) + w5 + ssig0(w13) + w12;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xd192e819u + w12; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 44
    w13 = ssig1(w11) + w6 + ssig0(w14) + w13;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xd6990624u + w13; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 45
    w14 = ssig1(w12) + w7 + ssig0(w15) + w14;
    t1 = h + bsig1(e) + ch(e, f, g) + 0xf40e3585u + w14; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 46
    w15 = ssig1(w13) + w8 + ssig0(w0) + w15;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x106aa070u + w15; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 47
    w0 = ssig1(w14) + w9 + ssig0(w1) + w0;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x19a4c116u + w0; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 48
    w1 = ssig1(w15) + w10 + ssig0(w2) + w1;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x1e376c08u + w1; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 49
    w2 = ssig1(w0) + w11 + ssig0(w3) + w2;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x2748774cu + w2; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 50
    w3 = ssig1(w1) + w12 + ssig0(w4) + w3;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x34b0bcb5u + w3; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 51
    w4 = ssig1(w2) + w13 + ssig0(w5) + w4;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x391c0cb3u + w4; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 52
    w5 = ssig1(w3) + w14 + ssig0(w6) + w5;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x4ed8aa4au + w5; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 53
    w6 = ssig1(w4) + w15 + ssig0(w7) + w6;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x5b9cca4fu + w6; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 54
    w7 = ssig1(w5) + w0 + ssig0(w8) + w7;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x682e6ff3u + w7; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 55
    w8 = ssig1(w6) + w1 + ssig0(w9) + w8;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x748f82eeu + w8; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 56
    w9 = ssig1(w7) + w2 + ssig0(w10) + w9;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x78a5636fu + w9; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 57
    w10 = ssig1(w8) + w3 + ssig0(w11) + w10;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x84c87814u + w10; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 58
    w11 = ssig1(w9) + w4 + ssig0(w12) + w11;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x8cc70208u + w11; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 59
    w12 = ssig1(w10) + w5 + ssig0(w13) + w12;
    t1 = h + bsig1(e) + ch(e, f, g) + 0x90befffau + w12; t2 = bsig0(a) + maj(a, b, c); h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2; // round 60
    return e + 0x5be0cd19u;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let first = gid.x * params.per_invocation;
    for (var i = 0u; i < params.per_invocation; i = i + 1u) {
        let offset = first + i;
        if (offset >= params.count) {
            return;
        }
        let nonce = params.start_nonce + offset;
        if (bswap(sha256d_h7(nonce)) <= params.target_top) {
            let slot = atomicAdd(&results.count, 1u);
            if (slot < MAX_RESULTS) {
                results.nonces[slot] = nonce;
            }
        }
    }
}
