import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Keyring } from "@polkadot/keyring";
import { cryptoWaitReady } from "@polkadot/util-crypto";
import { Chunk, Effect, Either, Exit, Fiber, Scope, Stream } from "effect";
import { connectSubstrate, defaultSubmitTimeoutMs, makeClock, measureBlockTimeMs, subtensorRequirements } from "../src/index.ts";
import { clockConformance } from "./conformance.ts";
import type { SubstrateNode } from "../src/index.ts";

/** The project's CLI (packages/runtime), whose `chain` command reads this package's chains. */
const COVENANT = `${import.meta.dir}/../../runtime/bin/covenant.ts`;

// A real Substrate runtime (Rococo Asset Hub), run in process by chopsticks from its genesis.
// The logger reads LOG_LEVEL when chopsticks loads, hence the dynamic imports.
process.env.LOG_LEVEL = "error";
const { setupWithServer } = await import("@acala-network/chopsticks");
const { chainSpec } = await import("@substrate/connect-known-chains/rococo_v2_2_asset_hub");
const genesis = JSON.parse(chainSpec);
const boot = (port: number) => setupWithServer({ genesis, port, host: "127.0.0.1", "build-block-mode": "Manual" } as Parameters<typeof setupWithServer>[0]);

let server: Awaited<ReturnType<typeof setupWithServer>>;
let port = 0;
const devRpc = async (method: string, params: unknown[], at = port) => {
  const reply = await fetch(`http://127.0.0.1:${at}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  return reply.json();
};
const newBlock = (at = port) => devRpc("dev_newBlock", [{ count: 1 }], at);

/** Starts a chopsticks node in a child process; resolves with its port once it listens. */
const spawnNode = async (onPort: number) => {
  const child = Bun.spawn(["bun", `${import.meta.dir}/fixtures/chopsticks-node.ts`, String(onPort)], { stdout: "pipe", stderr: "ignore" });
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const chunk = await reader.read();
    if (chunk.done) throw new Error("chopsticks node exited before listening");
    text += new TextDecoder().decode(chunk.value);
  }
  reader.releaseLock();
  return { child, port: Number(/LISTENING (\d+)/.exec(text)?.[1]) };
};

await cryptoWaitReady();
const keyring = new Keyring({ type: "sr25519", ss58Format: 42 });
const alice = keyring.addFromUri("//Alice");
const bob = keyring.addFromUri("//Bob");
const charlie = keyring.addFromUri("//Charlie");
const freeBalance = 10n ** 15n;

const scope = Effect.runSync(Scope.make());
let node: SubstrateNode;

beforeAll(async () => {
  server = await boot(0);
  port = Number(server.addr.split(":").pop());
  await devRpc("dev_setStorage", [{ System: { Account: [[[alice.address], { providers: 1, data: { free: freeBalance.toString() } }], [[charlie.address], { providers: 1, data: { free: freeBalance.toString() } }]] } }]);
  await newBlock();
  node = await Effect.runPromise(Scope.extend(connectSubstrate(`ws://127.0.0.1:${port}`, { reconnectDelayMs: 200 }), scope));
}, 60_000);
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void));
  await server.close();
});

/** Submits while building blocks (the node only builds on request) until the extrinsic lands. */
const submitAndBuild = <A, E>(submission: Effect.Effect<A, E>) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(submission);
      for (let i = 0; i < 50; i++) {
        yield* Effect.sleep("100 millis");
        const done = yield* Fiber.poll(fiber);
        if (done._tag === "Some") break;
        yield* Effect.promise(() => newBlock());
      }
      return yield* Effect.either(Fiber.join(fiber));
    }),
  );

