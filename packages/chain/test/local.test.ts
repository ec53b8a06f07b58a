import { afterAll, describe, expect, test } from "bun:test";
import { Effect, Either, Layer, ManagedRuntime } from "effect";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { identityFromSecret, layerLocal, layerLocalAuto, layerLocalClient, LocalChain, readOwnerUrl } from "../src/index.ts";
import { signCall } from "../src/local/calls.ts";
import { chainConformance, suiteParams } from "./conformance.ts";

/** The project's CLI (packages/runtime), whose `chain` command reads this package's chains. */
const COVENANT = `${import.meta.dir}/../../runtime/bin/covenant.ts`;

const tempDir = (tag: string) => mkdtempSync(join(tmpdir(), `covenant-chain-${tag}-`));
const alice = await Effect.runPromise(identityFromSecret("//Alice"));
const bob = await Effect.runPromise(identityFromSecret("//Bob"));

chainConformance("layerLocal (owner)", () => layerLocal({ dir: tempDir("owner"), identity: alice, params: suiteParams, serve: false }));

// A second chain, owned here by Bob, that Alice reaches only through its loopback server.
const servedDir = tempDir("served");
const owner = ManagedRuntime.make(layerLocal({ dir: servedDir, identity: bob, params: suiteParams }));
await owner.runtime();
afterAll(() => owner.dispose());
const url = await Effect.runPromise(readOwnerUrl(servedDir));
chainConformance("layerLocalClient (loopback)", () => layerLocalClient(url, alice));

describe("layerLocalAuto", () => {
  test("joins a directory with a live owner as a client, and owns a directory without one", async () => {
    const joined = ManagedRuntime.make(layerLocalAuto({ dir: servedDir, identity: alice }));
    const fresh = tempDir("auto");
    const owned = ManagedRuntime.make(layerLocalAuto({ dir: fresh, identity: alice, params: suiteParams }));
    try {
      const [joinedGenesis, ownedGenesis] = await Promise.all([
        joined.runPromise(Effect.map(LocalChain, (c) => c.genesisHash)),
        owned.runPromise(Effect.map(LocalChain, (c) => c.genesisHash)),
      ]);
      const servedGenesis = JSON.parse(readFileSync(join(servedDir, "genesis.json"), "utf8")).genesisHash;
      expect(joinedGenesis).toBe(servedGenesis);
      expect(ownedGenesis).toBe(JSON.parse(readFileSync(join(fresh, "genesis.json"), "utf8")).genesisHash);
      expect(await Effect.runPromise(readOwnerUrl(fresh))).toStartWith("http://127.0.0.1:");
      // A second owner of a live directory is refused, even from the same process.
      const second = await Effect.runPromise(Effect.either(Effect.scoped(Layer.build(layerLocal({ dir: fresh, identity: bob })))));
      expect(Either.isLeft(second) && second.left._tag).toBe("LocalStoreError");
    } finally {
      await joined.dispose();
      await owned.dispose();
    }
  });
});

describe("the owner's loopback server", () => {
  const post = async (body: string) => {
    const reply = await fetch(`${url}/rpc`, { method: "POST", body, headers: { "content-type": "application/json" } });
    return { status: reply.status, json: (await reply.json()) as { ok: boolean; error?: { _tag: string; reason?: string } } };
  };

  test("requests that do not decode are refused with a typed error", async () => {
    for (const body of ["not json", JSON.stringify({ _tag: "Drop" }), JSON.stringify({ _tag: "BlocksAfter", after: 1, waitMs: 10 ** 9 })]) {
      const reply = await post(body);
      expect([reply.status, reply.json.ok, reply.json.error?._tag, reply.json.error?.reason]).toEqual([400, false, "CallRejected", "Malformed"]);
    }
  });

  test("a call signed by another key than its signer is refused over the wire", async () => {
    const info = await post(JSON.stringify({ _tag: "Info" }));
    const genesisHash = "result" in info.json && typeof info.json.result === "object" && info.json.result !== null && "genesisHash" in info.json.result ? String(info.json.result.genesisHash) : "";
    const forged = { ...signCall(bob.hotkey, genesisHash, 0, { _tag: "SetCommitment", data: "x" }), signer: alice.hotkey.address };
    const reply = await post(JSON.stringify({ _tag: "Submit", signed: forged }));
    expect([reply.json.ok, reply.json.error?._tag, reply.json.error?.reason]).toEqual([false, "CallRejected", "BadSignature"]);
  });
});

describe("chain CLI", () => {
  // Asynchronous: the chain it reads is served by this very process.
  const cli = async (...args: string[]) => {
    const child = Bun.spawn(["bun", COVENANT, "chain", ...args], { stdout: "pipe", stderr: "pipe" });
    const [code, out, err] = await Promise.all([child.exited, new Response(child.stdout).text(), new Response(child.stderr).text()]);
    return { code, out, err };
  };

  test("metagraph --local prints every uid with its declared role and commitment location", async () => {
    const { code, out } = await cli("metagraph", "--local", servedDir, "--blocks-per-window", String(suiteParams.blocksPerWindow));
    expect(code).toBe(0);
    const lines = out.trim().split("\n");
    expect(lines[1]?.split(/\s+/).slice(0, 3)).toEqual(["uid", "hotkey", "coldkey"]);
    const alicesRow = lines.find((l) => l.includes(alice.hotkey.address));
    // The conformance suite registered Alice on this chain and left an R2 commitment, a validator's.
    expect(alicesRow?.split(/\s+/)[0]).toBe("0");
    expect(alicesRow?.split(/\s+/)[7]).toBe("validator");
    expect(alicesRow).toContain(".r2.cloudflarestorage.com/");
    expect(out).not.toContain("s".repeat(64));
  }, 20_000);

  test("bad arguments exit 2 with a message; --help exits 0", async () => {
    expect((await cli("metagraph", "--netuid", "3")).code).toBe(2);
    expect((await cli("metagraph", "--endpoint", "ws://127.0.0.1:1")).err).toContain("--netuid");
    expect((await cli("metagraph", "--help")).code).toBe(0);
  }, 20_000);
});
