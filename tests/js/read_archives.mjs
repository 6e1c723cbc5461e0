// Reads zoblib archives with zarrita, a Zarr v3 reader that knows nothing of zoblib, and compares
// every array with the values numpy wrote beside them.
//
//   node tests/js/read_archives.mjs <dir>
//
// <dir> holds `expected.json` (written by tests/test_zarrita.py), the archives it lists (`.zarr`
// directories and ZIP files) and `expected/<name>.bin`: each array's elements in C order, little
// endian. Prints one line per array and archive, then a summary; exits 1 if any required array
// was not read or read wrong, or if any array (even a probe) read without error but wrong.

import { readFileSync } from "node:fs";
import { open as openFile } from "node:fs/promises";
import path from "node:path";
import FileSystemStore from "@zarrita/storage/fs";
import ZipFileStore from "@zarrita/storage/zip";
import * as zarr from "zarrita";

// --- CRC-32C (Castagnoli) --------------------------------------------------------------------
// zarrita's own `crc32c` codec strips the 4 trailing bytes without checking them; wrap it so that
// every chunk this reader decodes is also checked against its trailing checksum.
const CRC_TABLE = (() => {
	const table = new Uint32Array(256);
	for (let n = 0; n < 256; n++) {
		let c = n;
		for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
		table[n] = c >>> 0;
	}
	return table;
})();

function crc32c(bytes) {
	let crc = 0xffffffff;
	for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
	return (crc ^ 0xffffffff) >>> 0;
}

let chunksChecked = 0;
const stockCrc32c = await zarr.registry.get("crc32c")();
zarr.registry.set("crc32c", () => ({
	fromConfig(config, meta) {
		const inner = stockCrc32c.fromConfig(config, meta);
		return {
			kind: inner.kind,
			encode: (bytes) => inner.encode(bytes),
			computeEncodedSize: (n) => inner.computeEncodedSize(n),
			decode(bytes) {
				const n = bytes.byteLength - 4;
				const payload = bytes.subarray(0, n);
				const stored = new DataView(bytes.buffer, bytes.byteOffset + n, 4).getUint32(0, true);
				const actual = crc32c(payload);
				if (stored !== actual) {
					throw new Error(`crc32c mismatch: stored ${stored.toString(16)}, computed ${actual.toString(16)}`);
				}
				chunksChecked++;
				return inner.decode(bytes);
			},
		};
	},
}));

// --- stores --------------------------------------------------------------------------------------

/** unzipit Reader over a file on disk, read with positioned reads (nothing loaded up front). */
class FileReader {
	constructor(handle) {
		this.handle = handle;
	}
	async getLength() {
		return (await this.handle.stat()).size;
	}
	async read(offset, length) {
		const out = new Uint8Array(length);
		let done = 0;
		while (done < length) {
			const { bytesRead } = await this.handle.read(out, done, length - done, offset + done);
			if (bytesRead === 0) throw new Error(`short read at ${offset + done}`);
			done += bytesRead;
		}
		return out;
	}
}

/** Yields [label, store, close] for every way this archive is opened. */
async function* storesFor(dir, archive) {
	const file = path.join(dir, archive.path);
	if (archive.kind === "zarr") {
		yield ["FileSystemStore", new FileSystemStore(file), async () => {}];
	} else {
		const bytes = readFileSync(file);
		yield ["ZipFileStore(in memory)", ZipFileStore.fromBlob(new Blob([bytes])), async () => {}];
		const handle = await openFile(file, "r");
		yield ["ZipFileStore(file reader)", new ZipFileStore(new FileReader(handle)), () => handle.close()];
	}
}

// --- comparison ----------------------------------------------------------------------------------

function describe(err) {
	let msg = `${err?.name ?? "Error"}: ${err?.message ?? err}`;
	if (err?.cause) msg += ` (cause: ${describe(err.cause)})`;
	return msg;
}

/** The bytes of a typed array (or zarrita's BoolArray, ByteStringArray...), or null. */
function bytesOf(data) {
	const view = ArrayBuffer.isView(data) ? data : data?._data ?? data?.data;
	if (view && ArrayBuffer.isView(view)) return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
	if (data?.buffer instanceof ArrayBuffer) return new Uint8Array(data.buffer);
	return null;
}

/** Compares zarrita's chunk {data, shape, stride} with the expected C-order elements. */
function compare(result, spec, expected) {
	const shape = spec.shape;
	if (JSON.stringify(result.shape) !== JSON.stringify(shape)) {
		return `shape ${JSON.stringify(result.shape)} != ${JSON.stringify(shape)}`;
	}
	const size = shape.reduce((a, b) => a * b, 1);
	const item = spec.itemsize;
	const got = bytesOf(result.data);
	if (!got) return `unexpected result type ${result.data?.constructor?.name}`;
	if (got.byteLength !== size * item) {
		return `${got.byteLength} bytes from a ${result.data?.constructor?.name}, expected ${size * item}`;
	}
	// Walk the C-order index; `stride` (in elements) may be F order after a transpose codec.
	const stride = result.stride;
	const index = new Array(shape.length).fill(0);
	for (let flat = 0; flat < size; flat++) {
		let offset = 0;
		for (let d = 0; d < shape.length; d++) offset += index[d] * stride[d];
		for (let b = 0; b < item; b++) {
			if (got[offset * item + b] !== expected[flat * item + b]) {
				return `element ${flat} (index [${index}]) differs`;
			}
		}
		for (let d = shape.length - 1; d >= 0; d--) {
			if (++index[d] < shape[d]) break;
			index[d] = 0;
		}
	}
	// The typed view must also give numpy's values (catches a wrong element interpretation).
	for (const [flat, text] of spec.samples) {
		let offset = 0;
		let rest = flat;
		for (let d = shape.length - 1; d >= 0; d--) {
			offset += (rest % shape[d]) * stride[d];
			rest = Math.floor(rest / shape[d]);
		}
		const value = typeof result.data.get === "function" ? result.data.get(offset) : result.data[offset];
		let ok;
		if (typeof value === "bigint") ok = value === BigInt(text);
		else if (typeof value === "boolean") ok = String(value) === text;
		else if (typeof value === "number") ok = Number.isNaN(value) ? text === "nan" : value === Number(text);
		else ok = String(value) === text;
		if (!ok) return `sample ${flat}: got ${value}, expected ${text}`;
	}
	return null;
}

