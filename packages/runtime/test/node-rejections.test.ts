import { describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { identityFromSecret } from "@covenant/chain"
import { gather, layerFileSystem, publishUpdate, Transport, uploadInterval } from "@covenant/transport"
import { Effect } from "effect"
import { describeRejections, rejectionsOf } from "../src/index.ts"

// The real filesystem store and the real gather: uploads that land after the upload window (as on
// a chain whose blocks are slower than the run assumed) are classified late by the transport, and
// the node's line names them with how late they were.

describe("late uploads are named, not silently dropped", () => {
  test("two peers that uploaded after a 500 ms upload window", async () => {
    const dir = mkdtempSync(join(tmpdir(), "covenant-late-"))
    try {
      const [a, b] = await Promise.all(["//late-a", "//late-b"].map((s) => Effect.runPromise(identityFromSecret(s))))
      const program = Effect.gen(function* () {
        const transport = yield* Transport
        const peers = [{ uid: 2, id: a! }, { uid: 3, id: b! }]
        for (const p of peers) {
          yield* transport.ensureBucket({ bucket: `peer-${p.uid}` })
          yield* publishUpdate({ at: { bucket: `peer-${p.uid}` }, runId: "debug", version: "1", window: 9, uid: p.uid, payload: new Uint8Array([1, 2, 3]), signer: p.id.hotkey })
        }
        // The window's first block was seen 1.5 s ago; its 500 ms upload window has long closed.
        const interval = uploadInterval(Date.now() - 1_500, 500)
        const got = yield* gather({
          runId: "debug",
          version: "1",
          window: 9,
          uids: [2, 3],
          locations: new Map(peers.map((p) => [p.uid, { bucket: `peer-${p.uid}` }])),
          hotkeys: new Map(peers.map((p) => [p.uid, p.id.hotkey.address])),
          interval,
          timeout: "2 seconds",
          pollInterval: "50 millis",
        })
        expect(got.delivered.size).toBe(0)
        return describeRejections(9, rejectionsOf(got, interval), 500)
      })
      const line = await Effect.runPromise(Effect.provide(program, layerFileSystem(join(dir, "store"))))
      expect(line).toMatch(/^window 9: not gathered: late uid 2 \(\+\d+ ms\), uid 3 \(\+\d+ ms\); the upload window is 500 ms/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 20_000)
})
