// Canonical msgpack (docs/formats.md, "Encoding"), the browser's copy of ledger/encoding.py.
//
// Only what the signed and hashed structures use: nil, bool, integers (-2^63 .. 2^64-1),
// UTF-8 str, bin, arrays and maps with str keys sorted by their UTF-8 bytes, every value in
// its shortest form. No floats, no ext types. decode() is strict the way the Python one is:
// it accepts a document only when encode() gives back exactly the same bytes, so every value
// has one encoding and one hash. tests/vectors/explorer/encoding.json holds the bytes
// Python's encoder made for the same values; both codecs are tested against it.
//
// Values: null, booleans, integers as Number when safe and BigInt beyond 2^53, strings,
// Uint8Array for bytes, arrays, and maps as objects without a prototype.

export const MAX_DEPTH = 32;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

export class DecodeError extends Error {}

export function isMap(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Uint8Array);
}

class Writer {
  constructor() {
    this.parts = [];
    this.size = 0;
  }
  bytes(b) {
    this.parts.push(b);
    this.size += b.length;
  }
  head(code, length, width) {
    const b = new Uint8Array(1 + width);
    b[0] = code;
    for (let i = width; i >= 1; i--) {
      b[i] = length & 0xff;
      length = Math.floor(length / 256);
    }
    this.bytes(b);
  }
  big(code, n) {
    const b = new Uint8Array(9);
    b[0] = code;
    new DataView(b.buffer).setBigUint64(1, BigInt.asUintN(64, n));
    this.bytes(b);
  }
  result() {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

function lengthHead(w, n, small, smallMax, codes) {
  if (small !== null && n < smallMax) w.head(small | n, 0, 0);
  else if (codes[0] !== null && n < 256) w.head(codes[0], n, 1);
  else if (n < 65536) w.head(codes[1], n, 2);
  else w.head(codes[2], n, 4);
}

function writeInt(w, n) {
  const big = typeof n === "bigint" ? n : BigInt(n);
  if (big < -(2n ** 63n) || big > 2n ** 64n - 1n) throw new DecodeError(`integer ${n} out of range`);
  if (big >= 0n) {
    if (big < 128n) w.head(Number(big), 0, 0);
    else if (big < 256n) w.head(0xcc, Number(big), 1);
    else if (big < 65536n) w.head(0xcd, Number(big), 2);
    else if (big < 2n ** 32n) w.head(0xce, Number(big), 4);
    else w.big(0xcf, big);
  } else if (big >= -32n) w.head(Number(big) & 0xff, 0, 0);
  else if (big >= -128n) w.head(0xd0, Number(big) & 0xff, 1);
  else if (big >= -32768n) w.head(0xd1, Number(big) & 0xffff, 2);
  else if (big >= -(2n ** 31n)) w.head(0xd2, Number(BigInt.asUintN(32, big)), 4);
  else w.big(0xd3, big);
}

function sortedKeys(map) {
  const keys = Object.keys(map).map((k) => [utf8.encode(k), k]);
  keys.sort((a, b) => compareBytes(a[0], b[0]));
  return keys;
}

export function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function write(w, value, depth) {
  if (value === null) w.head(0xc0, 0, 0);
  else if (value === false) w.head(0xc2, 0, 0);
  else if (value === true) w.head(0xc3, 0, 0);
  else if (typeof value === "bigint") writeInt(w, value);
  else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new DecodeError(`${value} is not an integer (no floats)`);
    writeInt(w, value);
  } else if (typeof value === "string") {
    const b = utf8.encode(value);
    lengthHead(w, b.length, 0xa0, 32, [0xd9, 0xda, 0xdb]);
    w.bytes(b);
  } else if (value instanceof Uint8Array) {
    lengthHead(w, value.length, null, 0, [0xc4, 0xc5, 0xc6]);
    w.bytes(value);
  } else if (depth >= MAX_DEPTH) throw new DecodeError(`nesting deeper than ${MAX_DEPTH}`);
  else if (Array.isArray(value)) {
    lengthHead(w, value.length, 0x90, 16, [null, 0xdc, 0xdd]);
    for (const item of value) write(w, item, depth + 1);
  } else if (isMap(value)) {
    const keys = sortedKeys(value);
    lengthHead(w, keys.length, 0x80, 16, [null, 0xde, 0xdf]);
    for (const [raw, key] of keys) {
      lengthHead(w, raw.length, 0xa0, 32, [0xd9, 0xda, 0xdb]);
      w.bytes(raw);
      write(w, value[key], depth + 1);
    }
  } else throw new DecodeError(`type ${typeof value} cannot be encoded`);
}

/** The canonical bytes of value. */
export function encode(value) {
  const w = new Writer();
  write(w, value, 0);
  return w.result();
}

class Reader {
  constructor(bytes) {
    this.b = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.at = 0;
  }
  need(n) {
    if (this.at + n > this.b.length) throw new DecodeError("the document ends too early");
    const at = this.at;
    this.at += n;
    return at;
  }
  /** The big-endian integer of a format of INTS ([getter, width]); 64-bit ones as a
   * Number where it is safe, else as a BigInt. */
  number([getter, width]) {
    const value = this.view[getter](this.need(width));
    return typeof value === "bigint" ? small(value) : value;
  }
  uint(width) {
    return this.number(INTS[UINT_CODE[width]]);
  }
  slice(n) {
    const at = this.need(n);
    return this.b.slice(at, at + n);
  }
}

function small(big) {
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

/** The integer formats the decoder takes: code -> [DataView getter, width in bytes]. */
const INTS = {
  0xcc: ["getUint8", 1], 0xcd: ["getUint16", 2], 0xce: ["getUint32", 4], 0xcf: ["getBigUint64", 8],
  0xd0: ["getInt8", 1], 0xd1: ["getInt16", 2], 0xd2: ["getInt32", 4], 0xd3: ["getBigInt64", 8],
};
const UINT_CODE = { 1: 0xcc, 2: 0xcd, 4: 0xce, 8: 0xcf }; // an unsigned integer of each width
const WIDTH = { 0xc4: 1, 0xc5: 2, 0xc6: 4, 0xd9: 1, 0xda: 2, 0xdb: 4, 0xdc: 2, 0xdd: 4, 0xde: 2, 0xdf: 4 };

function readString(r, n) {
  try {
    return strictUtf8.decode(r.slice(n));
  } catch {
    throw new DecodeError("a str is not valid UTF-8");
  }
}

function readArray(r, n, depth) {
  if (depth >= MAX_DEPTH) throw new DecodeError(`nesting deeper than ${MAX_DEPTH}`);
  const out = [];
  for (let i = 0; i < n; i++) out.push(read(r, depth + 1));
  return out;
}

function readMap(r, n, depth) {
  if (depth >= MAX_DEPTH) throw new DecodeError(`nesting deeper than ${MAX_DEPTH}`);
  const out = Object.create(null);
  for (let i = 0; i < n; i++) {
    const key = read(r, depth + 1);
    if (typeof key !== "string") throw new DecodeError("a map key is not a str");
    if (Object.hasOwn(out, key)) throw new DecodeError(`duplicate map key ${JSON.stringify(key)}`);
    out[key] = read(r, depth + 1);
  }
  return out;
}

function read(r, depth) {
  const code = r.uint(1);
  if (code <= 0x7f) return code;
  if (code >= 0xe0) return code - 256;
  if (code >= 0xa0 && code <= 0xbf) return readString(r, code & 0x1f);
  if (code >= 0x90 && code <= 0x9f) return readArray(r, code & 0x0f, depth);
  if (code >= 0x80 && code <= 0x8f) return readMap(r, code & 0x0f, depth);
  if (Object.hasOwn(INTS, code)) return r.number(INTS[code]);
  switch (code) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: case 0xc5: case 0xc6: return r.slice(r.uint(WIDTH[code]));
    case 0xd9: case 0xda: case 0xdb: return readString(r, r.uint(WIDTH[code]));
    case 0xdc: case 0xdd: return readArray(r, r.uint(WIDTH[code]), depth);
    case 0xde: case 0xdf: return readMap(r, r.uint(WIDTH[code]), depth);
    case 0xca: case 0xcb: throw new DecodeError("floats are not allowed");
    default: throw new DecodeError(`type byte 0x${code.toString(16)} is not allowed (ext types, reserved)`);
  }
}

/** The value of canonical bytes; DecodeError for anything that is not canonical. */
export function decode(bytes) {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError("expected bytes");
  if (bytes.length === 0) throw new DecodeError("empty document");
  const r = new Reader(bytes);
  const value = read(r, 0);
  if (r.at !== bytes.length) throw new DecodeError("trailing bytes after the document");
  if (!equalBytes(encode(value), bytes)) {
    throw new DecodeError("not canonical (unsorted keys or a value not in its shortest form)");
  }
  return value;
}

export function equalBytes(a, b) {
  return a.length === b.length && compareBytes(a, b) === 0;
}
