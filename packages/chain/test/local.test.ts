import { afterAll, describe, expect, test } from "bun:test";
import { Effect, ManagedRuntime } from "effect";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { identityFromSecret, layerLocal, layerLocalClient, readOwnerUrl } from "../src/index.ts";
import { signCall } from "../src/local/calls.ts";
import { chainConformance, suiteParams } from "./conformance.ts";

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
