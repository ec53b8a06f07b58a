// Local chain throughput and latency: signed calls applied and fsync'ed by the owner (in process and
// over loopback), replay speed from the log, and block-stream delivery delay. Prints numbers.
import { Chain, FilesystemCommitment, identityFromSecret, layerLocal, layerLocalClient, LocalChain, readOwnerUrl, replayStore } from "@covenant/chain";
import { Chunk, Effect, ManagedRuntime, Stream } from "effect";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const calls = Number(process.env["CHAIN_BENCH_CALLS"] ?? 300);
const alice = await Effect.runPromise(identityFromSecret("//Alice"));
const bob = await Effect.runPromise(identityFromSecret("//Bob"));
const dir = mkdtempSync(join(tmpdir(), "covenant-chain-bench-"));
const owner = ManagedRuntime.make(layerLocal({ dir, identity: alice, params: { blockIntervalMs: 50, blocksPerWindow: 20 } }));
await owner.runtime();
const url = await Effect.runPromise(readOwnerUrl(dir));
const client = ManagedRuntime.make(layerLocalClient(url, bob));

const commits = (n: number) =>
  Effect.gen(function* () {
    const chain = yield* Chain;
    yield* chain.register;
    const start = performance.now();
    for (let i = 0; i < n; i++) yield* chain.commit(FilesystemCommitment.make({ dir: `/runs/${i}` }));
    return performance.now() - start;
  });

const ownerMs = await owner.runPromise(commits(calls));
console.log(`owner, in process: ${calls} signed commitments in ${ownerMs.toFixed(0)} ms -> ${((calls / ownerMs) * 1000).toFixed(0)} calls/s (${(ownerMs / calls).toFixed(2)} ms each, fsync'ed)`);
const clientMs = await client.runPromise(commits(calls));
console.log(`client, loopback HTTP: ${calls} signed commitments in ${clientMs.toFixed(0)} ms -> ${((calls / clientMs) * 1000).toFixed(0)} calls/s (${(clientMs / calls).toFixed(2)} ms each)`);

const delays = await client.runPromise(
  Effect.map(
    Effect.flatMap(Chain, (c) => Stream.runCollect(Stream.take(Stream.map(c.blocks, (b) => Date.now() - b.timestampMs), 40))),
    Chunk.toReadonlyArray,
  ),
);
const sorted = [...delays].sort((a, b) => a - b);
console.log(
  `block stream over loopback (50 ms blocks): delivery delay mean ${(delays.reduce((a, b) => a + b, 0) / delays.length).toFixed(1)} ms, p95 ${sorted[Math.floor(0.95 * (sorted.length - 1))]} ms`,
);
const head = await owner.runPromise(Effect.flatMap(LocalChain, (c) => c.currentBlock));
await client.dispose();
await owner.dispose();

const replayStart = performance.now();
const replayed = await Effect.runPromise(replayStore(dir));
const replayMs = performance.now() - replayStart;
console.log(`replay from the log: ${2 * calls + 2} calls and ${replayed.block} blocks in ${replayMs.toFixed(0)} ms (head was ${head.number})`);
