/** CRC-32 (IEEE 802.3, as zlib computes it) of `bytes[start, end)`: node:zlib's native one. */
import { crc32 as zlibCrc32 } from "node:zlib"

export const crc32 = (bytes: Uint8Array, start = 0, end = bytes.length): number => zlibCrc32(bytes.subarray(start, end)) >>> 0
