/**
 * Publish + gather of N peers' SparseLoCo updates of a 100M-parameter model over loopback S3
 * (s3rver) and the filesystem store. Prints wall times and MB/s; run with `bun bench/transport.ts`.
 *
 * Update size from the codec formula: top-k 64 of every 4096-value chunk, each kept value a
 * 12-bit index + 2-bit quantized value -> 64 * 14 / 4096 = 0.21875 bits/param; the entropy-coded
 * (Rice) variant is ~0.14 bits/param.
 * Stores: "s3" = s3rver in this process, "s3p" = s3rver in a child process, "fs" = filesystem.
 * All N peers publish and gather from this one process, so signing and verifying of all N
 * updates is inside the timings.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Keyring } from "@polkadot/keyring"
import { cryptoWaitReady } from "@polkadot/util-crypto"
import { Effect, Layer, ManagedRuntime } from "effect"
import { Transport, gather, layerFileSystem, layerS3, openEnvelope, publishUpdate, sealEnvelope } from "@covenant/transport"
import type { BucketLocation } from "@covenant/transport"
import { LocalS3 } from "@covenant/transport/testing"

const PARAMS = 100_000_000
const CHUNK = 4096
const TOPK = 64
const packedBitsPerParam = (TOPK * (12 + 2)) / CHUNK
const sizes = [
  { label: "packed12 (0.21875 bits/param)", bytes: Math.ceil((PARAMS * packedBitsPerParam) / 8) },
  { label: "entropy-coded (~0.14 bits/param)", bytes: Math.ceil((PARAMS * 0.14) / 8) },
]
const peerCounts = (process.env.PEERS ?? "5,10,20,40").split(",").map(Number)
/** Repetitions per configuration; the median is printed (the machine is shared and noisy). */
const REPS = Number(process.env.REPS ?? "3")
const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const randomBytes = (length: number, seed: number): Uint8Array => {
  const words = new Uint32Array(Math.ceil(length / 4))
  let x = seed >>> 0 || 1
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    words[i] = x
  }
  return new Uint8Array(words.buffer, 0, length)
}

const MB = 1e6
const fmt = (n: number, digits = 1) => n.toFixed(digits)

await cryptoWaitReady()
const keyring = new Keyring({ type: "sr25519", ss58Format: 42 })
const maxPeers = Math.max(...peerCounts)
const hotkeys = Array.from({ length: maxPeers }, (_, i) => keyring.addFromUri(`//bench/${i}`))

const benchStore = async (storeName: string, layer: Layer.Layer<Transport>) => {
  const runtime = ManagedRuntime.make(layer)
  let window = 0
  try {
    for (const size of sizes) {
      for (const peers of peerCounts) {
        const uids = Array.from({ length: peers }, (_, i) => i)
        const locations = new Map<number, BucketLocation>(uids.map((uid) => [uid, { bucket: `bench-${storeName}-${uid}` }]))
        await runtime.runPromise(Effect.forEach(uids, (uid) => Effect.flatMap(Transport, (t) => t.ensureBucket(locations.get(uid)!)), { discard: true }))
        const hot = new Map(uids.map((uid) => [uid, hotkeys[uid]!.address] as const))
        const publishMs: Array<number> = []
        const gatherMs: Array<number> = []
        for (let rep = 0; rep < REPS; rep++) {
          window += 1
          const payloads = uids.map((uid) => randomBytes(size.bytes, window * 1000 + uid))
          const t0 = performance.now()
          // Every peer publishes its own update at the same moment, as at a window boundary.
          await runtime.runPromise(Effect.forEach(uids, (uid) =>
            publishUpdate({ at: locations.get(uid)!, runId: "bench", version: "1", window, uid, payload: payloads[uid]!, signer: hotkeys[uid]! }), { concurrency: "unbounded", discard: true }))
          const t1 = performance.now()
          const result = await runtime.runPromise(gather({
            runId: "bench", version: "1", window, uids, locations, hotkeys: hot,
            interval: { start: Date.now() - 600_000, end: Date.now() + 600_000 }, timeout: "120 seconds", concurrency: 16,
          }))
          const t2 = performance.now()
          if (result.delivered.size !== peers) throw new Error(`gathered ${result.delivered.size}/${peers}: ${JSON.stringify([...result.unavailable, ...result.badSignature])}`)
          publishMs.push(t1 - t0)
          gatherMs.push(t2 - t1)
        }
        const publish = median(publishMs)
        const gathered = median(gatherMs)
        const total = (peers * size.bytes) / MB
        console.log(
          `${storeName.padEnd(4)} | ${size.label.padEnd(33)} | ${String(peers).padStart(2)} peers x ${fmt(size.bytes / MB, 3)} MB` +
          ` | publish ${fmt(publish, 0).padStart(5)} ms ${fmt(total / (publish / 1000)).padStart(6)} MB/s` +
          ` | gather+verify ${fmt(gathered, 0).padStart(5)} ms ${fmt(total / (gathered / 1000)).padStart(6)} MB/s`,
        )
      }
    }
  } finally {
    await runtime.dispose()
  }
}

console.log(`median of ${REPS} runs each; 100M params; update sizes: ${sizes.map((s) => `${s.label} = ${fmt(s.bytes / MB, 3)} MB`).join(", ")}`)
{
  // Signing cost alone (sha256 of the envelope + one sr25519 sign / verify), per update.
  const payload = randomBytes(sizes[0]!.bytes, 7)
  const context = { runId: "bench", window: 1, uid: 0, kind: "gradient" }
  const reps = 10
  const t0 = performance.now()
  let sealed: Uint8Array = new Uint8Array(0)
  for (let i = 0; i < reps; i++) sealed = sealEnvelope(context, payload, hotkeys[0]!)
  const t1 = performance.now()
  for (let i = 0; i < reps; i++) openEnvelope(sealed, context, hotkeys[0]!.address)
  const t2 = performance.now()
  console.log(`envelope of one ${fmt(payload.length / MB, 3)} MB update: seal ${fmt((t1 - t0) / reps, 2)} ms, verify ${fmt((t2 - t1) / reps, 2)} ms`)
}
const s3 = new LocalS3()
await s3.start()
try {
  await benchStore("s3", layerS3(s3.config()))
} finally {
  await s3.dispose()
}

// The same over an s3rver in its own process, so server and client do not share one event loop.
{
  const dataDir = mkdtempSync(path.join(tmpdir(), "covenant-bench-s3rver-"))
  const server = Bun.spawn([process.execPath, "-e", `
    const S3rver = require("s3rver");
    new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: process.argv[1] }).run().then((a) => console.log(a.port));
  `, dataDir], { stdout: "pipe", stderr: "inherit" })
  try {
    const reader = server.stdout.getReader()
    const first = await reader.read()
    const port = Number(new TextDecoder().decode(first.value).trim())
    reader.releaseLock()
    const config = { ...s3.config(), endpoint: `http://127.0.0.1:${port}` }
    await benchStore("s3p", layerS3(config))
  } finally {
    server.kill()
    await server.exited
    rmSync(dataDir, { recursive: true, force: true })
  }
}
const dir = mkdtempSync(path.join(tmpdir(), "covenant-bench-fs-"))
try {
  await benchStore("fs", layerFileSystem(dir))
} finally {
  rmSync(dir, { recursive: true, force: true })
}
