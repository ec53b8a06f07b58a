import { expect, test } from "bun:test";
import { Effect, Either, Fiber, ManagedRuntime, Stream } from "effect";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Chain, FilesystemCommitment, identityFromSecret, layerLocalClient, LocalChain } from "../src/index.ts";

const alice = await Effect.runPromise(identityFromSecret("//Alice"));

/** Starts the owner script as a real subprocess; resolves once it serves. */
const startOwner = async (dir: string, port: number) => {
  const child = Bun.spawn(["bun", `${import.meta.dir}/fixtures/local-owner.ts`, dir, String(port)], { stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const chunk = await reader.read();
    if (chunk.done) throw new Error("owner exited before serving");
    text += new TextDecoder().decode(chunk.value);
  }
  reader.releaseLock();
  const url = /READY (\S+)/.exec(text)?.[1] ?? "";
  return { child, url, port: Number(new URL(url).port) };
};

test("an owner killed with SIGKILL and restarted keeps every committed fact; a connected client recovers by itself", async () => {
  const dir = mkdtempSync(join(tmpdir(), "covenant-chain-fault-"));
  let owner = await startOwner(dir, 0);
  const reconnectTimeoutMs = 20_000;
  const client = ManagedRuntime.make(layerLocalClient(owner.url, alice, { reconnectTimeoutMs }));
  try {
    const commitment = FilesystemCommitment.make({ dir: "/shared/alice" });
    const before = await client.runPromise(
      Effect.gen(function* () {
        const chain = yield* Chain;
        const local = yield* LocalChain;
        const uid = yield* chain.register;
        yield* local.addStake(10);
        yield* chain.commit(commitment);
        yield* chain.setWeights([{ uid, weight: 1 }]);
        return { uid, head: (yield* chain.currentBlock).number, metagraph: yield* chain.refreshMetagraph, weights: yield* chain.weights };
      }),
    );
    // A block stream that lives through the crash.
    const seen: number[] = [];
    const follower = client.runFork(Stream.runForEach(Stream.flatMap(Chain, (c) => c.blocks), (b) => Effect.sync(() => seen.push(b.number))));
    await Bun.sleep(300);

    owner.child.kill("SIGKILL");
    await owner.child.exited;
    await Bun.sleep(300);
    const seenAtCrash = seen.length;
    owner = await startOwner(dir, owner.port);

    const after = await client.runPromise(
      Effect.gen(function* () {
        const chain = yield* Chain;
        return {
          metagraph: yield* chain.refreshMetagraph,
          weights: yield* chain.weights,
          commitments: yield* chain.commitments,
          uid: yield* chain.uid,
          // The nonce survived too: a new signed call is accepted, a second registration is not.
          again: yield* Effect.either(chain.register),
          recommit: yield* Effect.either(chain.commit(FilesystemCommitment.make({ dir: "/shared/alice-2" }))),
        };
      }),
    );
    expect(after.uid).toBe(before.uid);
    expect(after.metagraph.neurons).toEqual(before.metagraph.neurons);
    expect(after.weights).toEqual(before.weights);
    const mine = after.commitments.find((c) => c.hotkey === alice.hotkey.address);
    expect(mine && Either.isRight(mine.commitment) ? mine.commitment.right : undefined).toEqual(commitment);
    expect(Either.isLeft(after.again) && after.again.left._tag).toBe("RegistrationRefused");
    expect(Either.isRight(after.recommit)).toBe(true);

    // The follower reconnects by itself within the client's reconnect timeout: wait for that long.
    const reconnectDeadline = Date.now() + reconnectTimeoutMs;
    while (Date.now() < reconnectDeadline && seen.length <= seenAtCrash + 3) await Bun.sleep(100);
    expect(seen.length).toBeGreaterThan(seenAtCrash + 3);
    // Block numbers go on from where the chain was: the clock is part of the persisted state.
    expect(seen[seen.length - 1]!).toBeGreaterThan(before.head);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
    await Effect.runPromise(Fiber.interrupt(follower));
  } finally {
    await client.dispose();
    owner.child.kill("SIGKILL");
  }
}, 60_000);