describe("generic Substrate client on a chopsticks runtime", () => {
  test("the runtime check names what a subtensor client needs and this chain lacks", async () => {
    const result = await Effect.runPromise(Effect.either(Effect.scoped(connectSubstrate(`ws://127.0.0.1:${port}`, { required: subtensorRequirements }))));
    expect(Either.isLeft(result)).toBe(true);
    const error = Either.isLeft(result) ? result.left : undefined;
    expect(error?._tag).toBe("RuntimeMismatch");
    const missing = error?._tag === "RuntimeMismatch" ? error.missing : [];
    expect(missing).toContain("tx.subtensorModule.setWeights");
    expect(missing).toContain("query.subtensorModule.uids");
    expect(missing).toContain("tx.commitments.setCommitment");
    expect(missing).toContain("query.commitments.commitmentOf");
    // What the chain does have is not reported.
    expect(missing.some((m) => m.startsWith("query.timestamp"))).toBe(false);
  }, 30_000);

  test("the CLI reports the missing subtensor pallets of a non-subtensor chain", async () => {
    const cli = Bun.spawn(["bun", COVENANT, "chain", "metagraph", "--endpoint", `ws://127.0.0.1:${port}`, "--netuid", "1"], { stdout: "pipe", stderr: "pipe" });
    const [code, err] = await Promise.all([cli.exited, new Response(cli.stderr).text()]);
    expect(code).toBe(1);
    expect(err).toContain("RuntimeMismatch");
    expect(err).toContain("tx.subtensorModule.setWeights");
  }, 30_000);

  // The clock layerSubtensor uses (makeClock over the node), on a real runtime; two blocks are built
  // per request, so the header subscription skips some and the clock fills them in.
  describe("clock", () => {
    clockConformance(
      () => makeClock({ blocksPerWindow: 4, head: node.head, heads: node.blocks, timestampOf: node.timestampOf }),
      async (n) => {
        for (let built = 0; built < n; built += 2) await devRpc("dev_newBlock", [{ count: 2 }]);
      },
    );
  });

  test("the measured block time of a real runtime is its slot (chopsticks advances Timestamp.now by 12 s a block)", async () => {
    await devRpc("dev_newBlock", [{ count: 3 }]);
    const clock = makeClock({ blocksPerWindow: 115, head: node.head, heads: node.blocks, timestampOf: node.timestampOf });
    expect(await Effect.runPromise(measureBlockTimeMs(clock, 3))).toBe(node.blockTimeMs);
  }, 30_000);

  test("a signed extrinsic lands and emits its event", async () => {
    const result = await submitAndBuild(node.submit(node.api.tx.system.remarkWithEvent("covenant"), alice));
    expect(Either.isRight(result)).toBe(true);
    const blockHash = Either.isRight(result) ? result.right.blockHash : "0x";
    const events = await node.api.query.system.events.at(blockHash);
    expect(JSON.stringify(events.toHuman())).toContain("Remarked");
  }, 30_000);

  test("a transfer beyond the balance fails with the runtime's decoded module error", async () => {
    const result = await submitAndBuild(node.submit(node.api.tx.balances.transferKeepAlive(bob.address, freeBalance * 1000n), alice));
    const error = Either.isLeft(result) ? result.left : undefined;
    expect(error?._tag).toBe("DispatchFailed");
    expect(error?._tag === "DispatchFailed" && [error.pallet, error.error]).toEqual(["balances", "InsufficientBalance"]);
  }, 30_000);

  test("an extrinsic whose inclusion never comes fails with a typed ChainTimeout after the submit timeout", async () => {
    // The node builds no block unless asked: the inclusion notification never arrives.
    const timeoutScope = Effect.runSync(Scope.make());
    const patient = await Effect.runPromise(Scope.extend(connectSubstrate(`ws://127.0.0.1:${port}`, { submitTimeoutMs: 1_500 }), timeoutScope));
    // The default deadline is sized to the runtime's blocks (this runtime targets 12 s blocks).
    expect(patient.blockTimeMs).toBe(12_000);
    expect(defaultSubmitTimeoutMs(patient.blockTimeMs)).toBe(120_000);
    const began = Date.now();
    const result = await Effect.runPromise(Effect.either(patient.submit(patient.api.tx.system.remarkWithEvent("never included"), charlie)));
    const error = Either.isLeft(result) ? result.left : undefined;
    expect(error?._tag).toBe("ChainTimeout");
    expect(error?._tag === "ChainTimeout" && [error.operation, error.afterMs]).toEqual(["submit system.remarkWithEvent", 1_500]);
    expect(Date.now() - began).toBeLessThan(10_000);
    await Effect.runPromise(Scope.close(timeoutScope, Exit.void));
    await newBlock();
  }, 30_000);

  test("after the node process is killed and restarted on the same port the block stream resumes by itself", async () => {
    let remote = await spawnNode(0);
    const remoteScope = Effect.runSync(Scope.make());
    const remoteNode = await Effect.runPromise(Scope.extend(connectSubstrate(`ws://127.0.0.1:${remote.port}`, { reconnectDelayMs: 200 }), remoteScope));
    const received: number[] = [];
    const fiber = Effect.runFork(Stream.runForEach(remoteNode.blocks, (b) => Effect.sync(() => received.push(b.number))));
    await Bun.sleep(200);
    await newBlock(remote.port);
    // Each wait below is for an event, bounded at 20 s (a loaded machine is slow, not wrong).
    for (let i = 0; i < 200 && received.length === 0; i++) await Bun.sleep(100);
    expect(received.length).toBeGreaterThanOrEqual(1);
    remote.child.kill("SIGKILL");
    await remote.child.exited;
    for (let i = 0; i < 200 && remoteNode.api.isConnected; i++) await Bun.sleep(100);
    expect(remoteNode.api.isConnected).toBe(false);
    const samePort = remote.port;
    remote = await spawnNode(samePort);
    expect(remote.port).toBe(samePort);
    const before = received.length;
    for (let i = 0; i < 80 && received.length === before; i++) {
      await Bun.sleep(250);
      if (remoteNode.api.isConnected) await newBlock(remote.port);
    }
    expect(received.length).toBeGreaterThan(before);
    // Reads work again too, on the restarted node.
    expect(await Effect.runPromise(Effect.map(remoteNode.head, (h) => h.number))).toBeGreaterThan(0);
    await Effect.runPromise(Fiber.interrupt(fiber));
    await Effect.runPromise(Scope.close(remoteScope, Exit.void));
    remote.child.kill("SIGKILL");
  }, 90_000);
});