// --- main ----------------------------------------------------------------------------------------

const dir = process.argv[2];
if (!dir) {
	console.error("usage: node read_archives.mjs <dir>");
	process.exit(2);
}
const manifest = JSON.parse(readFileSync(path.join(dir, "expected.json"), "utf8"));
const expectedBytes = new Map(
	Object.entries(manifest.arrays).map(([name]) => [
		name,
		new Uint8Array(readFileSync(path.join(dir, "expected", `${name}.bin`))),
	]),
);

let matched = 0;
let failed = 0;
let unsupported = 0;
// Probe failures are summed up at the end, one line per distinct reason.
const unsupportedReasons = new Map();
function noteUnsupported(what, reason) {
	unsupported++;
	const entry = unsupportedReasons.get(reason) ?? new Set();
	entry.add(what);
	unsupportedReasons.set(reason, entry);
}
console.log(`zarrita ${manifest.zarrita ?? ""} on node ${process.version}`);
for (const archive of manifest.archives) {
	for await (const [label, store, close] of storesFor(dir, archive)) {
		const where = `${archive.path} [${label}]`;
		try {
			const root = await zarr.open.v3(store, { kind: "group" });
			const record = root.attrs.zoblib;
			if (!record?.nodes) throw new Error("root group has no zoblib record");
			// Every Zarr node the record lists must at least open (packs and the skeleton too).
			for (const node of Object.keys(record.nodes).sort()) {
				if (node.startsWith("arrays/")) continue;
				try {
					const arr = await zarr.open.v3(root.resolve(node), { kind: "array" });
					await zarr.get(arr);
					console.log(`ok       ${where} ${node} (${arr.dtype}, zoblib internal node)`);
				} catch (err) {
					// A pack of a probe dtype fails like that dtype's arrays.
					if (archive.probe || manifest.probe_dtypes.includes(record.nodes[node].dtype)) {
						noteUnsupported(`${archive.path}:${node}`, describe(err));
					} else {
						console.log(`FAIL     ${where} ${node}: ${describe(err)}`);
						failed++;
					}
				}
			}
			for (const name of archive.arrays) {
				const spec = manifest.arrays[name];
				const node = spec.node;
				if (!(node in record.nodes) && archive.packed) {
					// Under zoblib's pack_threshold: inside a pack (read above as packs/<n>), not a node.
					console.log(`packed   ${where} ${name}`);
					continue;
				}
				if (!(node in record.nodes)) {
					console.log(`FAIL     ${where} ${name}: node ${node} not in the root record`);
					failed++;
					continue;
				}
				let codec = "?";
				try {
					const arr = await zarr.open.v3(root.resolve(node), { kind: "array" });
					const meta = arr.attrs.zoblib;
					if (JSON.stringify(meta?.path) !== JSON.stringify([name])) {
						throw new Error(`attributes.zoblib.path is ${JSON.stringify(meta?.path)}`);
					}
					codec = record.nodes[node].codec?.name ?? "none";
					const result = await zarr.get(arr);
					const problem = compare(result, spec, expectedBytes.get(name));
					if (problem) {
						// Read without error but wrong: always a failure, probe or not.
						console.log(`FAIL     ${where} ${name} (${spec.dtype}, ${codec}): WRONG VALUES: ${problem}`);
						failed++;
					} else {
						console.log(`ok       ${where} ${name} (${spec.dtype} as ${arr.dtype}, ${codec}, ${JSON.stringify(spec.shape)})`);
						matched++;
					}
				} catch (err) {
					if (spec.probe || archive.probe) {
						noteUnsupported(spec.probe ? `${name} (${spec.dtype})` : `${archive.path}:*`, describe(err));
					} else {
						console.log(`FAIL     ${where} ${name} (${spec.dtype}, ${codec}): ${describe(err)}`);
						failed++;
					}
				}
			}
		} catch (err) {
			console.log(`FAIL     ${where}: ${describe(err)}`);
			failed++;
		} finally {
			await close();
		}
	}
}
for (const [reason, what] of unsupportedReasons) {
	console.log(`UNSUPP   ${[...what].join(", ")}: ${reason}`);
}
console.log(`${chunksChecked} chunk checksums (crc32c) verified`);
console.log(`zarrita: ${matched} matched, ${failed} failed, ${unsupported} unsupported (probes)`);
process.exit(failed === 0 && matched > 0 ? 0 : 1);
